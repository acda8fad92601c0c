//! HTTP APIs: the query API over the cache and the admin API over the sources,
//! behind delegated authentication and authorization ([`auth`]); health and
//! metrics on a listener of their own.
//!
//! Start with [`query_router`] and [`admin_router`]; both return a `Router` the binary
//! mounts (merge them to serve both on one port), [`auth::Guard`] puts them
//! behind the API server's authorization, and [`serve_with`] runs a listener
//! (TLS and limits from [`config`]) until shutdown.

mod admin;
pub mod auth;
mod body;
pub mod config;
mod decisions;
mod error;
mod health;
mod page;
mod query;
mod relations;
mod server;
mod status;
mod tls;

#[cfg(test)]
mod fuzz_tests;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

pub use admin::{WatchControl, WatchRequest, admin_router};
pub use decisions::decisions_router;
pub use error::ApiError;
pub(crate) use health::health_router;
pub use query::query_router;
pub use server::serve_with;
pub use status::{StatusParts, status_router};
pub use tls::Tls;

/// Serves `router` on `listener` until `shutdown` completes, then finishes the
/// requests in progress.
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
