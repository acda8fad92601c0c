//! What a component's imports ask for, by capability, and whether a
//! plugin's policy can allow them.
//!
//! The allow-list check at load and `herald plugin inspect` share this
//! classification, so what inspect says a policy would allow is what the
//! loader accepts.

use serde::Serialize;

use super::settings::Capability;

/// The capability an import gives a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ImportKind {
    /// Sockets (`wasi:sockets/*`, what `std::net` needs): never allowed.
    Sockets,
    /// HTTP (`wasi:http/*`): never allowed.
    Http,
    /// The filesystem (`wasi:filesystem/*`, what `std::fs` needs): never
    /// allowed.
    Filesystem,
    /// Anything herald does not know: never allowed.
    Other,
    /// Wall and monotonic clocks (`wasi:clocks/*`, what `SystemTime` and
    /// `Instant` need): allowed when the policy grants `clocks`.
    Clocks,
    /// `wasi:random/*`: always allowed.
    Random,
    /// `wasi:cli/*` (stdio, environment, exit): always allowed; stdout and
    /// stderr go to herald's log, the environment is empty.
    Cli,
    /// `wasi:io/*` (streams, poll): always allowed.
    Io,
    /// The herald world: `herald:plugin/types`, `log` and the world's types.
    Herald,
}

/// Whether an import kind can be allowed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Grant {
    /// Every plugin may import it.
    Always,
    /// A plugin may import it when its policy grants this capability.
    Policy(Capability),
    /// No policy allows it.
    Never,
}

/// Imports every plugin may use, by base name (the version is ignored).
const BASE: &[(&str, ImportKind)] = &[
    ("herald:plugin/types", ImportKind::Herald),
    ("log", ImportKind::Herald),
    ("wasi:io/error", ImportKind::Io),
    ("wasi:io/streams", ImportKind::Io),
    ("wasi:io/poll", ImportKind::Io),
    ("wasi:cli/environment", ImportKind::Cli),
    ("wasi:cli/exit", ImportKind::Cli),
    ("wasi:cli/stdin", ImportKind::Cli),
    ("wasi:cli/stdout", ImportKind::Cli),
    ("wasi:cli/stderr", ImportKind::Cli),
    ("wasi:cli/terminal-input", ImportKind::Cli),
    ("wasi:cli/terminal-output", ImportKind::Cli),
    ("wasi:cli/terminal-stdin", ImportKind::Cli),
    ("wasi:cli/terminal-stdout", ImportKind::Cli),
    ("wasi:cli/terminal-stderr", ImportKind::Cli),
    ("wasi:random/random", ImportKind::Random),
    ("wasi:random/insecure", ImportKind::Random),
    ("wasi:random/insecure-seed", ImportKind::Random),
    ("wasi:clocks/monotonic-clock", ImportKind::Clocks),
    ("wasi:clocks/wall-clock", ImportKind::Clocks),
];

/// Types the world re-exports from `herald:plugin/types`; they show up as
/// plain type imports and carry no capability.
pub(crate) const WORLD_TYPES: &[&str] = &["event", "verdict", "level", "change"];

/// `wasi:clocks/wall-clock@0.2.0` → `wasi:clocks/wall-clock`.
pub(super) fn base_name(import: &str) -> &str {
    import.split('@').next().unwrap_or(import)
}

impl ImportKind {
    /// The kind of the import named `import` (a version suffix is ignored).
    /// Only interfaces herald links are allowed: an unknown member of a
    /// known package (say a future `wasi:cli/run`) is [`ImportKind::Other`].
    pub(crate) fn of(import: &str) -> ImportKind {
        let base = base_name(import);
        if let Some((_, kind)) = BASE.iter().find(|(name, _)| *name == base) {
            return *kind;
        }
        let package = base.split('/').next().unwrap_or(base);
        match package {
            "wasi:sockets" => ImportKind::Sockets,
            "wasi:http" => ImportKind::Http,
            "wasi:filesystem" => ImportKind::Filesystem,
            _ => ImportKind::Other,
        }
    }

    /// Whether and how a policy can allow this kind.
    pub(crate) fn grant(self) -> Grant {
        match self {
            ImportKind::Herald | ImportKind::Io | ImportKind::Cli | ImportKind::Random => {
                Grant::Always
            }
            ImportKind::Clocks => Grant::Policy(Capability::Clocks),
            ImportKind::Sockets | ImportKind::Http | ImportKind::Filesystem | ImportKind::Other => {
                Grant::Never
            }
        }
    }

    /// Whether a plugin granted `allow` may import this kind.
    pub(crate) fn allowed(self, allow: &[Capability]) -> bool {
        match self.grant() {
            Grant::Always => true,
            Grant::Policy(c) => allow.contains(&c),
            Grant::Never => false,
        }
    }

