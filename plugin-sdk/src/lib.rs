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
//!     fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
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
//! let mut plugin = herald_plugin_sdk::testing::init::<OnlyApp>(r#"{"app":"web"}"#).unwrap();
//! let mut event = herald_plugin_sdk::TestEvent::added(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod",
//!     "metadata": {"name": "a", "namespace": "n", "labels": {"app": "web"}}
//! }));
//! assert_eq!(herald_plugin_sdk::testing::run(&mut plugin, &mut event), Verdict::Pass);
//! ```
//!
//! Where to start: [`Plugin`], then [`Event`]'s accessors. [`testing`] has the
//! helpers for native unit tests. [`serde_json`] is re-exported (and
//! [`Value`], what [`Event::get`] returns), so a plugin can name the type
//! without a dependency of its own.
//!
//! # The SDK and the WIT
//!
//! [`Event`]'s methods are the WIT's `event` functions under their Rust
//! names, plus parsed variants:
//!
//! | WIT (`wit/herald.wit`) | SDK | |
//! | --- | --- | --- |
//! | `change`, `api-version`, `kind`, `namespace`, `name` | [`Event::change`], [`Event::api_version`], [`Event::kind`], [`Event::namespace`], [`Event::name`] | |
//! | `get` | [`Event::get_json`] | [`Event::get`] parses, [`Event::get_as`] deserialises |
//! | `get-string` | [`Event::get_string`] | [`Event::label`], [`Event::annotation`] build the pointer |
//! | `get-old` | [`Event::get_old_json`] | [`Event::get_old`] parses |
//! | `remove` | [`Event::remove`] | [`Event::remove_matching`] expands `*` |
//! | `set`, `set-old` | [`Event::set_json`], [`Event::set_old_json`] | [`Event::set`], [`Event::set_old`] serialise |
//! | `to-json`, `old-to-json` | [`Event::to_json`], [`Event::old_to_json`] | [`Event::object`], [`Event::old_object`] parse |
//! | `log` | [`info`], [`debug`], [`warn`], [`error`] | |
//!
//! Every fallible accessor returns [`EventError`]. An object's identity
//! (`apiVersion`, `kind`, `metadata.name`, `namespace`, `uid`, and `""` or
//! `/metadata` that hold them) is read-only: `set`, `set_old` and `remove`
//! refuse it with [`EventError::Pointer`].

extern crate self as herald_plugin_sdk;

mod bindings;
mod change;
mod error;
mod event;
mod export;
mod log;
pub mod pointer;
#[cfg(not(target_arch = "wasm32"))]
mod test_event;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod verdict;

pub use change::Change;
pub use error::EventError;
pub use event::Event;
pub use log::{debug, error, info, warn};
pub use pointer::PointerError;
/// The JSON crate the SDK speaks: `Event::get` returns its [`Value`].
pub use serde_json;
pub use serde_json::Value;
#[cfg(not(target_arch = "wasm32"))]
pub use test_event::TestEvent;
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
    ///
    /// `&mut self`: a plugin may keep state between events (a counter, a
    /// cache) without interior mutability. Each instance handles one event
    /// at a time.
    fn handle(&mut self, event: &mut Event<'_>) -> Verdict;
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
