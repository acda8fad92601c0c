//! What went wrong in a failed call, in one line: the memory cap, the
//! deadline, a panic (through the SDK's hook or on stderr), a stack
//! overflow, or a trap and the function it happened in.

use wasmtime::{Store, Trap};

use super::error::{MemoryLimitExceeded, PluginError};
use super::instance::HostState;
use super::output::{MAX_REASON, sanitise};

/// Names what went wrong in a failed call.
pub(crate) fn classify(e: wasmtime::Error, store: &Store<HostState>) -> PluginError {
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return PluginError::Memory {
            limit: m.limit,
            asked: m.asked,
        };
    }
    let state = store.data();
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return state.budget().error();
    }
    if let Some(p) = &state.last_panic {
        return PluginError::Panicked(p.clone());
    }
    // A panic that bypassed the SDK's hook: std's message on stderr.
    let stderr = state.stderr.tail();
    if let Some(at) = stderr.iter().position(|l| l.contains("panicked at")) {
        let rest: Vec<&str> = stderr[at..].iter().take(2).map(String::as_str).collect();
        return PluginError::Panicked(sanitise(&rest.join(" "), MAX_REASON));
    }
    // The backtrace is for whoever debugs the plugin, not for every log
    // line that reports the failure.
    tracing::debug!(plugin = &*state.plugin, "plugin trap: {e:?}");
    describe_trap(&e)
}

/// One line for a trap: what trapped and in which function, and a stack
/// overflow named as such.
fn describe_trap(e: &wasmtime::Error) -> PluginError {
    let trap = e.downcast_ref::<Trap>();
    let frames = e
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|bt| bt.frames())
        .unwrap_or_default();
    let function = |i: usize| {
        frames.get(i).map(|f| match f.func_name() {
            Some(name) => format!("`{name}`"),
            None => format!("wasm function {}", f.func_index()),
        })
    };
    if trap == Some(&Trap::StackOverflow) {
        return PluginError::StackOverflow(function(0));
    }
    // A backtrace as deep as wasmtime records, every frame in the same one
    // or two functions: recursion. Out of bounds there is the shadow stack
    // running off the bottom of linear memory.
    let recursing = frames.len() >= RECURSION_FRAMES && {
        let mut funcs: Vec<u32> = frames.iter().map(|f| f.func_index()).collect();
        funcs.sort_unstable();
        funcs.dedup();
        funcs.len() <= 2
    };
    if trap == Some(&Trap::MemoryOutOfBounds) && recursing {
        return PluginError::StackOverflow(function(0));
    }
    let what = match trap {
        Some(t) => t.to_string(),
        // Not a wasm trap (a host error): its message without a backtrace.
        None => super::load::one_line(&e.root_cause().to_string(), 300),
    };
    let what = what
        .strip_prefix("wasm trap: ")
        .unwrap_or(&what)
        .to_string();
    PluginError::Trap(match function(0) {
        Some(f) => format!("{what} in {f}"),
        None => what,
    })
}

/// Frames of one function that make a backtrace look like recursion; what
/// wasmtime records by default (20) is well above any honest call depth of
/// a single plugin function calling itself through a trap.
const RECURSION_FRAMES: usize = 16;