    /// The word a message uses for this kind.
    pub(crate) fn label(self) -> &'static str {
        match self {
            ImportKind::Sockets => "sockets",
            ImportKind::Http => "http",
            ImportKind::Filesystem => "filesystem",
            ImportKind::Other => "other",
            ImportKind::Clocks => "clocks",
            ImportKind::Random => "random",
            ImportKind::Cli => "cli",
            ImportKind::Io => "io",
            ImportKind::Herald => "herald",
        }
    }
}

/// Imports a plugin may not have, grouped by kind, most serious first.
///
/// The order matters for the message: `std::fs` pulls in
/// `wasi:clocks/wall-clock` (file times), `std::net` pulls in
/// `wasi:clocks/monotonic-clock` (timeouts); naming the clock first would
/// send the author after the wrong import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// `(kind, imports of that kind)`, in [`ImportKind`] order.
    pub(crate) groups: Vec<(ImportKind, Vec<String>)>,
}

impl Forbidden {
    /// The imports among `imports` that `allow` does not cover; `None` if
    /// every import is allowed.
    pub fn check<'a>(
        imports: impl IntoIterator<Item = &'a str>,
        allow: &[Capability],
    ) -> Option<Forbidden> {
        let mut groups: Vec<(ImportKind, Vec<String>)> = Vec::new();
        for import in imports {
            let kind = ImportKind::of(import);
            if kind.allowed(allow) {
                continue;
            }
            match groups.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, list)) => list.push(import.to_string()),
                None => groups.push((kind, vec![import.to_string()])),
            }
        }
        groups.sort_by_key(|(k, _)| *k);
        (!groups.is_empty()).then_some(Forbidden { groups })
    }

    /// The import to name first: the first of the most serious kind.
    pub fn first(&self) -> &str {
        self.groups
            .first()
            .and_then(|(_, list)| list.first())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Every forbidden import, most serious first.
    pub fn all(&self) -> Vec<String> {
        self.groups.iter().flat_map(|(_, l)| l.clone()).collect()
    }
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut never = Vec::new();
        let mut grantable = Vec::new();
        for (kind, list) in &self.groups {
            let text = format!("{} ({})", kind.label(), list.join(", "));
            match kind.grant() {
                Grant::Policy(_) => grantable.push(text),
                _ => never.push(text),
            }
        }
        if !never.is_empty() {
            write!(
                f,
                "imports {}, which no policy allows: a plugin reads only the \
                 event, with no filesystem, sockets or HTTP",
                never.join(" and ")
            )?;
            if !grantable.is_empty() {
                write!(f, "; it also imports ")?;
            }
        } else {
            write!(f, "imports ")?;
        }
        if !grantable.is_empty() {
            write!(
                f,
                "{}, which the plugin's policy can grant with `allow: [clocks]` \
                 (`herald plugin test --allow-clocks`)",
                grantable.join(" and ")
            )?;
        }
        write!(
            f,
            ". Always allowed: herald:plugin, log, wasi:io, wasi:cli, wasi:random"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_package_and_ignore_versions() {
        assert_eq!(
            ImportKind::of("wasi:clocks/wall-clock@0.2.3"),
            ImportKind::Clocks
        );
        assert_eq!(
            ImportKind::of("wasi:filesystem/preopens@0.2.0"),
            ImportKind::Filesystem
        );
        assert_eq!(
            ImportKind::of("wasi:sockets/tcp@0.2.0"),
            ImportKind::Sockets
        );
        assert_eq!(
            ImportKind::of("wasi:http/outgoing-handler"),
            ImportKind::Http
        );
        assert_eq!(ImportKind::of("wasi:cli/run@0.2.0"), ImportKind::Other);
        assert_eq!(ImportKind::of("log"), ImportKind::Herald);
    }

    #[test]
    fn the_most_serious_import_is_named_first_and_clocks_get_the_hint() {
        let imports = [
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:filesystem/types@0.2.0",
            "wasi:filesystem/preopens@0.2.0",
            "wasi:cli/stdout@0.2.0",
        ];
        let f = Forbidden::check(imports, &[]).expect("forbidden");
        assert_eq!(f.first(), "wasi:filesystem/types@0.2.0");
        let text = f.to_string();
        assert!(
            text.starts_with(
                "imports filesystem (wasi:filesystem/types@0.2.0, wasi:filesystem/preopens@0.2.0), which no policy allows"
            ),
            "{text}"
        );
        assert!(
            text.contains("clocks (wasi:clocks/wall-clock@0.2.0), which the plugin's policy can grant with `allow: [clocks]`"),
            "{text}"
        );
        let f = Forbidden::check(imports, &[Capability::Clocks]).expect("forbidden");
        assert!(!f.to_string().contains("clocks ("), "{f}");
        assert!(Forbidden::check(["wasi:clocks/wall-clock"], &[Capability::Clocks]).is_none());
        let f = Forbidden::check(["wasi:clocks/monotonic-clock"], &[]).expect("forbidden");
        assert!(
            f.to_string().starts_with(
                "imports clocks (wasi:clocks/monotonic-clock), which the plugin's policy can grant"
            ),
            "{f}"
        );
    }
}
