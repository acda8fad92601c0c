//! The connection to NATS: options resolved when the sink is built (secrets
//! read, the credentials file and TLS files checked, so a bad file is a
//! config error naming the field), the connection made at the first publish
//! and kept (the client reconnects by itself). A broker that cannot be
//! reached is a retried delivery, never a failed start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{ConnectOptions, Event, ServerAddr};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::OnceCell;

use super::config::{NatsConfig, StreamConfig};
use crate::sink::error::BuildError;
use crate::sink::secret::{Secret, SecretRef};

/// How to authenticate, with the secrets read.
#[derive(Debug, Clone)]
enum Auth {
    None,
    UserPassword(Secret, Secret),
    Token(Secret),
    /// The credentials file's text (a JWT and an NKey seed).
    Creds(Secret),
}

/// Everything needed to connect, resolved once.
#[derive(Debug)]
pub(super) struct Connector {
    /// The servers.
    pub addrs: Vec<ServerAddr>,
    auth: Auth,
    tls: Option<crate::sink::config::TlsConfig>,
    timeout: Duration,
    stream: Option<StreamConfig>,
    /// The connection, once made.
    context: OnceCell<jetstream::Context>,
    /// The client's last connection event, for the reason of a failed publish.
    last_event: Arc<Mutex<Option<String>>>,
}

fn secret(field: &str, r: &SecretRef) -> Result<Secret, BuildError> {
    r.resolve().map_err(|error| BuildError::Secret {
        field: field.into(),
        error,
    })
}

fn read(field: &'static str, path: &std::path::Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|error| BuildError::Read {
        field,
        path: path.to_path_buf(),
        error,
    })
}

impl Connector {
    /// Reads the secrets and checks the files `cfg` names.
    ///
    /// # Errors
    /// A secret or file that cannot be read or is not what it should be.
    pub(super) fn new(cfg: &NatsConfig) -> Result<Self, BuildError> {
        let mut addrs = Vec::new();
        for u in cfg.urls() {
            addrs.push(u.parse::<ServerAddr>().map_err(|e| BuildError::Nats {
                field: "url",
                error: format!("{u:?}: {e}"),
            })?);
        }
        let auth = match &cfg.auth {
            None => Auth::None,
            Some(a) => match (&a.user, &a.password, &a.token, &a.creds_file) {
                (Some(u), Some(p), _, _) => {
                    Auth::UserPassword(secret("auth.user", u)?, secret("auth.password", p)?)
                }
                (_, _, Some(t), _) => Auth::Token(secret("auth.token", t)?),
                (_, _, _, Some(path)) => {
                    let r = SecretRef {
                        env: None,
                        file: Some(path.clone()),
                    };
                    let creds = secret("auth.credsFile", &r)?;
                    // Parsed now, so a broken file fails the config, not
                    // every delivery.
                    ConnectOptions::with_credentials(creds.expose()).map_err(|e| {
                        BuildError::Nats {
                            field: "auth.credsFile",
                            error: format!("{}: {e}", path.display()),
                        }
                    })?;
                    Auth::Creds(creds)
                }
                _ => Auth::None,
            },
        };
        if let Some(tls) = &cfg.tls {
            if let Some(ca) = &tls.ca_file {
                let pem = read("tls.caFile", ca)?;
                let n = CertificateDer::pem_slice_iter(&pem)
                    .filter(Result::is_ok)
                    .count();
                if n == 0 {
                    return Err(BuildError::NoCertificate(ca.clone()));
                }
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                let pem = read("tls.certFile", cert)?;
                if CertificateDer::pem_slice_iter(&pem).next().is_none() {
                    return Err(BuildError::Nats {
                        field: "tls.certFile",
                        error: format!("{}: holds no certificate", cert.display()),
                    });
                }
                let pem = read("tls.keyFile", key)?;
                PrivateKeyDer::from_pem_slice(&pem).map_err(|e| BuildError::Nats {
                    field: "tls.keyFile",
                    error: format!("{}: not a PEM private key: {e}", key.display()),
                })?;
            }
        }
        Ok(Connector {
            addrs,
            auth,
            tls: cfg.tls.clone(),
            timeout: cfg.timeout,
            stream: cfg.stream.clone(),
            context: OnceCell::new(),
            last_event: Arc::new(Mutex::new(None)),
        })
    }

    fn options(&self) -> ConnectOptions {
        let mut o = match &self.auth {
            Auth::None => ConnectOptions::new(),
            Auth::UserPassword(u, p) => {
                ConnectOptions::with_user_and_password(u.expose().into(), p.expose().into())
            }
            Auth::Token(t) => ConnectOptions::with_token(t.expose().into()),
            Auth::Creds(c) => ConnectOptions::with_credentials(c.expose())
                .unwrap_or_else(|_| ConnectOptions::new()),
        };
        if let Some(tls) = &self.tls {
            o = o.require_tls(true);
            if let Some(ca) = &tls.ca_file {
                o = o.add_root_certificates(ca.clone());
            }
            if let (Some(c), Some(k)) = (&tls.cert_file, &tls.key_file) {
                o = o.add_client_certificate(c.clone(), k.clone());
            }
        }
        let last = self.last_event.clone();
        o.name(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout))
            .max_reconnects(None)
            .event_callback(move |e| {
                let last = last.clone();
                async move {
                    let text = match e {
                        Event::Connected => None,
                        other => Some(other.to_string()),
                    };
                    *last.lock().unwrap_or_else(|p| p.into_inner()) = text;
                }
            })
    }

    /// The client's last connection trouble, if it has any now.
    pub(super) fn trouble(&self) -> Option<String> {
        self.last_event
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The JetStream context, connecting (and creating the stream, when
    /// allowed) the first time.
    ///
    /// # Errors
    /// The reason the connection or the stream could not be made, to retry.
    pub(super) async fn context(
        &self,
        max_in_flight: usize,
    ) -> Result<&jetstream::Context, String> {
        self.context
            .get_or_try_init(|| async {
                let client = self
                    .options()
                    .connect(self.addrs.clone())
                    .await
                    .map_err(|e| format!("cannot connect to NATS: {e}"))?;
                let context = jetstream::ContextBuilder::new()
                    .timeout(self.timeout)
                    .max_ack_inflight(max_in_flight.max(1) * 2)
                    .backpressure_on_inflight(true)
                    .build(client);
                if let Some(s) = self.stream.as_ref().filter(|s| s.create) {
                    context
                        .get_or_create_stream(stream::Config {
                            name: s.name.clone(),
                            subjects: s.subjects.clone(),
                            duplicate_window: s.duplicate_window,
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| format!("cannot create stream {}: {e}", s.name))?;
                }
                Ok(context)
            })
            .await
    }
}
