//! A test plugin (not shipped) that reads the clocks: it loads only when its
//! policy grants `clocks`, and the refusal says so.
//!
//! An event named `sleep-<ms>` makes the call wait that many milliseconds on
//! the monotonic clock (using no CPU meanwhile), to check that a deadline
//! counts the CPU time a call uses, with the wall clock as a cap;
//! `until-<ms>` waits for the instant that many milliseconds on, the other
//! way WASI has to wait.

use herald_plugin_sdk::{Event, NoConfig, Plugin, Verdict};

pub struct Clock;

impl Plugin for Clock {
    type Config = NoConfig;

    fn new(_: NoConfig) -> Result<Self, String> {
        Ok(Clock)
    }

    fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
        if let Some(ms) = event
            .name()
            .strip_prefix("sleep-")
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            return Verdict::drop(format!("slept {ms} ms"));
        }
        #[cfg(target_arch = "wasm32")]
        if let Some(ms) = event
            .name()
            .strip_prefix("until-")
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            use wasip2::clocks::monotonic_clock;
            let when = monotonic_clock::now().saturating_add(ms.saturating_mul(1_000_000));
            monotonic_clock::subscribe_instant(when).block();
            return Verdict::drop(format!("waited {ms} ms"));
        }
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) if d.as_secs() > 0 => Verdict::Pass,
            _ => Verdict::drop("the clock is not set"),
        }
    }
}

herald_plugin_sdk::export_plugin!(Clock);
