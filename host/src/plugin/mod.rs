//! The sandboxed WebAssembly plugin runtime.
//!
//! Where to start: [`Runtime`] compiles and validates a component file into a
//! [`LoadedPlugin`] (compile → validate → pre-instantiate, cached on disk by
//! content hash); a [`PluginInstance`] runs it with its config, memory cap and
//! deadline; a [`Chain`] runs several in order and combines their verdicts,
//! each plugin behind a [`Breaker`] that suspends it after repeated failures.
//!
//! # Errors
//! Nothing a plugin does can crash the host: a trap, a deadline overrun, a
//! memory overrun or a panic tears the instance down (it is re-instantiated
//! on the next call) and the plugin's [`OnError`] policy decides the fate of
//! that call's events.

mod bindings;
mod breaker;
mod budget;
mod chain;
mod clocks;
mod drop_log;
mod error;
mod event;
mod imports;
mod inspect;
mod instance;
mod load;
mod output;
mod runtime;
mod settings;
mod trap;

pub use breaker::{Admit, Breaker, BreakerSettings, Transition};
pub use chain::{Chain, ChainOutcome, Fate, PluginStep};
pub(crate) use drop_log::DropLog;
pub use error::{LoadError, PluginError};
pub use event::{Edits, EventData};
pub use inspect::{Inspection, PolicyAdvice};
pub use instance::{CallOutcome, PluginInstance};
pub use load::LoadedPlugin;
pub use output::{
    BURST as LOG_BURST, MAX_REASON, MAX_ROUTE, MAX_ROUTES, PER_SECOND as LOG_PER_SECOND, PluginLog,
};
pub use runtime::{Runtime, RuntimeConfig};
pub use settings::{Capability, OnError, PluginSettings, Verdict};
