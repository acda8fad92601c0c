// The `herald` command line, shared by the `herald` binary (src/main.rs)
// and its system-allocator twin (src/bin/herald-sysalloc.rs), which differ
// only in their global allocator. Included, not a module: no inner
// attributes here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use herald::cli::PluginCommand;

/// herald: Kubernetes change notifications through sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run herald against the built-in API-server simulator with a scripted
    /// workload, delivering to loopback Slack, webhook and batch receivers,
    /// and print what each sink receives.
    Demo(herald::demo::DemoArgs),
    /// Watch the configured types and notify: herald's main job.
    Run(herald::run::RunArgs),
    /// Why an object was (or would not be) notified: runs it through what
    /// `herald run` would do with a config (watch match, dedup, plugins,
    /// routing) and prints each step and the exact body each sink would
    /// receive.
    Explain(herald::cli::explain::ExplainArgs),
    /// Write the change stream the config's watches see to a file, one JSON
    /// line per change (Secret values as `secretData` leaves them), until
    /// --for passes or SIGINT/SIGTERM. Nothing is notified.
    Record(herald::cli::record::RecordArgs),
    /// Run a recording through a config, offline, as `herald run` would
    /// (watch match, dedup, plugins, routing), and report counts per fate,
    /// plugin verdict and sink; with --against, the objects whose fate
    /// differs between the two configs.
    Replay(herald::cli::record::ReplayArgs),
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Work with plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file without starting, as `herald run` would: the
    /// fields, the names they refer to, and every plugin a watch uses
    /// (found, compiled, allowed by its policy, accepting its config).
    /// Errors name file, field and line.
    Check {
        /// The config file (YAML or JSON).
        file: std::path::PathBuf,
        /// Load the plugins from this directory instead of `plugins.dir`
        /// (a config written for a pod, checked against a local build).
        #[arg(long, value_name = "DIR")]
        plugins_dir: Option<std::path::PathBuf>,
    },
}

/// Logs go to stderr; stdout is for output (notifications, reports).
/// `HERALD_LOG` sets the filter (e.g. `debug`, `herald=debug`),
/// `HERALD_LOG_FORMAT=json` writes JSON lines.
/// The config's `log:` gives the defaults for `herald run`.
fn init_logging(default: &str, config: &herald::app::LogConfig) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = config.level.as_deref().unwrap_or(default);
    let text = std::env::var("HERALD_LOG").unwrap_or_else(|_| default.to_string());
    // `debug` and `trace` are herald's own: its dependencies (wasmtime,
    // cranelift, rustls, hyper) stay at info unless a filter names them.
    let text = match text.trim() {
        l @ ("debug" | "trace") => format!("info,herald={l},herald_selectors={l}"),
        _ => text,
    };
    // kube's watcher warns about every failed list in Rust debug text; herald
    // logs the same failure once, with the API server's reason and the retry
    // delay. Asked for by name, kube_runtime logs as asked.
    let text = if text.contains("kube_runtime") {
        text
    } else {
        format!("{text},kube_runtime::watcher=error")
    };
    let filter = EnvFilter::try_new(&text).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = match std::env::var("HERALD_LOG_FORMAT") {
        Ok(f) => f == "json",
        Err(_) => config.format == Some(herald::app::LogFormat::Json),
    };
    if json {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn main() -> ExitCode {
    herald::alloc::tune();
    let cli = Cli::parse();
    // The demo's output is the notifications; keep herald's own log quiet.
    let log = match &cli.command {
        Command::Run(args) => herald::app::load_config(&args.config)
            .map(|c| c.log)
            .unwrap_or_default(),
        Command::Record(args) => herald::app::load_config(&args.config)
            .map(|c| c.log)
            .unwrap_or_default(),
        _ => Default::default(),
    };
    init_logging(
        match cli.command {
            Command::Demo(_) | Command::Replay(_) => "warn",
            _ => "info",
        },
        &log,
    );
    let result = match cli.command {
        Command::Demo(args) => herald::app::async_runtime()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(herald::demo::run(&args))),
        Command::Config {
            command: ConfigCommand::Check { file, plugins_dir },
        } => herald::app::check_config(&file, plugins_dir.as_deref()).map(|c| {
            let plugins = match &c.plugins {
                Ok(n) => format!("{n} plugins loaded and initialised"),
                Err(why) => {
                    eprintln!("warning: {why}");
                    "plugins not checked".into()
                }
            };
            println!(
                "{}: ok ({} watched types, {plugins}, {} sinks)",
                file.display(),
                c.config.watch.len(),
                c.config.sinks.len().max(1)
            );
        }),
        Command::Run(args) => herald::app::async_runtime()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(herald::run::run(&args))),
        Command::Plugin { command } => herald::cli::plugin(command),
        Command::Explain(args) => herald::cli::explain::print(&args),
        Command::Record(args) => herald::app::async_runtime()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(herald::cli::record::record(&args))),
        Command::Replay(args) => herald::cli::record::replay(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
