//! The admin API: add, remove and list watches at run time.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;

use crate::source::{Sources, WatchSpec, WatchState, WatchStatus};

use super::error::{ApiError, log_server_errors};

/// Where the admin API lives.
pub const ADMIN_PREFIX: &str = "/admin/v1/watches";

/// The admin API over `sources`:
///
/// - `GET /admin/v1/watches`: every watch with its status.
/// - `POST /admin/v1/watches` with a watch spec (JSON, as in the config file): adds it;
///   201 when it runs, 202 when it waits for its type to be served.
/// - `GET /admin/v1/watches/{id}`: one watch.
/// - `DELETE /admin/v1/watches/{id}`: stops it; answers its spec.
pub fn admin_router(sources: Sources) -> Router {
    Router::new()
        .route(ADMIN_PREFIX, get(list).post(add))
        .route(
            &format!("{ADMIN_PREFIX}/{{id}}"),
            get(status).delete(remove),
        )
        .with_state(sources)
        .layer(axum::middleware::map_response(log_server_errors))
}

async fn list(State(sources): State<Sources>) -> Json<Vec<WatchStatus>> {
    Json(sources.list())
}

async fn add(
    State(sources): State<Sources>,
    body: Result<Json<WatchSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<WatchStatus>), ApiError> {
    let Json(spec) = body.map_err(|e| ApiError::BadRequest {
        what: "watch spec",
        reason: e.body_text(),
    })?;
    let status = sources.add(spec).await?;
    let code = if status.state == WatchState::Pending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok((code, Json(status)))
}

async fn status(
    State(sources): State<Sources>,
    Path(id): Path<String>,
) -> Result<Json<WatchStatus>, ApiError> {
    sources
        .status(&id)
        .map(Json)
        .ok_or(ApiError::UnknownWatch { id })
}

async fn remove(
    State(sources): State<Sources>,
    Path(id): Path<String>,
) -> Result<Json<WatchSpec>, ApiError> {
    Ok(Json(sources.remove(&id)?))
}
