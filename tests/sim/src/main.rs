//! `herald-sim`: run the API server simulator standalone.
//!
//! ```text
//! herald-sim --listen 127.0.0.1:0 --kubeconfig /tmp/kubeconfig --pods 1000
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use herald_sim::Simulator;

/// Kubernetes API server simulator for herald's tests and demo.
#[derive(Parser, Debug)]
#[command(name = "herald-sim", version)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write a kubeconfig pointing at the simulator here.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Seed this many pods (about 6.6 KB each) into the `default` namespace.
    #[arg(long, default_value_t = 0)]
    pods: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 60)]
    bookmark_interval: u64,
    /// Events of history kept before old resourceVersions expire.
    #[arg(long, default_value_t = herald_sim::defaults::HISTORY)]
    history: usize,
    /// Answer 401 to requests without the kubeconfig's token.
    #[arg(long)]
    require_token: bool,
    /// Write managedFields and reset new pods' status as a real API server does.
    #[arg(long)]
    real_writes: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald-sim: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), herald_sim::Error> {
    let sim = Simulator::builder()
        .bind(args.listen)
        .bookmark_interval(Duration::from_secs(args.bookmark_interval.max(1)))
        .history_retention(args.history)
        .require_token(args.require_token)
        .real_writes(args.real_writes)
        .start()
        .await?;
    if let Some(path) = &args.kubeconfig {
        sim.write_kubeconfig(path)?;
    }
    if args.pods > 0 {
        sim.seed_pods("default", args.pods).await?;
    }
    // Printed once everything is ready, so scripts can wait for this line.
    println!("{}", sim.url());
    shutdown_signal().await;
    sim.stop().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling available: serve until killed.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
