//! Write herald plugins in plain Rust.
//!
//! A plugin is a type that implements [`Plugin`] plus one call of
//! [`export_plugin!`]. herald hands the plugin each change as an [`Event`]: a
//! handle to an object the host keeps parsed, so reading two fields costs two
//! small calls, not a parse of the whole object. The plugin answers with a
//! [`Verdict`]: pass, drop (with a reason) or route to named sinks.
//!
//! ```
//! use herald_plugin_sdk::{Event, Plugin, Verdict};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Config { app: String }
//!
//! struct OnlyApp { app: String }
//!
//! impl Plugin for OnlyApp {
//!     type Config = Config;
//!     fn new(config: Config) -> Result<Self, String> {
//!         Ok(OnlyApp { app: config.app })
//!     }
//!     fn handle(&self, event: &mut Event<'_>) -> Verdict {
//!         match event.label("app") {
//!             Some(app) if app == self.app => Verdict::Pass,
//!             _ => Verdict::drop("other app"),
//!         }
//!     }
//! }
//!
//! herald_plugin_sdk::export_plugin!(OnlyApp);
//!
//! // The same code runs natively against an in-memory event:
//! let plugin = herald_plugin_sdk::testing::init::<OnlyApp>(r#"{"app":"web"}"#).unwrap();
//! let mut event = herald_plugin_sdk::TestEvent::added(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod",
//!     "metadata": {"name": "a", "namespace": "n", "labels": {"app": "web"}}
//! }));
//! assert_eq!(herald_plugin_sdk::testing::run(&plugin, &mut event), Verdict::Pass);
//! ```
//!
//! Where to start: [`Plugin`], then [`Event`]'s accessors. [`testing`] has the
//! helpers for native unit tests.

extern crate self as herald_plugin_sdk;

mod bindings;
mod event;
mod export;
mod log;
pub mod pointer;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod verdict;

#[cfg(not(target_arch = "wasm32"))]
pub use event::TestEvent;
pub use event::{Change, Event};
pub use log::{debug, error, info, warn};
pub use verdict::Verdict;

/// A herald plugin.
///
/// herald creates one instance per plugin per worker, calls [`Plugin::new`]
/// once with the plugin's config, then [`Plugin::handle`] for every event.
/// A panic is reported to the host log with its message; the host then
/// replaces the instance and applies the plugin's `onError` policy.
pub trait Plugin: Sized + 'static {
    /// The plugin's configuration, deserialised from the `config` the user
    /// gave it in herald's config file. A field the user got wrong makes
    /// `init` fail with serde's message. Use [`NoConfig`] for none.
    type Config: serde::de::DeserializeOwned;

    /// Builds the plugin from its config; an `Err` rejects the plugin at load.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Decides about one event. Changes made with [`Event::remove`] and
    /// [`Event::set`] are seen by the next plugin in the chain.
    fn handle(&self, event: &mut Event<'_>) -> Verdict;
}

/// A config type for plugins that take no configuration: accepts anything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoConfig;

impl<'de> serde::Deserialize<'de> for NoConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| NoConfig)
    }
}

/// Turns the config text herald passes to `init` into the plugin.
///
/// An empty text means "no config" and is read as `{}`.
pub(crate) fn build<P: Plugin>(config: &str) -> Result<P, String> {
    let text = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    let config: P::Config =
        serde_json::from_str(text).map_err(|e| format!("invalid plugin config: {e}"))?;
    P::new(config)
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::herald;
    pub use crate::export::{handle, init};
    pub use wit_bindgen;
    pub mod bindings {
        pub use crate::bindings::*;
    }
    pub use crate::bindings::Guest;
}
