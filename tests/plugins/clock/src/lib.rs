//! A test plugin (not shipped) that reads the wall clock: it loads only
//! when its policy grants `clocks`, and the refusal says so.

use herald_plugin_sdk::{Event, NoConfig, Plugin, Verdict};

pub struct Clock;

impl Plugin for Clock {
    type Config = NoConfig;

    fn new(_: NoConfig) -> Result<Self, String> {
        Ok(Clock)
    }

    fn handle(&mut self, _event: &mut Event<'_>) -> Verdict {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) if d.as_secs() > 0 => Verdict::Pass,
            _ => Verdict::drop("the clock is not set"),
        }
    }
}

herald_plugin_sdk::export_plugin!(Clock);
