//! `herald plugin inspect`: what a component is, without running it — the
//! WIT world and version, exports, imports by capability and the policy
//! that would load it.

use std::path::PathBuf;

use anyhow::Result;

use crate::plugin::{Runtime, RuntimeConfig};

/// Arguments of `herald plugin inspect`.
#[derive(Debug, clap::Args)]
pub struct PluginInspectArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Inspects the component and returns what is printed.
pub(crate) fn run(args: &PluginInspectArgs) -> Result<String> {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    })?;
    let inspection = runtime.inspect(&args.file)?;
    Ok(if args.json {
        serde_json::to_string_pretty(&inspection)?
    } else {
        inspection.to_text()
    })
}
