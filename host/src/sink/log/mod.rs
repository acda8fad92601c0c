//! The log sink: each notification as one JSON line (herald's raw envelope)
//! on standard output, for clusters whose log pipeline is the integration
//! point (kwatchman's log handler).

pub(crate) mod config;
mod service;

pub(crate) use service::LogOut;
