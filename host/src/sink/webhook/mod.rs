//! The webhook sink: one POST per notification, raw or CloudEvents,
//! authenticated, optionally signed (Standard Webhooks).

pub mod config;
pub mod encoder;
mod service;

pub use config::WebhookConfig;
pub use service::{Webhook, sign, signer};
