//! The `herald` command line.

pub mod plugin_test;
