//! herald-sim integration tests: kube-rs 5 and raw HTTP clients against a simulator
//! over loopback, one module per area.

mod common;
mod discovery;
mod faults;
mod list;
mod reflector;
mod selectors;
mod watch;
mod writes;
