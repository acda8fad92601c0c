//! What can go wrong with a sink's config, and with building a sink from it.
//!
//! Each message is the one herald prints: it names the field (and, from
//! [`SinksError`] up, the sink). Where a message includes a cause (an I/O or
//! TLS error), the cause is kept in the variant as data and is part of the
//! message, not a `source()`, so a `{:#}` chain prints it once.

use std::path::PathBuf;

use super::config::SinkType;
use super::secret::SecretError;

/// A field of one sink's config that does not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The name is empty.
    #[error("name: a sink needs a name")]
    NoName,
    /// A field of another type of sink.
    #[error("{field}: does not apply to a {kind} sink (only to {})", list(only))]
    DoesNotApply {
        /// The field, as written.
        field: String,
        /// The sink's type.
        kind: SinkType,
        /// The types that have the field.
        only: Vec<SinkType>,
    },
    /// A field no sink has.
    #[error("unknown field `{field}`, expected one of {}", quoted(expected))]
    UnknownField {
        /// The field, as written.
        field: String,
        /// The fields this type of sink takes.
        expected: Vec<&'static str>,
    },
    /// `mode` without `format: cloudevents`.
    #[error("mode: applies only with `format: cloudevents`")]
    ModeWithoutCloudEvents,
    /// A webhook or batch sink without `url`.
    #[error("url: a {0} sink needs a url")]
    NoUrl(SinkType),
    /// A `url` that is not one.
    #[error("url: {url:?} is not a URL: {error}")]
    BadUrl {
        /// The text.
        url: String,
        /// Why.
        error: url::ParseError,
    },
    /// A `url` that is not http or https.
    #[error("url: {0:?}: only http and https are supported")]
    Scheme(String),
    /// A slack sink without `webhookUrl`.
    #[error("webhookUrl: a slack sink needs `webhookUrl: {{env: VAR}}` or `{{file: PATH}}`")]
    NoWebhookUrl,
    /// A secret reference of the wrong shape.
    #[error("{field}: {error}")]
    Secret {
        /// The field holding it, e.g. `signing.secrets[0]`.
        field: String,
        /// What is wrong with it.
        error: SecretError,
    },
    /// Both kinds of authentication.
    #[error("auth: give `basic` or `bearerTokenFile`, not both")]
    TwoAuths,
    /// `signing` without a secret.
    #[error("signing.secrets: give at least one secret")]
    NoSigningSecret,
    /// One of `tls.certFile` and `tls.keyFile`.
    #[error("tls: `certFile` and `keyFile` go together")]
    CertWithoutKey,
    /// A nats sink without `url`.
    #[error("url: a nats sink needs a url (nats://host:4222)")]
    NoNatsUrl,
    /// A nats `url` that is not `nats://` or `tls://`.
    #[error("url: {0:?}: a nats sink takes nats:// or tls:// URLs")]
    NatsScheme(String),
    /// A `subject` template that does not hold.
    #[error("subject: {0}")]
    Subject(String),
    /// Not exactly one kind of NATS authentication.
    #[error("auth: give one of `user` with `password`, `token` or `credsFile`")]
    NatsAuth,
    /// `tls.insecureSkipVerify` on a nats sink.
    #[error("tls.insecureSkipVerify: not supported by the nats sink; give `caFile` instead")]
    NatsInsecure,
    /// A stream name JetStream does not take.
    #[error("stream.name: {0:?} is not a stream name (no dots, spaces or wildcards)")]
    StreamName(String),
    /// A count that must be at least 1 is 0.
    #[error("{0}: must be at least 1")]
    Zero(&'static str),
    /// Backoffs the wrong way round, or zero.
    #[error("retry: need 0 < initialBackoff <= maxBackoff")]
    Backoff,
}

