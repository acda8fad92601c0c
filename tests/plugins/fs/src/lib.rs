//! A test plugin (not shipped) that reads a file with `std::fs`: the host
//! must refuse it naming the filesystem, not the wall clock `std::fs` also
//! pulls in, with or without the clocks granted.

use herald_plugin_sdk::{Event, NoConfig, Plugin, Verdict};

pub struct Fs;

impl Plugin for Fs {
    type Config = NoConfig;

    fn new(_: NoConfig) -> Result<Self, String> {
        Ok(Fs)
    }

    fn handle(&mut self, _event: &mut Event<'_>) -> Verdict {
        match std::fs::read_to_string("/etc/hostname") {
            Ok(_) => Verdict::drop("read a file"),
            Err(_) => Verdict::Pass,
        }
    }
}

herald_plugin_sdk::export_plugin!(Fs);
