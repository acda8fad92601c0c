//! [`ApiError`]: every way a query or admin request fails, as a JSON answer.

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::source;

/// A failed request. Client errors name what was wrong; server errors show a generic
/// message and are logged by the routers' middleware.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The type in the path is not watched, so the cache has nothing for it.
    #[error("{resource} is not watched")]
    NotWatched {
        /// The type as named in the request. Example: `apps/v1/deployments`
        resource: String,
    },

    /// The object is not in the cache.
    #[error("{kind} {key} not found")]
    NotFound {
        /// Kind. Example: `Pod`
        kind: String,
        /// `namespace/name`, or `name` when cluster-scoped.
        key: String,
    },

    /// The kind has no such relation.
    #[error("{kind} has no relation {relation:?}; it has: {supported}")]
    NoRelation {
        /// Kind of the object in the path.
        kind: String,
        /// The relation asked for.
        relation: String,
        /// What it has, comma-separated (or `none`).
        supported: String,
    },

    /// A parameter or the body is malformed.
    #[error("invalid {what}: {reason}")]
    BadRequest {
        /// The parameter or part. Example: `labelSelector`
        what: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// No watch has this id.
    #[error("no watch {id}")]
    UnknownWatch {
        /// The id from the path.
        id: String,
    },

    /// A source operation failed.
    #[error(transparent)]
    Source(source::Error),

    /// A watch whose plugins or sinks cannot work (a plugin that does not
    /// load, a sink that does not exist); nothing was changed.
    #[error("{reason}")]
    Rejected {
        /// What is wrong, naming the plugin or sink.
        reason: String,
    },

    /// herald is shutting down.
    #[error("herald is shutting down")]
    ShuttingDown,

    /// The request body is over `api.limits.maxBody`.
    #[error("request body too large: {reason}")]
    TooLarge {
        /// What the body reader said.
        reason: String,
    },

    /// No credentials, or credentials the API server does not accept.
    #[error("{reason}")]
    Unauthorized {
        /// What is missing or wrong.
        reason: String,
    },

    /// The caller may not do this in the cluster.
    #[error("{reason}")]
    Forbidden {
        /// Who cannot do what.
        reason: String,
    },

    /// The API server could not be asked who the caller is or what it may do.
    #[error("{reason}")]
    AuthUnavailable {
        /// What failed.
        reason: String,
    },
}

impl From<source::Error> for ApiError {
    fn from(e: source::Error) -> Self {
        match e {
            source::Error::UnknownWatch { id } => ApiError::UnknownWatch { id },
            e => ApiError::Source(e),
        }
    }
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotWatched { .. }
            | ApiError::NotFound { .. }
            | ApiError::NoRelation { .. }
            | ApiError::UnknownWatch { .. } => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::ShuttingDown | ApiError::AuthUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Source(e) => match e {
                source::Error::InvalidSpec { .. } => StatusCode::BAD_REQUEST,
                source::Error::Duplicate { .. } => StatusCode::CONFLICT,
                source::Error::UnknownWatch { .. } => StatusCode::NOT_FOUND,
                source::Error::NotWatchable { .. } | source::Error::ClusterScoped { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// A short machine-readable reason, like the API server's `Status.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotWatched { .. } => "NotWatched",
            ApiError::NotFound { .. } | ApiError::UnknownWatch { .. } => "NotFound",
            ApiError::NoRelation { .. } => "NoRelation",
            ApiError::BadRequest { .. } => "BadRequest",
            ApiError::Rejected { .. } => "Unprocessable",
            ApiError::ShuttingDown | ApiError::AuthUnavailable { .. } => "ServiceUnavailable",
            ApiError::Unauthorized { .. } => "Unauthorized",
            ApiError::TooLarge { .. } => "RequestEntityTooLarge",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::Source(_) => match self.status() {
                StatusCode::BAD_REQUEST => "Invalid",
                StatusCode::CONFLICT => "AlreadyExists",
                StatusCode::UNPROCESSABLE_ENTITY => "Unprocessable",
                _ => "InternalError",
            },
        }
    }
}

/// The message of a server error, carried to [`log_server_errors`] in the response.
#[derive(Clone)]
struct ServerError(Arc<String>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error".to_string()
        } else {
            self.to_string()
        };
        let body = json!({"error": {"code": status.as_u16(), "reason": self.reason(), "message": message}});
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if status.is_server_error() {
            let mut detail = self.to_string();
            let mut source = std::error::Error::source(&self);
            while let Some(cause) = source {
                detail.push_str(": ");
                detail.push_str(&cause.to_string());
                source = cause.source();
            }
            resp.extensions_mut().insert(ServerError(Arc::new(detail)));
        }
        resp
    }
}

/// Middleware (`axum::middleware::map_response`) that logs server errors; client
/// errors are the client's business and are not logged.
pub(crate) async fn log_server_errors(resp: Response) -> Response {
    if let Some(ServerError(detail)) = resp.extensions().get::<ServerError>() {
        tracing::error!(status = resp.status().as_u16(), error = %detail, "request failed");
    }
    resp
}
