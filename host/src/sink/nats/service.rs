//! A built NATS sink, and one attempt to publish a group of notifications:
//! every message is published, then every acknowledgement awaited. A
//! message the broker refuses for good (too large for its `max_payload`,
//! no stream for the subject, a stream error) is settled on its own; if
//! any other fails, the group is tried again whole, and JetStream drops
//! the copies it already holds by `Nats-Msg-Id`.

use async_nats::HeaderMap;
use async_nats::jetstream::{
    self,
    context::{PublishError, PublishErrorKind},
    message::PublishMessage,
};
use bytes::Bytes;

use super::config::NatsConfig;
use super::connect::Connector;
use super::encoder::{Encoder, Message, Template};
use crate::sink::error::BuildError;
use crate::sink::http::Attempt;
use crate::sink::notification::Notification;

/// A built NATS sink.
#[derive(Debug)]
pub(crate) struct Nats {
    connector: Connector,
    encoder: Encoder,
    /// Most messages published before their acknowledgements are awaited.
    pub max_in_flight: usize,
}

/// What happened to one message of an attempt.
enum Fate {
    Stored,
    Refused(String),
    Retry(String),
}

impl Nats {
    /// Builds the sink `name`: secrets read, files checked; no connection yet.
    ///
    /// # Errors
    /// What cannot be read or used, naming the field.
    pub(crate) fn new(name: &str, cfg: &NatsConfig) -> Result<Self, BuildError> {
        Ok(Nats {
            connector: Connector::new(cfg)?,
            encoder: Encoder {
                sink: name.to_string(),
                subject: Template::parse(&cfg.subject).map_err(|error| BuildError::Nats {
                    field: "subject",
                    error,
                })?,
                format: cfg.format,
                old: cfg.old,
                metadata: cfg.metadata.clone().into_iter().collect(),
            },
            max_in_flight: cfg.max_in_flight,
        })
    }

    /// The message for `n` (what [`Nats::send`] publishes).
    pub(crate) fn message(&self, n: &Notification) -> Message {
        self.encoder.encode(n)
    }

    /// The first server's address, for a preview.
    pub(crate) fn server(&self) -> String {
        self.connector
            .addrs
            .first()
            .map(|a| format!("nats://{}:{}", a.host(), a.port()))
            .unwrap_or_default()
    }

    /// One attempt to publish `group` (at most one message per object).
    pub(crate) async fn send(&self, group: &[&Notification]) -> Attempt {
        let js = match self.connector.context(self.max_in_flight).await {
            Ok(js) => js,
            Err(reason) => {
                return Attempt::Retry {
                    after: None,
                    reason,
                };
            }
        };
        // While the client is reconnecting, a publish would only wait out
        // its acknowledgement's timeout: retry now, saying why.
        if js.client().connection_state() == async_nats::connection::State::Disconnected {
            let trouble = self
                .connector
                .trouble()
                .unwrap_or_else(|| "disconnected".into());
            return Attempt::Retry {
                after: None,
                reason: format!("NATS connection lost, reconnecting: {trouble}"),
            };
        }
        // Publish everything first (pipelined on the one connection, in
        // order), then wait for the acknowledgements.
        let mut pending = Vec::with_capacity(group.len());
        for n in group {
            let m = self.encoder.encode(n);
            let mut headers = HeaderMap::new();
            for (k, v) in m.headers {
                headers.insert(k, v);
            }
            let publish = PublishMessage::build()
                .payload(Bytes::from(m.payload))
                .headers(headers);
            pending.push(js.send_publish(m.subject, publish).await);
        }
        let fates = futures::future::join_all(pending.into_iter().map(|p| async move {
            match p {
                Ok(ack) => match ack.await {
                    Ok(_) => Fate::Stored,
                    Err(e) => fate(&e),
                },
                Err(e) => fate(&e),
            }
        }))
        .await;
        let mut refused = Vec::new();
        let mut retry = None;
        for (i, f) in fates.into_iter().enumerate() {
            match f {
                Fate::Stored => {}
                Fate::Refused(r) => refused.push((i, r)),
                Fate::Retry(r) => {
                    retry.get_or_insert(r);
                }
            }
        }
        if let Some(reason) = retry {
            let reason = match self.connector.trouble() {
                Some(t) => format!("{reason} (NATS connection: {t})"),
                None => reason,
            };
            return Attempt::Retry {
                after: None,
                reason,
            };
        }
        if refused.is_empty() {
            Attempt::Delivered
        } else {
            Attempt::Partial { refused }
        }
    }
}

/// Whether a failed publish is the broker's final word on that message:
/// too large for the server's `max_payload`, no stream for the subject, or
/// a JetStream error of the 4xx kind (the stream refuses it, e.g. larger
/// than its `max_msg_size`). Anything else (a timeout, a lost connection,
/// JetStream unavailable) is tried again.
fn fate(e: &PublishError) -> Fate {
    use std::error::Error as _;
    let text = e.to_string();
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => {
            Fate::Refused(format!("refused by the NATS server: {text}"))
        }
        PublishErrorKind::StreamNotFound => Fate::Refused(format!(
            "refused by the NATS server: {text} (no JetStream stream holds this subject)"
        )),
        _ => match e
            .source()
            .and_then(|s| s.downcast_ref::<jetstream::Error>())
        {
            Some(js) if (400..500).contains(&js.code()) => {
                Fate::Refused(format!("refused by JetStream: {js}"))
            }
            _ => Fate::Retry(format!("NATS publish failed: {text}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::sink::config::SinkConfig;
    use crate::sink::notification::sample;
    use crate::sink::preview::preview;

    #[test]
    fn a_preview_shows_the_subject_the_id_header_and_the_envelope_without_connecting() {
        let cfg: SinkConfig = serde_yaml_ng::from_str(
            "{name: bus, type: nats, url: 'nats://127.0.0.1:1', format: cloudevents}",
        )
        .unwrap();
        let n = sample("u1", "5");
        let p = preview("prod", &cfg, &n).unwrap();
        assert_eq!(p.kind, "nats");
        assert_eq!(p.method.as_deref(), Some("PUB"));
        assert_eq!(
            p.url.as_deref(),
            Some("nats://127.0.0.1:1/herald.test.apps.deployment.web.modified")
        );
        assert_eq!(p.headers[0], ("Nats-Msg-Id".to_string(), n.id("bus")));
        assert!(
            p.headers
                .iter()
                .any(|(k, v)| k == "ce-id" && *v == n.id("bus"))
        );
        let body: serde_json::Value = serde_json::from_str(&p.body).unwrap();
        assert_eq!(body["uid"], "u1");
    }
}
