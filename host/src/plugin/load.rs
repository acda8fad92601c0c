//! Compile → validate → pre-instantiate, with compiled artifacts cached on
//! disk by content hash and the engine's compatibility hash.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::PluginPre;
use super::error::LoadError;
use super::imports::{Forbidden, WORLD_TYPES};
use super::output::PluginLog;
use super::runtime::Runtime;
use super::settings::Capability;

/// A compiled, validated plugin version, ready to instantiate.
pub struct LoadedPlugin {
    name: String,
    path: PathBuf,
    hash: String,
    runtime: Runtime,
    pre: PluginPre<super::instance::HostState>,
    log: Arc<PluginLog>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("hash", &self.hash)
            .finish()
    }
}

impl LoadedPlugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// SHA-256 of the component bytes, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }
    /// Where the plugin's log lines, stdout and stderr go; counts the lines
    /// its rate limit suppressed.
    pub fn log(&self) -> &Arc<PluginLog> {
        &self.log
    }
    pub(crate) fn engine(&self) -> &Engine {
        self.runtime.engine()
    }
    pub(crate) fn pre(&self) -> &PluginPre<super::instance::HostState> {
        &self.pre
    }
    pub(crate) fn epoch_tick(&self) -> Duration {
        self.runtime.epoch_tick()
    }
    pub(crate) fn calling(&self) -> super::runtime::CallGuard {
        self.runtime.calling()
    }
}

pub(crate) fn load(
    rt: &Runtime,
    name: &str,
    path: &Path,
    bytes: &[u8],
    allow: &[Capability],
) -> Result<LoadedPlugin, LoadError> {
    check_header(path, bytes)?;
    let hash = hex::encode(Sha256::digest(bytes));
    let component = compile_cached(rt, path, bytes, &hash)?;
    validate(rt.engine(), path, &component, allow)?;
    let instance_pre =
        rt.inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Incompatible {
                path: path.to_path_buf(),
                message: one_line(&format!("{e:#}"), 500),
            })?;
    let pre = PluginPre::new(instance_pre).map_err(|e| LoadError::Incompatible {
        path: path.to_path_buf(),
        message: one_line(&format!("{e:#}"), 500),
    })?;
    Ok(LoadedPlugin {
        name: name.to_string(),
        path: path.to_path_buf(),
        hash,
        runtime: rt.clone(),
        pre,
        log: rt.plugin_log(name),
    })
}

/// The first 8 bytes of every WebAssembly file: the magic, then the
/// version (core module) or version and layer (component).
const MAGIC: &[u8; 4] = b"\0asm";
const CORE_MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

/// Says in one line what the file is when it is not a component, before the
/// parser's own error (a hex dump of the header, or "attempted to parse a
/// wasm module with a component parser") gets a chance.
pub(crate) fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let message = if bytes.len() < 8 || &bytes[..4] != MAGIC {
        "the file does not start with `\\0asm`, so it is no WebAssembly at \
         all; a plugin is the .wasm that `cargo build --target wasm32-wasip2` writes"
    } else if bytes[4..8] == CORE_MODULE {
        "it is a core WebAssembly module; build the plugin for wasm32-wasip2 \
         (`cargo build --target wasm32-wasip2`), which writes a component \
         (wasm32-unknown-unknown and wasm32-wasip1 write modules)"
    } else {
        return Ok(());
    };
    Err(LoadError::Compile {
        path: path.to_path_buf(),
        message: message.to_string(),
    })
}

/// `text` on one line (runs of whitespace, newlines included, become one
/// space), cut to about `max` bytes: a compiler error must not spill a
/// multi-line dump into the log.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 4));
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > max {
            let mut cut = max;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            break;
        }
    }
    out
}

fn validate(
    engine: &Engine,
    path: &Path,
    component: &Component,
    allow: &[Capability],
) -> Result<(), LoadError> {
    let ty = component.component_type();
    let exports: Vec<(String, bool)> = ty
        .exports(engine)
        .map(|(n, item)| {
            (
                n.to_string(),
                matches!(item.ty, ComponentItem::ComponentFunc(_)),
            )
        })
        .collect();
    for want in ["init", "handle"] {
        if !exports.iter().any(|(n, is_func)| n == want && *is_func) {
            return Err(LoadError::MissingExport {
                path: path.to_path_buf(),
                export: want.to_string(),
            });
        }
    }
    // The world's `use types.{..}` shows up as plain type imports; types
    // carry no capability.
    let imports: Vec<&str> = ty
        .imports(engine)
        .filter(|(import, item)| {
            !(WORLD_TYPES.contains(import)
                && matches!(item.ty, ComponentItem::Type(_) | ComponentItem::Resource(_)))
        })
        .map(|(import, _)| import)
        .collect();
    if let Some(forbidden) = Forbidden::check(imports, allow) {
        return Err(LoadError::ForbiddenImport {
            path: path.to_path_buf(),
            import: forbidden.first().to_string(),
            forbidden,
        });
    }
    Ok(())
}

fn engine_hash(engine: &Engine) -> String {
    let mut h = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Compiles `bytes`, or loads the artifact compiled earlier for the same
/// bytes by a compatible engine.
pub(crate) fn compile_cached(
    rt: &Runtime,
    path: &Path,
    bytes: &[u8],
    hash: &str,
) -> Result<Component, LoadError> {
    let mut compiled = rt.inner.compiled.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = compiled.get(hash) {
        return Ok(c.clone());
    }
    let c = compile_on_disk(rt, path, bytes, hash)?;
    // Reloads add versions; a bound keeps old ones from piling up.
    if compiled.len() >= 64 {
        compiled.clear();
    }
    compiled.insert(hash.to_string(), c.clone());
    Ok(c)
}

fn compile_on_disk(
    rt: &Runtime,
    path: &Path,
    bytes: &[u8],
    hash: &str,
) -> Result<Component, LoadError> {
    let engine = rt.engine();
    let compile_err = |e: wasmtime::Error| LoadError::Compile {
        path: path.to_path_buf(),
        message: one_line(&format!("{e:#}"), 300),
    };
    let Some(dir) = &rt.inner.config.cache_dir else {
        return Component::new(engine, bytes).map_err(compile_err);
    };
    let file = dir.join(format!("{hash}-{}.cwasm", engine_hash(engine)));
    // Read into memory rather than mmap: a cache file truncated or replaced
    // under a running process must not take the process down with SIGBUS.
    if let Ok(artifact) = std::fs::read(&file) {
        // SAFETY: the file is one herald wrote (below) into its own cache
        // directory, named by the hash of the source bytes and the engine's
        // compatibility hash; wasmtime checks the header and the engine
        // compatibility of the artifact before using it.
        match unsafe { Component::deserialize(engine, &artifact) } {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::warn!(file = %file.display(), "ignoring unusable cached component: {e:#}");
            }
        }
    }
    let component = Component::new(engine, bytes).map_err(compile_err)?;
    match component.serialize() {
        Ok(art) => {
            let tmp = file.with_extension(format!("tmp{}", std::process::id()));
            let written = std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(&tmp, &art))
                .and_then(|_| std::fs::rename(&tmp, &file));
            if let Err(e) = written {
                tracing::warn!(dir = %dir.display(), "cannot cache compiled component: {e}");
                let _ = std::fs::remove_file(&tmp);
            }
        }
        Err(e) => tracing::warn!("cannot serialise compiled component: {e:#}"),
    }
    Ok(component)
}
