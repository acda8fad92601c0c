//! A test plugin (not shipped) that opens a TCP connection with `std::net`:
//! the host must refuse it naming the sockets, not the monotonic clock
//! `std::net` also pulls in.

use herald_plugin_sdk::{Event, NoConfig, Plugin, Verdict};

pub struct Tcp;

impl Plugin for Tcp {
    type Config = NoConfig;

    fn new(_: NoConfig) -> Result<Self, String> {
        Ok(Tcp)
    }

    fn handle(&mut self, _event: &mut Event<'_>) -> Verdict {
        match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => Verdict::drop("opened a connection"),
            Err(_) => Verdict::Pass,
        }
    }
}

herald_plugin_sdk::export_plugin!(Tcp);
