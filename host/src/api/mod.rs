//! HTTP APIs: the query API over the cache and the admin API over the sources.
//!
//! Start with [`query_router`] and [`admin_router`]; both return a `Router` the binary
//! mounts (merge them to serve both on one port) and [`serve`] runs until shutdown.

mod admin;
mod body;
mod error;
mod health;
mod page;
mod query;
mod relations;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

pub use admin::{ADMIN_PREFIX, WatchControl, WatchRequest, admin_router};
pub use error::ApiError;
pub use health::{health_router, unready_reasons};
pub use query::{PREFIX, query_router};

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
