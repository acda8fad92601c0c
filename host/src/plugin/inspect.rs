//! What a component is, without running it: the herald world and version it
//! was built against, its exports, its imports by capability, and what
//! policy would let herald load it. `herald plugin inspect` prints this.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;

use super::bindings::PluginPre;
use super::error::LoadError;
use super::imports::{Forbidden, Grant, ImportKind, WORLD_TYPES};
use super::load::{check_header, compile_cached, one_line};
use super::runtime::Runtime;
use super::settings::Capability;

/// The herald interface every plugin imports; its version is the WIT's.
const TYPES: &str = "herald:plugin/types";

/// One import of a component.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Import {
    /// As the component names it, version included.
    pub name: String,
    /// The capability it gives.
    pub kind: ImportKind,
    /// Whether a policy can allow it.
    pub grant: Grant,
}

/// What a policy must say for herald to load the component.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAdvice {
    /// Whether any policy lets it load.
    pub loads: bool,
    /// The capabilities the policy must grant (`allow:`), when it loads.
    pub allow: Vec<Capability>,
    /// Why it cannot load, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// A component, described.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: usize,
    /// SHA-256 of its bytes, hex (the compile cache's key).
    pub sha256: String,
    /// `herald:plugin/plugin@<version>` when it is a herald plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    /// The version of `herald:plugin/types` it was built against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its exports (`init`, `handle` for a plugin).
    pub exports: Vec<String>,
    /// Its imports, in the component's order.
    pub(crate) imports: Vec<Import>,
    /// The functions of `herald:plugin/types` it uses (`event.get`, …).
    pub host_functions: Vec<String>,
    /// Why this host cannot run it even with every grant (a missing export,
    /// a type mismatch), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incompatible: Option<String>,
    /// What policy would load it.
    pub policy: PolicyAdvice,
}

impl Runtime {
    /// Describes the component at `path`.
    ///
    /// # Errors
    /// [`LoadError::Read`] and [`LoadError::Compile`] when it cannot be read
    /// or is not a component; anything else is part of the description.
    pub fn inspect(&self, path: &Path) -> Result<Inspection, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        check_header(path, &bytes)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let component = compile_cached(self, path, &bytes, &sha256)?;
        let engine = self.engine();
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let mut imports = Vec::new();
        let mut host_functions = Vec::new();
        let mut version = None;
        for (name, item) in ty.imports(engine) {
            if WORLD_TYPES.contains(&name)
                && matches!(item.ty, ComponentItem::Type(_) | ComponentItem::Resource(_))
            {
                continue;
            }
            let kind = ImportKind::of(name);
            if let Some(rest) = name.strip_prefix(TYPES) {
                version = Some(rest.trim_start_matches('@').to_string()).filter(|v| !v.is_empty());
                if let ComponentItem::ComponentInstance(inst) = &item.ty {
                    host_functions.extend(inst.exports(engine).filter_map(|(f, item)| {
                        matches!(item.ty, ComponentItem::ComponentFunc(_)).then(|| function_name(f))
                    }));
                }
            }
            imports.push(Import {
                name: name.to_string(),
                kind,
                grant: kind.grant(),
            });
        }
        let is_plugin = ["init", "handle"]
            .iter()
            .all(|e| exports.iter().any(|x| x == e));
        let world =
            (is_plugin && imports.iter().any(|i| i.name.starts_with(TYPES))).then(
                || match &version {
                    Some(v) => format!("herald:plugin/plugin@{v}"),
                    None => "herald:plugin/plugin".to_string(),
                },
            );
        // Does this host's linker and export check accept it? With every
        // grant: the policy question is answered separately below.
        let incompatible = if !is_plugin {
            let missing: Vec<&str> = ["init", "handle"]
                .into_iter()
                .filter(|e| !exports.iter().any(|x| x == e))
                .collect();
            Some(format!(
                "not a herald plugin: missing export {} (a plugin exports `init` and `handle` of herald:plugin/plugin)",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ))
        } else {
            match self.inner.linker.instantiate_pre(&component) {
                Err(e) => Some(one_line(&format!("{e:#}"), 500)),
                Ok(pre) => PluginPre::new(pre)
                    .err()
                    .map(|e| one_line(&format!("{e:#}"), 500)),
            }
        };
        let mut allow: Vec<Capability> = Vec::new();
        for i in &imports {
            if let Grant::Policy(c) = i.grant
                && !allow.contains(&c)
            {
                allow.push(c);
            }
        }
        let refused = Forbidden::check(imports.iter().map(|i| i.name.as_str()), &allow)
            .map(|f| f.to_string())
            .or_else(|| incompatible.clone());
        Ok(Inspection {
            path: path.to_path_buf(),
            size: bytes.len(),
            sha256,
            world,
            version,
            exports,
            imports,
            host_functions,
            incompatible,
            policy: PolicyAdvice {
                loads: refused.is_none(),
                allow: if refused.is_none() { allow } else { Vec::new() },
                refused,
            },
        })
    }
}

