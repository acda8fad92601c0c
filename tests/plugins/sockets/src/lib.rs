//! A test plugin (not shipped) that imports `wasi:sockets`: the host must
//! refuse to load it.

use herald_plugin_sdk::{Event, NoConfig, Plugin, Verdict};

pub struct Sockets;

impl Plugin for Sockets {
    type Config = NoConfig;

    fn new(_: NoConfig) -> Result<Self, String> {
        Ok(Sockets)
    }

    fn handle(&mut self, _event: &mut Event<'_>) -> Verdict {
        use wasi::sockets::network::IpAddressFamily;
        match wasi::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
            Ok(_) => Verdict::drop("opened a socket"),
            Err(_) => Verdict::Pass,
        }
    }
}

herald_plugin_sdk::export_plugin!(Sockets);
