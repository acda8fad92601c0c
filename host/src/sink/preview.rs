//! What a sink would send for one notification, without sending it: the
//! request its service builds (method, URL, headers, body), for `herald
//! explain`. Credentials and the signature are marked, not shown.

use serde::Serialize;

use super::config::{SinkConfig, SinkKind};
use super::delivery::Service;
use super::error::{BuildError, Error};
use super::notification::Notification;
use super::{batch, log, nats, slack, webhook};

/// Headers whose values are not shown: credentials, and the signature
/// (which depends on the time of sending).
const MARKED: &[&str] = &["authorization", "webhook-signature", "webhook-timestamp"];

/// One sink's request for one notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    /// The sink.
    pub sink: String,
    /// Its type (`webhook`, `slack`, `batch`, `log`, `nats`).
    #[serde(rename = "type")]
    pub kind: String,
    /// `POST`, `PUB` for NATS (the URL is the server and the subject), or
    /// none for the log sink (a line on standard output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Where it goes; none for the log sink. A Slack webhook URL is a secret
    /// and shown as its host only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The headers, in order; credentials and the signature read `<marked: …>`.
    pub headers: Vec<(String, String)>,
    /// The exact body, as text.
    pub body: String,
}

impl Service {
    /// Builds the service of sink `name` (secrets read, TLS loaded).
    ///
    /// # Errors
    /// What cannot be read or used, naming the field.
    pub(crate) fn build(name: &str, kind: &SinkKind, cluster: &str) -> Result<Self, BuildError> {
        Ok(match kind {
            SinkKind::Webhook(w) => Service::Webhook(webhook::Webhook::new(name, w)?),
            SinkKind::Slack(s) => Service::Slack(slack::Slack::new(s)?),
            SinkKind::Batch(b) => Service::Batch(batch::Batch::new(name, b, cluster)?),
            SinkKind::Log(l) => Service::Log(log::LogOut::new(name, l)),
            SinkKind::Nats(c) => Service::Nats(Box::new(nats::Nats::new(name, c)?)),
        })
    }
}

/// The request sink `config` would send for `n` alone (a Slack group or a
/// batch of one).
///
/// # Errors
/// The sink cannot be built (a secret that cannot be read, …).
pub fn preview(cluster: &str, config: &SinkConfig, n: &Notification) -> Result<Preview, Error> {
    let name = config.name();
    let kind = config.kind.sink_type();
    let service = Service::build(name, &config.kind, cluster).map_err(|error| Error::Build {
        name: name.to_string(),
        kind,
        error,
    })?;
    let rb = match &service {
        Service::Webhook(w) => w.request(n),
        Service::Slack(s) => s.request(&[n]),
        Service::Batch(b) => {
            let item = b.encode_item(n);
            b.request(&[n], &[&item])
        }
        Service::Nats(nats) => {
            let m = nats.message(n);
            return Ok(Preview {
                sink: name.to_string(),
                kind: kind.to_string(),
                method: Some("PUB".into()),
                url: Some(format!("{}/{}", nats.server(), m.subject)),
                headers: m
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                body: String::from_utf8_lossy(&m.payload).into_owned(),
            });
        }
        Service::Log(l) => {
            return Ok(Preview {
                sink: name.to_string(),
                kind: kind.to_string(),
                method: None,
                url: None,
                headers: vec![],
                body: String::from_utf8_lossy(&l.line(n)).into_owned(),
            });
        }
    };
    let built = rb.build().map_err(|e| Error::Build {
        name: name.to_string(),
        kind,
        error: BuildError::Client(e),
    })?;
    let url = match &service {
        Service::Slack(_) => format!(
            "{}://{}/<marked: webhook URL>",
            built.url().scheme(),
            built.url().host_str().unwrap_or_default()
        ),
        _ => built.url().to_string(),
    };
    let headers = built
        .headers()
        .iter()
        .map(|(k, v)| {
            let value = if MARKED.contains(&k.as_str()) {
                format!("<marked: {k} excluded>")
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_string(), value)
        })
        .collect();
    let body = built
        .body()
        .and_then(|b| b.as_bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    Ok(Preview {
        sink: name.to_string(),
        kind: kind.to_string(),
        method: Some(built.method().to_string()),
        url: Some(url),
        headers,
        body,
    })
}
