//! The batch sink (watch-proxy's remote endpoints): up to `maxObjects`
//! notifications or `maxBytes` of body per POST, flushed at least every
//! `interval`. The body is `{"cluster", "metadata", "items": [envelope…]}`.

pub(crate) mod config;
mod encoder;
mod service;

pub(crate) use service::Batch;
