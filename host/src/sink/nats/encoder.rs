//! What a NATS message carries: its subject (from the template), its
//! headers (`Nats-Msg-Id`, and `ce-*` for CloudEvents) and its payload
//! (herald's envelope).

use serde_json::{Map, Value};

use crate::sink::config::OldState;
use crate::sink::notification::Notification;
use crate::sink::webhook::config::Format;
use crate::sink::webhook::encoder::{ce_source, ce_type};

/// One part of a subject template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Cluster,
    Group,
    Version,
    Kind,
    Namespace,
    Name,
    Change,
    Watch,
}

/// A parsed `subject`: text and `{placeholder}`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template(Vec<Part>);

impl Template {
    /// Parses `text`; an error says what is wrong and where.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!(
                    "{text:?}: `{{` at {} is not closed",
                    text.len() - rest.len() + open
                ));
            };
            let name = &rest[open + 1..open + close];
            parts.push(match name {
                "cluster" => Part::Cluster,
                "group" => Part::Group,
                "version" => Part::Version,
                "kind" => Part::Kind,
                "namespace" => Part::Namespace,
                "name" => Part::Name,
                "change" => Part::Change,
                "watch" => Part::Watch,
                other => {
                    return Err(format!(
                        "{text:?}: unknown placeholder {{{other}}}; expected one of {{cluster}}, {{group}}, {{version}}, {{kind}}, {{namespace}}, {{name}}, {{change}}, {{watch}}"
                    ));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        let literal: String = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                _ => "x",
            })
            .collect();
        if literal.is_empty()
            || literal.split('.').any(str::is_empty)
            || literal.contains(|c: char| c.is_whitespace() || c == '*' || c == '>' || c == '}')
        {
            return Err(format!(
                "{text:?}: not a subject to publish to (tokens separated by single dots, no white space or wildcards)"
            ));
        }
        Ok(Template(parts))
    }

    /// The subject of `n`.
    pub(crate) fn render(&self, n: &Notification) -> String {
        let mut s = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => s.push_str(t),
                Part::Cluster => token(&mut s, &n.cluster),
                Part::Group if n.gvk.group.is_empty() => s.push_str("core"),
                Part::Group => token(&mut s, &n.gvk.group),
                Part::Version => token(&mut s, &n.gvk.version),
                Part::Kind => token(&mut s, &n.gvk.kind.to_ascii_lowercase()),
                Part::Namespace => token(&mut s, n.namespace.as_deref().unwrap_or_default()),
                Part::Name => token(&mut s, &n.name),
                Part::Change => s.push_str(n.change.as_str()),
                Part::Watch => token(&mut s, &n.watch),
            }
        }
        s
    }
}

/// Appends `value` as one subject token: `.`, `*`, `>`, white space and
/// control characters become `_`; an empty value is `_`.
fn token(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push('_');
        return;
    }
    out.extend(value.chars().map(|c| match c {
        '.' | '*' | '>' => '_',
        c if c.is_whitespace() || c.is_control() => '_',
        c => c,
    }));
}

/// A message, before it is published.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    /// Where it goes.
    pub subject: String,
    /// `Nats-Msg-Id` first, then the `ce-*` attributes.
    pub headers: Vec<(&'static str, String)>,
    /// herald's envelope.
    pub payload: Vec<u8>,
}

/// How one NATS sink encodes notifications.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    /// The sink's name (part of the id).
    pub sink: String,
    /// The subject template.
    pub subject: Template,
    /// raw or cloudevents.
    pub format: Format,
    /// full, patch or none.
    pub old: OldState,
    /// The sink's metadata.
    pub metadata: Map<String, Value>,
}

impl Encoder {
    /// The message for `n`.
    pub(crate) fn encode(&self, n: &Notification) -> Message {
        let id = n.id(&self.sink);
        let envelope = n.envelope_ref(&self.sink, &self.metadata, self.old);
        let payload = envelope.to_vec();
        let mut headers = vec![("Nats-Msg-Id", id.clone())];
        if self.format == Format::Cloudevents {
            // The CloudEvents NATS protocol binding, binary mode.
            headers.extend([
                ("ce-specversion", "1.0".to_string()),
                ("ce-type", ce_type(n)),
                ("ce-source", ce_source(n)),
                ("ce-id", id),
                ("ce-subject", n.subject()),
                ("ce-time", n.time_rfc3339()),
                ("content-type", "application/json".to_string()),
            ]);
        }
        Message {
            subject: self.subject.render(n),
            headers,
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::nats::config::DEFAULT_SUBJECT;
    use crate::sink::notification::sample;

    #[test]
    fn the_default_subject_has_one_sanitised_token_per_part() {
        let t = Template::parse(DEFAULT_SUBJECT).unwrap();
        let mut n = sample("u1", "5");
        n.cluster = "prod.eu 1".into();
        assert_eq!(
            t.render(&n),
            "herald.prod_eu_1.apps.deployment.web.modified"
        );
        n.gvk.group = String::new();
        n.gvk.kind = "Namespace".into();
        n.namespace = None;
        assert_eq!(t.render(&n), "herald.prod_eu_1.core.namespace._.modified");
        n.gvk.group = "networking.k8s.io".into();
        n.name = "a*b>c".into();
        let t = Template::parse("k8s.{group}.{name}").unwrap();
        assert_eq!(t.render(&n), "k8s.networking_k8s_io.a_b_c");
    }

    #[test]
    fn a_bad_template_says_what_is_wrong() {
        let e = Template::parse("herald.{colour}").unwrap_err();
        assert!(e.contains("unknown placeholder {colour}"), "{e}");
        assert!(
            Template::parse("herald.{kind")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(
            Template::parse("herald..{kind}")
                .unwrap_err()
                .contains("single dots")
        );
        assert!(
            Template::parse("herald.>")
                .unwrap_err()
                .contains("wildcards")
        );
        assert!(Template::parse("").is_err());
    }

    #[test]
    fn cloudevents_puts_attributes_in_headers_and_the_id_in_nats_msg_id() {
        let n = sample("u1", "5");
        let e = Encoder {
            sink: "bus".into(),
            subject: Template::parse(DEFAULT_SUBJECT).unwrap(),
            format: Format::Cloudevents,
            old: OldState::None,
            metadata: Map::new(),
        };
        let m = e.encode(&n);
        let h: std::collections::HashMap<_, _> = m.headers.iter().cloned().collect();
        assert_eq!(h["Nats-Msg-Id"], n.id("bus"));
        assert_eq!(h["ce-id"], n.id("bus"));
        assert_eq!(h["ce-type"], "io.k8s.apps.deployment.modified");
        assert_eq!(h["ce-source"], "test");
        let body: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(body["id"], n.id("bus"));
        assert!(body.get("old").is_none());
        let raw = Encoder {
            format: Format::Raw,
            ..e
        }
        .encode(&n);
        assert_eq!(raw.headers, vec![("Nats-Msg-Id", n.id("bus"))]);
    }
}
