//! The webhook sink: one POST per notification, raw or CloudEvents,
//! authenticated, optionally signed (Standard Webhooks).

pub(crate) mod config;
pub(crate) mod encoder;
mod service;

pub(crate) use service::{Webhook, sign, signer};
