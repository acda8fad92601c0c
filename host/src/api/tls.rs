//! HTTPS for the APIs (rustls): the certificate and key are read again when
//! their files change, so a renewed certificate (cert-manager, a rotated
//! Secret) needs no restart; with a client CA, a client certificate it
//! signed authenticates the caller (user = subject CN, groups = subject O).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::auth::{Caller, PeerCertificate};
use super::config::TlsConfig;

/// How often a handshake may look at the files' modification times.
const RECHECK: Duration = Duration::from_secs(1);

/// Why TLS cannot start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// A file cannot be read or holds no usable PEM.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the settings.
    #[error("TLS settings: {0}")]
    Settings(#[from] rustls::Error),
    /// The client CA bundle is unusable.
    #[error("clientCAFile: {0}")]
    ClientCa(String),
}

/// An HTTPS acceptor.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Reads the files `config` names.
    ///
    /// # Errors
    /// [`TlsError`] naming the file that is missing or unusable.
    pub(crate) fn new(config: &TlsConfig) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = Arc::new(Reloading::new(
            config.cert_file.clone(),
            config.key_file.clone(),
            provider.clone(),
        )?);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &config.client_ca_file {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in read_certs(ca)? {
                    roots
                        .add(c)
                        .map_err(|e| TlsError::ClientCa(format!("{}: {e}", ca.display())))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| TlsError::ClientCa(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut server = builder.with_cert_resolver(resolver);
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }

    /// Completes a handshake; the verified client certificate's identity, if any.
    ///
    /// # Errors
    /// The handshake failed.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<TcpStream>, Option<PeerCertificate>)> {
        let s = self.acceptor.accept(stream).await?;
        let peer = s
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| identity(c.as_ref()))
            .map(|c| PeerCertificate(Arc::new(c)));
        Ok((s, peer))
    }
}

/// The caller a (verified) client certificate names, as the API server
/// reads one: CN the user, each O a group.
fn identity(der: &[u8]) -> Option<Caller> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(String::from))
        .collect();
    Some(Caller {
        user,
        uid: String::new(),
        groups,
        extra: Default::default(),
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::File {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The certificate and key, read again when their files change.
struct Reloading {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: Mutex<Current>,
}

struct Current {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish()
    }
}

impl Reloading {
    fn new(
        cert_file: PathBuf,
        key_file: PathBuf,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Reloading, TlsError> {
        let r = Reloading {
            current: Mutex::new(Current {
                key: Arc::new(load(&cert_file, &key_file, &provider)?),
                stamps: (modified(&cert_file), modified(&key_file)),
                checked: Instant::now(),
            }),
            cert_file,
            key_file,
            provider,
        };
        Ok(r)
    }
}

fn load(
    cert_file: &Path,
    key_file: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs = read_certs(cert_file)?;
    let bad = |reason: String| TlsError::File {
        path: key_file.to_path_buf(),
        reason,
    };
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| bad(e.to_string()))?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad(e.to_string()))?;
    let ck = CertifiedKey::new(certs, key);
    ck.keys_match().map_err(|e| {
        bad(format!(
            "does not belong to the certificate in {}: {e}",
            cert_file.display()
        ))
    })?;
    Ok(ck)
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut cur = crate::sync::lock(&self.current);
        if cur.checked.elapsed() >= RECHECK {
            cur.checked = Instant::now();
            let stamps = (modified(&self.cert_file), modified(&self.key_file));
            if stamps != cur.stamps {
                match load(&self.cert_file, &self.key_file, &self.provider) {
                    Ok(k) => {
                        tracing::info!(cert = %self.cert_file.display(), "TLS certificate reloaded");
                        cur.key = Arc::new(k);
                        cur.stamps = stamps;
                    }
                    // Half-written files (a copy in two writes) load at the next check.
                    Err(e) => tracing::warn!("keeping the current TLS certificate: {e}"),
                }
            }
        }
        Some(cur.key.clone())
    }
}
