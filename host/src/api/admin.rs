//! The admin API: add, remove and list watches at run time.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::{mpsc, oneshot};

use crate::source::{Sources, WatchSpec, WatchState, WatchStatus};

use super::body::ApiPath;
use super::error::{ApiError, log_server_errors};

/// Where the admin API lives.
pub(super) const ADMIN_PREFIX: &str = "/admin/v1/watches";

/// A change to the watches asked over the admin API, for their owner to
/// apply (in `herald run`, the same owner that applies the config file: the
/// watch gets its chain and its sinks like a configured one). Each carries
/// the channel its answer goes back on.
#[derive(Debug)]
pub enum WatchRequest {
    /// Add a watch.
    Add {
        /// The spec, as in the config file.
        spec: Box<WatchSpec>,
        /// Its status once added.
        reply: oneshot::Sender<Result<WatchStatus, ApiError>>,
    },
    /// Stop and forget a watch.
    Remove {
        /// The watch id.
        id: String,
        /// Its spec once removed.
        reply: oneshot::Sender<Result<WatchSpec, ApiError>>,
    },
}

impl WatchRequest {
    /// Answers by acting on `sources` alone: the watch runs with no plugins
    /// and goes to every sink. For embedders without an owner of their own.
    pub async fn apply_to(self, sources: &Sources) {
        match self {
            WatchRequest::Add { spec, reply } => {
                let _ = reply.send(sources.add(*spec).await.map_err(ApiError::from));
            }
            WatchRequest::Remove { id, reply } => {
                let _ = reply.send(sources.remove(&id).map_err(ApiError::from));
            }
        }
    }
}

/// What the admin API reads (the watches' status) and where it sends changes.
#[derive(Clone, Debug)]
pub struct WatchControl {
    sources: Sources,
    requests: mpsc::Sender<WatchRequest>,
}

impl WatchControl {
    /// A control over `sources` whose changes arrive on the receiver.
    pub fn channel(sources: Sources) -> (WatchControl, mpsc::Receiver<WatchRequest>) {
        let (requests, rx) = mpsc::channel(16);
        (WatchControl { sources, requests }, rx)
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, ApiError>>) -> WatchRequest,
    ) -> Result<T, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .await
            .map_err(|_| ApiError::ShuttingDown)?;
        answer.await.map_err(|_| ApiError::ShuttingDown)?
    }
}

/// The admin API over `control`:
///
/// - `GET /admin/v1/watches`: every watch with its status.
/// - `POST /admin/v1/watches` with a watch spec (JSON, as in the config file): adds it;
///   201 when it runs, 202 when it waits for its type to be served.
/// - `GET /admin/v1/watches/{id}`: one watch.
/// - `DELETE /admin/v1/watches/{id}`: stops it; answers its spec.
pub fn admin_router(control: WatchControl) -> Router {
    Router::new()
        .route(ADMIN_PREFIX, get(list).post(add))
        .route(
            &format!("{ADMIN_PREFIX}/{{id}}"),
            get(status).delete(remove),
        )
        .with_state(control)
        .layer(axum::middleware::map_response(log_server_errors))
}

async fn list(State(control): State<WatchControl>) -> Json<Vec<WatchStatus>> {
    Json(control.sources.list())
}

async fn add(
    State(control): State<WatchControl>,
    body: Result<Json<WatchSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<WatchStatus>), ApiError> {
    let Json(spec) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge {
                reason: e.body_text(),
            }
        } else {
            ApiError::BadRequest {
                what: "watch spec",
                reason: e.body_text(),
            }
        }
    })?;
    let status = control
        .ask(|reply| WatchRequest::Add {
            spec: Box::new(spec),
            reply,
        })
        .await?;
    let code = if status.state == WatchState::Pending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok((code, Json(status)))
}

async fn status(
    State(control): State<WatchControl>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WatchStatus>, ApiError> {
    control
        .sources
        .status(&id)
        .map(Json)
        .ok_or(ApiError::UnknownWatch { id })
}

async fn remove(
    State(control): State<WatchControl>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WatchSpec>, ApiError> {
    Ok(Json(
        control
            .ask(|reply| WatchRequest::Remove { id, reply })
            .await?,
    ))
}
