//! The `herald` command line.
//!
//! `herald explain` ([`explain`]), `herald record` and `herald replay`
//! ([`record`]) and `herald plugin …` live here: [`plugin_test`] runs a plugin or a chain on
//! events, [`plugin_inspect`] describes a component, [`plugin_new`] writes a
//! plugin project.

pub mod explain;
pub(crate) mod plugin_inspect;
pub(crate) mod plugin_new;
pub(crate) mod plugin_test;
pub mod record;

pub use plugin_inspect::PluginInspectArgs;
pub use plugin_new::{Lang, PluginNewArgs};
pub use plugin_test::PluginTestArgs;

/// `herald plugin …`.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Run a plugin (or a chain) on one event or a file of events; print the
    /// verdict, the resulting object and its previous state.
    Test(plugin_test::PluginTestArgs),
    /// Describe a component: WIT world and version, exports, imports by
    /// capability and the policy that would load it.
    Inspect(plugin_inspect::PluginInspectArgs),
    /// Write a plugin project that builds and passes its test as
    /// generated: manifest, a filter with native tests, a README, and an
    /// event and config for `plugin test`.
    New(plugin_new::PluginNewArgs),
}

/// Runs a `herald plugin` subcommand, printing its output on stdout.
///
/// # Errors
/// Whatever the subcommand reports; the binary prints it and exits 1.
pub fn plugin(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Test(args) => plugin_test::print(&args),
        PluginCommand::Inspect(args) => {
            print!("{}", plugin_inspect::run(&args)?);
            Ok(())
        }
        PluginCommand::New(args) => plugin_new::print(&args),
    }
}
