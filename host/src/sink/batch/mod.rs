//! The batch sink (watch-proxy's remote endpoints): up to `maxObjects`
//! notifications or `maxBytes` of body per POST, flushed at least every
//! `interval`. The body is `{"cluster", "metadata", "items": [envelope…]}`.

pub mod config;
mod encoder;
mod service;

pub use config::BatchConfig;
pub use service::Batch;
