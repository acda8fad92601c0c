//! `herald plugin new`: writes a plugin project that builds, and passes its
//! test, as generated: a manifest, a source with one filter and its native
//! tests, a README, and an event and a config for `herald plugin test`.
//!
//! One module per language: [`rust`] (Cargo and herald-plugin-sdk),
//! [`js`] (npm and componentize-js), [`python`] (componentize-py). Each
//! project carries the WIT of the herald that wrote it, so the plugin speaks
//! that host's contract wherever it is copied.

mod js;
mod python;
mod rust;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Arguments of `herald plugin new`.
#[derive(Debug, clap::Args)]
pub struct PluginNewArgs {
    /// The plugin's name: letters, digits, `-`, `_`, starting with a
    /// letter. It names the crate or package and the `.wasm` (a Rust crate's
    /// `-` become `_` there).
    pub name: String,
    /// The language of the project.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// Where to write it; default `./<name>`. Must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Use the SDK at this path (a herald checkout's `plugin-sdk`) instead
    /// of writing this herald's SDK into the project (`--lang rust` only).
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

/// Languages `plugin new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with herald-plugin-sdk; `cargo test`, then a wasm32-wasip2 build.
    Rust,
    /// JavaScript, built with componentize-js (npm); `npm test` runs node's
    /// test runner.
    #[value(alias = "javascript")]
    Js,
    /// Python, built with componentize-py (pip); `python3 -m unittest`.
    #[value(alias = "py")]
    Python,
}

/// The WIT every project is built against (`wit/herald.wit` in it).
pub(super) const WIT: &str = include_str!("../../../../wit/herald.wit");

/// An object to try the plugin on with `herald plugin test`.
pub(super) const POD_JSON: &str = r#"{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {"name": "web-1", "namespace": "dev", "labels": {"app": "web"}}
}
"#;

/// The generated filter's config, for `herald plugin test --config`.
pub(super) const CONFIG_YAML: &str = "namespaces: [shop]\n";

/// Whether `name` can be a plugin's name in every language: a crate's, an
/// npm package's (once lowercased) and a file name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64
}

/// Writes the project; returns its directory.
///
/// # Errors
/// A name that cannot be a plugin's, a directory that is not empty, an SDK
/// path without a `Cargo.toml` (or with a language other than Rust), and
/// I/O errors.
pub(crate) fn run(args: &PluginNewArgs) -> Result<PathBuf> {
    if !valid_name(&args.name) {
        bail!(
            "{:?} cannot be a plugin's name: use a letter, then letters, digits, `-` or `_` \
             (it names the crate or package and the .wasm)",
            args.name
        );
    }
    if args.sdk.is_some() && args.lang != Lang::Rust {
        bail!(
            "--sdk is the Rust SDK's path; a {:?} project needs none (it carries the WIT)",
            args.lang
        );
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        if entries.next().is_some() {
            bail!("{} exists and is not empty", dir.display());
        }
    }
    let sdk = match &args.sdk {
        Some(p) => {
            let p = std::path::absolute(p)
                .with_context(|| format!("--sdk {}: cannot resolve", p.display()))?;
            if !p.join("Cargo.toml").is_file() {
                bail!(
                    "--sdk {}: no Cargo.toml there (give a herald checkout's plugin-sdk)",
                    p.display()
                );
            }
            Some(p)
        }
        None => None,
    };
    let files = match args.lang {
        Lang::Rust => rust::project_files(&args.name, sdk.as_deref()),
        Lang::Js => js::project_files(&args.name),
        Lang::Python => python::project_files(&args.name),
    };
    for (path, text) in files {
        let executable = is_script(&path);
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if executable {
            make_executable(&path)?;
        }
    }
    Ok(dir)
}

/// Files written executable: the build scripts.
fn is_script(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "sh")
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<()> {
    Ok(())
}

/// Runs `herald plugin new` and says what to do next.
///
/// # Errors
/// Those of [`run`].
pub(crate) fn print(args: &PluginNewArgs) -> Result<()> {
    let dir = run(args)?;
    let next = match args.lang {
        Lang::Rust => rust::next_steps(&dir, &args.name),
        Lang::Js => js::next_steps(&dir, &args.name),
        Lang::Python => python::next_steps(&dir, &args.name),
    };
    println!("{next}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_every_language() {
        assert!(valid_name("my-plugin") && valid_name("a_1") && valid_name("Ab"));
        assert!(!valid_name("1abc") && !valid_name("a b") && !valid_name(""));
        assert!(!valid_name("a.b") && !valid_name("@scope/x"));
    }
}
