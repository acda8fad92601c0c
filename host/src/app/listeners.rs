//! herald's own listeners: the query and admin APIs (with the sinks'
//! status) behind delegated auth, and `/metrics`, `/healthz`, `/readyz` on
//! an address of their own that needs no token.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::api::config::{ApiConfig, AuthMode, Limits, MetricsConfig};
use crate::metrics::Metrics;
use crate::sink::Sinks;
use crate::source::Sources;

/// What the APIs serve.
pub(super) struct Parts<'a> {
    /// Asks the API server who callers are and what they may do.
    pub client: &'a kube::Client,
    /// The admin API's handle.
    pub control: crate::api::WatchControl,
    /// The watches and the cache.
    pub sources: &'a Sources,
    /// Their status on `/sinks`.
    pub sinks: &'a Sinks,
    /// `/metrics`, and the status page's numbers.
    pub metrics: &'a Metrics,
    /// `/api/v1/decisions` and the status page's tail.
    pub decisions: &'a crate::decisions::Decisions,
    /// The cluster's name, on the status page.
    pub cluster: &'a str,
}

/// Starts the listeners `api` and `metrics` ask for; they stop when `stop`
/// turns true.
///
/// # Errors
/// An address that cannot be bound, or TLS files that cannot be used; the
/// message names the field.
pub(super) async fn start(
    api: Option<&ApiConfig>,
    metrics: Option<&MetricsConfig>,
    parts: Parts<'_>,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    if let Some(api) = api {
        let router = crate::api::query_router(parts.sources.cache(), api.limits.max_list_limit)
            .merge(crate::api::admin_router(parts.control))
            .merge(parts.sinks.router())
            .merge(crate::api::decisions_router(parts.decisions.clone()))
            .merge(crate::api::status_router(crate::api::StatusParts {
                metrics: parts.metrics.clone(),
                sinks: parts.sinks.clone(),
                cluster: parts.cluster.to_string(),
            }));
        let router = match api.auth {
            AuthMode::Delegated => crate::api::auth::Guard::new(
                parts.client.clone(),
                api.auth_cache_ttl,
                parts.sources.cache(),
            )
            .layer(router),
            AuthMode::None => {
                tracing::warn!(
                    listen = %api.listen,
                    "api.auth is none: anyone who can connect to {} may read what herald caches \
                     and change its watches",
                    api.listen
                );
                router
            }
        };
        let tls = match &api.tls {
            Some(t) => Some(crate::api::Tls::new(t).context("api.tls")?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addr = bind(
            api.listen,
            "api.listen",
            router,
            tls,
            api.limits.clone(),
            &stop,
        )
        .await?;
        tracing::info!(%addr, scheme, auth = ?api.auth, "query and admin APIs listening");
    }
    if let Some(m) = metrics {
        let router = crate::api::health_router(parts.sources.clone()).merge(parts.metrics.router());
        let addr = bind(
            m.listen,
            "metrics.listen",
            router,
            None,
            Limits::default(),
            &stop,
        )
        .await?;
        tracing::info!(%addr, "metrics and probes listening");
    }
    Ok(())
}

async fn bind(
    listen: SocketAddr,
    field: &str,
    router: axum::Router,
    tls: Option<crate::api::Tls>,
    limits: Limits,
    stop: &watch::Receiver<bool>,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("{field}: cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let mut stop = stop.clone();
    let field = field.to_string();
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = crate::api::serve_with(listener, router, tls, limits, stopped).await {
            tracing::error!("{field}: {e}");
        }
    });
    Ok(addr)
}
