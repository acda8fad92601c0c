//! Webhook bodies: herald's raw envelope, or CloudEvents 1.0 in binary or
//! structured HTTP mode.

use serde_json::{Map, Value};

use super::config::{CeMode, Format};
use crate::sink::config::OldState;
use crate::sink::notification::{self, Notification};

/// A request body and the headers that describe it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoded {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra headers (CloudEvents binary mode's `ce-*`).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A structured-mode CloudEvent around the envelope.
#[derive(serde::Serialize)]
struct Structured<'a> {
    specversion: &'static str,
    #[serde(rename = "type")]
    kind: String,
    source: String,
    id: String,
    subject: String,
    time: String,
    datacontenttype: &'static str,
    data: notification::Envelope<'a>,
}

/// How one webhook encodes notifications.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    /// The sink's name (part of the id).
    pub sink: String,
    /// raw or cloudevents.
    pub format: Format,
    /// binary or structured.
    pub mode: CeMode,
    /// full, patch or none.
    pub old: OldState,
    /// The sink's metadata.
    pub metadata: Map<String, Value>,
}

/// CloudEvents `type`: `io.k8s.<group>.<kind>.<change>`, lower case, `core`
/// for the core group. Example: `io.k8s.apps.deployment.modified`
pub(crate) fn ce_type(n: &Notification) -> String {
    let group = if n.gvk.group.is_empty() {
        "core"
    } else {
        &n.gvk.group
    };
    format!(
        "io.k8s.{group}.{}.{}",
        n.gvk.kind.to_ascii_lowercase(),
        n.change.as_str()
    )
}

/// CloudEvents `source`: the cluster name (`herald` when unnamed).
pub(crate) fn ce_source(n: &Notification) -> String {
    if n.cluster.is_empty() {
        "herald".into()
    } else {
        n.cluster.to_string()
    }
}

impl Encoder {
    /// The body and headers for one notification.
    pub(crate) fn encode(&self, n: &Notification) -> Encoded {
        let envelope = n.envelope_ref(&self.sink, &self.metadata, self.old);
        match (self.format, self.mode) {
            (Format::Raw, _) => Encoded {
                content_type: "application/json",
                headers: vec![],
                body: envelope.to_vec(),
            },
            (Format::Cloudevents, CeMode::Binary) => Encoded {
                content_type: "application/json",
                headers: vec![
                    ("ce-specversion", "1.0".into()),
                    ("ce-type", ce_type(n)),
                    ("ce-source", ce_source(n)),
                    ("ce-id", n.id(&self.sink)),
                    ("ce-subject", n.subject()),
                    ("ce-time", n.time_rfc3339()),
                ],
                body: envelope.to_vec(),
            },
            (Format::Cloudevents, CeMode::Structured) => {
                let event = Structured {
                    specversion: "1.0",
                    kind: ce_type(n),
                    source: ce_source(n),
                    id: n.id(&self.sink),
                    subject: n.subject(),
                    time: n.time_rfc3339(),
                    datacontenttype: "application/json",
                    data: envelope,
                };
                let room = event.data.size_hint();
                Encoded {
                    content_type: "application/cloudevents+json",
                    headers: vec![],
                    body: notification::encode(&event, room),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::notification::sample;

    fn encoder(format: Format, mode: CeMode) -> Encoder {
        Encoder {
            sink: "hook".into(),
            format,
            mode,
            old: OldState::Patch,
            metadata: Map::new(),
        }
    }

    #[test]
    fn cloudevents_binary_puts_attributes_in_headers() {
        let n = sample("u1", "5");
        let e = encoder(Format::Cloudevents, CeMode::Binary).encode(&n);
        let h: std::collections::HashMap<_, _> = e.headers.iter().cloned().collect();
        assert_eq!(h["ce-type"], "io.k8s.apps.deployment.modified");
        assert_eq!(h["ce-source"], "test");
        assert_eq!(h["ce-id"], n.id("hook"));
        assert_eq!(h["ce-subject"], "web/front");
        assert_eq!(h["ce-time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(e.content_type, "application/json");
        let body: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(body["object"]["spec"]["replicas"], 3);
    }

    #[test]
    fn cloudevents_structured_wraps_the_envelope_as_data() {
        let mut n = sample("u1", "5");
        n.gvk.group = String::new();
        n.gvk.kind = "ConfigMap".into();
        let e = encoder(Format::Cloudevents, CeMode::Structured).encode(&n);
        assert!(e.headers.is_empty());
        assert_eq!(e.content_type, "application/cloudevents+json");
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "io.k8s.core.configmap.modified");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["data"]["id"], v["id"]);
    }
}
