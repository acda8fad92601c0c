//! `/healthz` (the process answers) and `/readyz` (every running watch has
//! finished its first list and none has been silent past its stall limit).

use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::source::{Sources, WatchState};

/// Routes `/healthz` and `/readyz`.
pub(crate) fn health_router(sources: Sources) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .with_state(sources)
}

/// Why herald is not ready; empty when it is.
pub(super) fn unready_reasons(sources: &Sources) -> Vec<String> {
    let now = SystemTime::now();
    let mut reasons = Vec::new();
    for w in sources.list() {
        if w.state != WatchState::Running {
            continue;
        }
        let limit = w
            .spec
            .stall_timeout
            .unwrap_or(sources.settings().stall_timeout);
        for s in &w.scopes {
            let scope = s.namespace.as_deref().unwrap_or("all namespaces");
            if !s.synced {
                reasons.push(match &s.last_error {
                    // The API server's own words: forbidden, not found, …
                    Some(error) => format!("{} ({scope}): initial list failing: {error}", w.id),
                    None => format!("{} ({scope}): initial list not complete", w.id),
                });
            } else if let Some(seen) = s.last_seen
                && now.duration_since(seen).is_ok_and(|d| d > limit)
            {
                reasons.push(format!(
                    "{} ({scope}): nothing heard from the API server for over {}",
                    w.id,
                    humantime::format_duration(limit)
                ));
            }
        }
    }
    reasons
}

async fn readyz(State(sources): State<Sources>) -> (StatusCode, Json<Value>) {
    let reasons = unready_reasons(&sources);
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reasons": reasons})),
        )
    }
}
