//! Errors of the plugin runtime.

use std::path::PathBuf;
use std::time::Duration;

/// A plugin file could not be loaded. Carries the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read plugin")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("{path}: not a WebAssembly component: {message}")]
    Compile { path: PathBuf, message: String },
    /// The component imports something its policy does not allow. The
    /// message names every such import by capability, the most serious
    /// first, and says which a policy can grant.
    #[error("{path}: {forbidden}")]
    ForbiddenImport {
        path: PathBuf,
        /// The import named first (of the most serious kind).
        import: String,
        /// Every forbidden import, grouped by capability.
        forbidden: super::imports::Forbidden,
    },
    /// The component does not export the herald world.
    #[error(
        "{path}: not a herald plugin: missing export `{export}` (a plugin exports `init` and `handle` of herald:plugin/plugin@0.1.0)"
    )]
    MissingExport { path: PathBuf, export: String },
    /// The component's imports or exports have the wrong types.
    #[error("{path}: not a herald plugin: {message}")]
    Incompatible { path: PathBuf, message: String },
    /// `init` returned an error (for example a bad config).
    #[error("plugin `{plugin}`: init failed: {message}")]
    Init { plugin: String, message: String },
    /// Instantiation or `init` itself failed (trap, limits).
    #[error("plugin `{plugin}`: cannot start")]
    Start {
        plugin: String,
        #[source]
        source: PluginError,
    },
    /// The engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// One call into a plugin failed; the instance is torn down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The call used its deadline in CPU time.
    #[error("ran past its deadline of {0:?} (CPU time)")]
    Deadline(Duration),
    /// The call took its deadline's wall-clock cap (ten times the deadline)
    /// without using it in CPU time: it waited.
    #[error("ran past {0:?} of wall-clock time (ten times its deadline) waiting")]
    WallDeadline(Duration),
    /// The plugin tried to grow its memory past its cap.
    #[error("exceeded its memory limit of {limit} bytes (asked for {asked})")]
    Memory { limit: usize, asked: usize },
    /// The plugin panicked; the message is the panic's.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The plugin ran out of stack: native stack exhaustion, or an
    /// out-of-bounds access with the backtrace full of one function calling
    /// itself (Rust's wasm32 stack lives in linear memory; overflowing it
    /// shows up as an access below address 0).
    #[error("overflowed its stack{}: unbounded or too deep recursion", .0.as_deref().map(|f| format!(" in {f}")).unwrap_or_default())]
    StackOverflow(Option<String>),
    /// Any other trap: one line, the trap and the innermost function; the
    /// full backtrace is logged at debug level.
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin broke the contract (wrong number of verdicts, kept events).
    #[error("broke the plugin contract: {0}")]
    Contract(String),
    /// Not called: its circuit breaker suspended it after this many failed
    /// calls in a row (`plugins.breaker`).
    #[error("suspended after {0} failed calls in a row")]
    Suspended(u32),
}

/// Raised by the memory limiter so the call's error names the cap.
#[derive(Debug)]
pub(crate) struct MemoryLimitExceeded {
    pub limit: usize,
    pub asked: usize,
}

impl std::fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory limit of {} bytes exceeded (asked for {})",
            self.limit, self.asked
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}
