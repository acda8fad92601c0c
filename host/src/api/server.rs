//! The listeners: HTTP or HTTPS, with the limits that keep a slow or greedy
//! client from starving herald (a connection limit, a deadline for the
//! request headers and the TLS handshake, a deadline for each request), and
//! graceful shutdown. With a client CA, a verified client certificate's
//! identity goes on each request as a [`PeerCertificate`].

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::auth::PeerCertificate;
use super::config::Limits;
use super::tls::Tls;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Serves `router` on `listener` (over TLS with `tls`) within `limits` until
/// `shutdown` completes, then lets the requests in progress finish.
///
/// # Errors
/// None yet: a failed accept is logged and retried.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    tls: Option<Tls>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router
        .layer(axum::extract::DefaultBodyLimit::max(
            usize::try_from(limits.max_body.as_u64()).unwrap_or(usize::MAX),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // At the limit, new connections wait in the kernel's backlog.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(addr = ?listener.local_addr().ok(), "accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let (io, peer): (Box<dyn Io>, Option<PeerCertificate>) = match tls {
                None => (Box::new(stream), None),
                Some(tls) => match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                    Ok(Ok((s, peer))) => (Box::new(s), peer),
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => return,
                },
            };
            let service = router.map_request(move |mut req: axum::http::Request<Incoming>| {
                if let Some(p) = &peer {
                    req.extensions_mut().insert(p.clone());
                }
                req
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(Some(header_timeout))
                .keep_alive_timeout(header_timeout);
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(io),
                TowerToHyperService::new(service),
            );
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
