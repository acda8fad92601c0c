//! herald's end-to-end tests: one binary, one module per area.

mod auth;
mod cli;
mod config;
mod decisions;
mod demo;
mod deploy;
mod explain;
mod isolation;
mod languages;
mod monitoring;
mod nats;
mod nats_bench;
mod notify_once;
mod ops;
mod plugin_ops;
mod plugin_output;
mod plugins;
mod real;
mod record;
mod run;
mod secrets;
mod shipped;
mod sinks;
mod status_page;
