//! A plugin's waits on the monotonic clock end with its call's budget.
//!
//! A plugin granted the clocks can wait: `std::thread::sleep` is a
//! `subscribe-duration` and a block on the pollable it returns. The wait
//! runs in the host, where the epoch that ends a call over its budget is
//! not checked; as WASI implements it, a plugin asking for an hour would
//! hold its chain worker (and every object sharded to it) for that hour,
//! and one asking for longer than a clock can count, forever.
//!
//! Here `subscribe-duration` and `subscribe-instant` wait at most what is
//! left of the call's wall-clock cap ([`CallBudget::wait_left`]). A wait cut
//! short returns to the plugin's code with the cap spent, and the first
//! epoch check there ends the call with [`PluginError::WallDeadline`], as
//! for a call that computed that long. A wait that fits in the budget waits
//! as asked.
//!
//! [`CallBudget::wait_left`]: super::budget::CallBudget::wait_left
//! [`PluginError::WallDeadline`]: super::error::PluginError::WallDeadline

use std::time::{Duration, Instant};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::instance::HostState;

/// The interface whose waits are replaced, at the version wasmtime-wasi
/// defines (a plugin importing an earlier 0.2 version links to it too).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replaces WASI's `subscribe-duration` and `subscribe-instant` in `linker`
/// (which has WASI's) with waits bounded by the call's budget.
///
/// # Errors
/// The linker has no such interface to replace them in.
pub(super) fn bound_waits(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, HostState>, (nanos,): (u64,)| {
            Ok((wait(store.data_mut(), Duration::from_nanos(nanos))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, HostState>, (when,): (u64,)| {
            let state = store.data_mut();
            let now = state.clocks().now()?;
            wait(state, Duration::from_nanos(when.saturating_sub(now))).map(|pollable| (pollable,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A pollable ready after `asked`, or when the call's budget is spent if
/// that comes first.
fn wait(state: &mut HostState, asked: Duration) -> wasmtime::Result<Resource<DynPollable>> {
    let now = Instant::now();
    let until = now + asked.min(state.budget().wait_left(now));
    let table = state.ctx().table;
    let wait = table.push(Wait {
        until: tokio::time::Instant::from_std(until),
        yielded: false,
    })?;
    subscribe(table, wait)
}

/// A wait until `until`.
struct Wait {
    until: tokio::time::Instant,
    /// A wait already over yields to the runtime once, as WASI's does, so a
    /// plugin polling with a zero timeout in a loop does not starve it.
    yielded: bool,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Wait {
    async fn ready(&mut self) {
        if self.until > tokio::time::Instant::now() {
            tokio::time::sleep_until(self.until).await;
        } else if !self.yielded {
            self.yielded = true;
            tokio::task::yield_now().await;
        }
    }
}