/// A `sinks:` list that does not hold: one sink's field, or how the sinks
/// refer to each other.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinksError {
    /// One sink's field.
    #[error("sinks[{index}] ({name}).{error}")]
    Sink {
        /// Its place in the list.
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong.
        error: ConfigError,
    },
    /// Two sinks of one name.
    #[error("sinks[{index}].name: {name:?} is used twice")]
    Duplicate {
        /// The second one's place.
        index: usize,
        /// The name.
        name: String,
    },
    /// A sink whose dead letter is itself.
    #[error("sinks[{index}] ({name}).deadLetter: a sink cannot be its own dead letter")]
    OwnDeadLetter {
        /// Its place in the list.
        index: usize,
        /// Its name.
        name: String,
    },
    /// A dead letter that names no sink.
    #[error("sinks[{index}] ({name}).deadLetter: no sink is named {target:?}")]
    NoDeadLetter {
        /// Its place in the list.
        index: usize,
        /// Its name.
        name: String,
        /// The name it gives.
        target: String,
    },
    /// A dead letter that has a dead letter.
    #[error(
        "sinks[{index}] ({name}).deadLetter: {target:?} has a dead letter of its own; a dead-letter sink cannot"
    )]
    ChainedDeadLetter {
        /// Its place in the list.
        index: usize,
        /// Its name.
        name: String,
        /// The name it gives.
        target: String,
    },
    /// `whenFull: spill` without a state dir.
    #[error("sinks[{index}] ({name}).queue.whenFull: `spill` needs `stateDir`")]
    SpillWithoutStateDir {
        /// Its place in the list.
        index: usize,
        /// Its name.
        name: String,
    },
}

/// Building a sink failed: a secret that cannot be read, a CA file that is
/// not PEM, a header that is not one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A secret that cannot be read.
    #[error("{field}: {error}")]
    Secret {
        /// The field holding it.
        field: String,
        /// Why (never the value).
        error: SecretError,
    },
    /// The URL does not parse.
    #[error("url: {0}")]
    Url(url::ParseError),
    /// The Slack webhook secret holds no URL (its value is not shown).
    #[error("webhookUrl: the secret's value is not a URL")]
    SlackUrl,
    /// reqwest refused the client settings.
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    /// A TLS file that cannot be read.
    #[error("{field}: cannot read {}: {error}", path.display())]
    Read {
        /// `tls.caFile`, `tls.certFile` or `tls.keyFile`.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// `tls.caFile` is not PEM.
    #[error("tls.caFile: {}: not a PEM bundle: {error}", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// Why.
        error: reqwest::Error,
    },
    /// `tls.caFile` holds no certificate.
    #[error("tls.caFile: {}: holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    /// `tls.certFile` and `tls.keyFile` are not a certificate and its key.
    #[error(
        "tls.certFile/keyFile: {} and {}: not a certificate and key: {error}",
        cert.display(),
        key.display()
    )]
    Identity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        error: reqwest::Error,
    },
    /// A header name that is not one.
    #[error("headers: {0:?} is not a valid header name")]
    HeaderName(String),
    /// A header value that is not one (not shown: it may be a token).
    #[error("headers.{0}: not a valid header value")]
    HeaderValue(String),
    /// A signing secret that is not valid base64 after `whsec_`.
    #[error("{0}: not valid base64 after `whsec_`")]
    SigningBase64(String),
    /// A NATS setting that cannot be used.
    #[error("{field}: {error}")]
    Nats {
        /// The field.
        field: &'static str,
        /// Why.
        error: String,
    },
    /// An empty signing key.
    #[error("{0}: the key is empty")]
    SigningEmpty(String),
}

/// Starting or reconfiguring the sinks failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `sinks:` list does not hold.
    #[error(transparent)]
    Invalid(#[from] SinksError),
    /// A sink could not be built.
    #[error("sinks: {name} ({kind}).{error}")]
    Build {
        /// The sink.
        name: String,
        /// Its type.
        kind: SinkType,
        /// Why.
        error: BuildError,
    },
}

fn list(types: &[SinkType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
