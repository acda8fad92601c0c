//! `herald run`: the main job. Reads the config, connects to the API server
//! and runs herald ([`crate::app::Herald`]) until SIGTERM or Ctrl-C, then
//! drains the sinks.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::app::{Herald, Options, load_config};
use crate::source;

/// Arguments of `herald run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config file (YAML or JSON).
    #[arg(long, env = "HERALD_CONFIG")]
    pub config: PathBuf,
    /// Kubeconfig; overrides the config file's.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// Runs until SIGTERM or Ctrl-C.
///
/// # Errors
/// The config does not load, herald does not start, or (without a state dir)
/// notifications were not delivered before `drainTimeout`: they are lost.
pub async fn run(args: &RunArgs) -> Result<()> {
    let stop = shutdown_signal();
    let config = load_config(&args.config)?;
    let kubeconfig = args.kubeconfig.clone().or(config.kubeconfig.clone());
    let client = source::client(kubeconfig.as_deref()).await?;
    let herald = Herald::start(
        config,
        client,
        Options {
            config_path: Some(args.config.clone()),
            ..Options::default()
        },
    )
    .await?;
    let drained = herald.run_until(stop).await;
    if drained.failed {
        bail!(
            "the pipeline stopped by an internal error (logged above); exiting so that herald is restarted"
        );
    }
    if (drained.undelivered > 0 || !drained.pipeline_finished) && !drained.kept {
        bail!(
            "{} notifications were not delivered before drainTimeout (no stateDir: they are lost)",
            drained.undelivered
        );
    }
    Ok(())
}

/// SIGTERM or Ctrl-C. SIGTERM is caught from the moment this is called (not
/// first polled), so a pod stopped while herald starts still drains.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
