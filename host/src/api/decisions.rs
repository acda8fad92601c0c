//! `GET /api/v1/decisions`: what herald decided about recent changes, from
//! the decisions ring, newest first.

use axum::Json;
use axum::extract::RawQuery;
use axum::routing::get;
use serde_json::{Value, json};

use super::ApiError;
use crate::decisions::{Decisions, Filter};

/// Where the decisions are served.
pub(crate) const DECISIONS_PATH: &str = "/api/v1/decisions";

/// `GET /api/v1/decisions?namespace=&name=&kind=&uid=&fate=&sink=&watch=&after=&limit=`:
/// `{"items": [...], "kept": n}`; a parameter that is not one, or not
/// valid, is a 400 naming it.
pub fn decisions_router(decisions: Decisions) -> axum::Router {
    axum::Router::new().route(
        DECISIONS_PATH,
        get(move |RawQuery(q): RawQuery| {
            let decisions = decisions.clone();
            async move { list(&decisions, q.as_deref().unwrap_or_default()) }
        }),
    )
}

fn list(decisions: &Decisions, query: &str) -> Result<Json<Value>, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| ApiError::BadRequest {
            what: "query",
            reason: e.to_string(),
        })?;
    let filter =
        Filter::parse(&pairs).map_err(|(what, reason)| ApiError::BadRequest { what, reason })?;
    let items = decisions.query(&filter);
    Ok(Json(json!({
        "kept": decisions.kept().0,
        "items": items,
    })))
}
