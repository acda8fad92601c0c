//! The Slack sink: Block Kit messages to an Incoming Webhook, rate limited
//! (1 message a second with short bursts by default), optionally grouping
//! the changes of a window into one message.

pub(crate) mod config;
pub(crate) mod encoder;
mod service;

pub(crate) use service::{MAX_GROUP, Slack};
