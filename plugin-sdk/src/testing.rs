//! Helpers for native unit tests of a plugin.

use crate::{Plugin, TestEvent, Verdict};

/// Builds the plugin from config text exactly as `init` does in the host.
pub fn init<P: Plugin>(config: &str) -> Result<P, String> {
    crate::build::<P>(config)
}

/// Runs the plugin on one in-memory event, which keeps any removals or sets.
pub fn run<P: Plugin>(plugin: &mut P, event: &mut TestEvent) -> Verdict {
    plugin.handle(&mut event.as_event())
}