/// `[method]event.get-old` → `event.get-old`.
fn function_name(export: &str) -> String {
    match export.split_once(']') {
        Some((_, rest)) if export.starts_with('[') => rest.to_string(),
        _ => export.to_string(),
    }
}

impl Inspection {
    /// The report `herald plugin inspect` prints.
    pub(crate) fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "file:      {} ({} bytes, sha256 {})",
            self.path.display(),
            self.size,
            &self.sha256[..16.min(self.sha256.len())]
        );
        let _ = writeln!(
            out,
            "world:     {}",
            self.world
                .as_deref()
                .unwrap_or("none (not a herald plugin)")
        );
        if let Some(v) = &self.version {
            let _ = writeln!(out, "version:   herald:plugin/types@{v}");
        }
        let _ = writeln!(out, "exports:   {}", list(&self.exports));
        if !self.host_functions.is_empty() {
            let _ = writeln!(out, "uses:      {}", self.host_functions.join(", "));
        }
        let _ = writeln!(out, "imports by capability:");
        let shown = [
            ImportKind::Filesystem,
            ImportKind::Sockets,
            ImportKind::Http,
            ImportKind::Clocks,
            ImportKind::Random,
            ImportKind::Other,
            ImportKind::Cli,
            ImportKind::Io,
            ImportKind::Herald,
        ];
        for kind in shown {
            let names: Vec<String> = self
                .imports
                .iter()
                .filter(|i| i.kind == kind)
                .map(|i| i.name.clone())
                .collect();
            // The five capabilities a reader asks about are always listed;
            // the rest only when present.
            let always = matches!(
                kind,
                ImportKind::Filesystem
                    | ImportKind::Sockets
                    | ImportKind::Http
                    | ImportKind::Clocks
                    | ImportKind::Random
            );
            if names.is_empty() && !always {
                continue;
            }
            let grant = if names.is_empty() {
                String::new()
            } else {
                match kind.grant() {
                    Grant::Always => "  [always allowed]".to_string(),
                    Grant::Policy(_) => "  [needs `allow: [clocks]`]".to_string(),
                    Grant::Never => "  [never allowed]".to_string(),
                }
            };
            let _ = writeln!(out, "  {:<11} {}{grant}", kind.label(), list(&names));
        }
        if let Some(why) = &self.incompatible {
            let _ = writeln!(out, "host:      cannot run it: {why}");
        }
        let policy = match (&self.policy.refused, self.policy.allow.is_empty()) {
            (Some(why), _) => format!("no policy loads it: {why}"),
            (None, true) => "loads with the default policy (no grants)".to_string(),
            (None, false) => format!(
                "loads with `allow: [{}]` in its policy",
                self.policy
                    .allow
                    .iter()
                    .map(|c| match c {
                        Capability::Clocks => "clocks",
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let _ = writeln!(out, "policy:    {policy}");
        out
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}
