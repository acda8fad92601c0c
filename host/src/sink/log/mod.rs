//! The log sink: each notification as one JSON line (herald's raw envelope)
//! on standard output, for clusters whose log pipeline is the integration
//! point (kwatchman's log handler).

pub mod config;
mod service;

pub use config::LogConfig;
pub use service::LogOut;
