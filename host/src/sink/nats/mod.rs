//! The NATS JetStream sink: each notification published to a subject with
//! a JetStream acknowledgement, `Nats-Msg-Id` set to herald's stable id so
//! the stream's duplicate window absorbs a redelivery.

pub(crate) mod config;
mod connect;
pub(crate) mod encoder;
mod service;

pub(crate) use service::Nats;
