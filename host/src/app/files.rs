//! Hot reload: watches the config file's directory (a mounted ConfigMap
//! swaps a `..data` symlink, so the file itself is never written) and the
//! plugin directory, and says what changed, debounced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Something in the config file's directory.
    Config,
    /// A `.wasm` file in the plugin directory.
    Plugins,
}

/// Keeps the file watchers alive; dropping it stops them.
pub(super) struct Reloads {
    _watchers: Vec<RecommendedWatcher>,
    /// Changes, debounced: a burst of file events within `debounce` is one.
    pub rx: mpsc::Receiver<Change>,
}

impl std::fmt::Debug for Reloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloads")
    }
}

/// Watches `config`'s directory and, if given, `plugins`.
pub(super) fn watch(
    config: &Path,
    plugins: Option<&Path>,
    debounce: Duration,
) -> notify::Result<Reloads> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<Change>();
    let mut watchers = Vec::new();
    let config_dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let tx = raw_tx.clone();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && !ev.kind.is_access()
        {
            let _ = tx.send(Change::Config);
        }
    })?;
    w.watch(&config_dir, RecursiveMode::NonRecursive)?;
    watchers.push(w);
    if let Some(dir) = plugins.filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        tracing::warn!(dir = %dir.display(), "the plugin directory does not exist; plugin files are not watched");
    }
    if let Some(dir) = plugins.filter(|d| !d.as_os_str().is_empty() && d.is_dir()) {
        let tx = raw_tx.clone();
        // Any change counts, not only `*.wasm`: a directory mounted from a
        // ConfigMap swaps a `..data` symlink instead.
        let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && !ev.kind.is_access()
            {
                let _ = tx.send(Change::Plugins);
            }
        })?;
        w.watch(dir, RecursiveMode::NonRecursive)?;
        watchers.push(w);
    }
    drop(raw_tx);
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(first) = raw_rx.recv().await {
            let (mut config, mut plugins) = (first == Change::Config, first == Change::Plugins);
            // Collect the rest of the burst.
            loop {
                match tokio::time::timeout(debounce, raw_rx.recv()).await {
                    Ok(Some(Change::Config)) => config = true,
                    Ok(Some(Change::Plugins)) => plugins = true,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if config && tx.send(Change::Config).await.is_err() {
                return;
            }
            if plugins && tx.send(Change::Plugins).await.is_err() {
                return;
            }
        }
    });
    Ok(Reloads {
        _watchers: watchers,
        rx,
    })
}
