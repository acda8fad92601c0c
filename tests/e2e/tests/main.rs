//! herald's end-to-end tests: one binary, one module per area.

mod auth;
mod cli;
mod config;
mod demo;
mod deploy;
mod explain;
mod isolation;
mod languages;
mod notify_once;
mod ops;
mod plugin_output;
mod plugins;
mod real;
mod run;
mod secrets;
mod shipped;
mod sinks;
