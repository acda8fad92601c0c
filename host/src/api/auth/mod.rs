//! Delegated authentication and authorization, the way Kubernetes' own
//! add-ons do it (metrics-server, kube-rbac-proxy): the caller's bearer token
//! or client certificate says who it is, the API server says whether it may,
//! and herald never answers more than the API server would tell that caller.
//!
//! [`Guard::layer`] is middleware for the query and admin routers: 401
//! without credentials (or with a token the API server does not know), 403
//! naming the permission that is missing, 503 when the API server cannot be
//! asked; the caller goes on in the request's extensions.

mod attributes;
mod review;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub(crate) use attributes::{Need, required};
pub(crate) use review::{Caller, Reviewer};

use crate::cache::Cache;

use super::error::ApiError;

/// The identity a client certificate carries, put on the request by the
/// TLS listener.
#[derive(Debug, Clone)]
pub(crate) struct PeerCertificate(pub Arc<Caller>);

/// Decides who may use the APIs.
#[derive(Clone)]
pub struct Guard {
    reviewer: Reviewer,
    cache: Cache,
}

impl Guard {
    /// Reviews through `client`, decisions kept for `ttl`; `cache` resolves
    /// the types named in query paths.
    pub fn new(client: kube::Client, ttl: Duration, cache: Cache) -> Guard {
        Guard {
            reviewer: Reviewer::new(client, ttl),
            cache,
        }
    }

    /// `router` with every request checked.
    pub fn layer(self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self, check))
    }

    async fn caller(&self, who: Credentials) -> Result<Arc<Caller>, ApiError> {
        match who {
            Credentials::Bearer(token) => self
                .reviewer
                .authenticate(&token)
                .await
                .map_err(|e| ApiError::AuthUnavailable {
                    reason: e.to_string(),
                })?
                .ok_or(ApiError::Unauthorized {
                    reason: "the API server does not accept this token".into(),
                }),
            Credentials::Certificate(c) => Ok(c),
            Credentials::Malformed => Err(ApiError::Unauthorized {
                reason: "the Authorization header is not \"Bearer <token>\"".into(),
            }),
            Credentials::None => Err(ApiError::Unauthorized {
                reason: "no credentials: send a bearer token (Authorization: Bearer …) \
                         or a client certificate"
                    .into(),
            }),
        }
    }

    async fn allow(&self, who: Credentials, need: Need) -> Result<Arc<Caller>, ApiError> {
        let caller = self.caller(who).await?;
        if let Need::All(checks) = need {
            for c in &checks {
                let d = self.reviewer.authorize(&caller, c).await.map_err(|e| {
                    ApiError::AuthUnavailable {
                        reason: e.to_string(),
                    }
                })?;
                if !d.allowed {
                    let why = if d.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", d.reason)
                    };
                    return Err(ApiError::Forbidden {
                        reason: format!(
                            "User {:?} cannot {} in the cluster, so herald does not answer it \
                             either{why}",
                            caller.user,
                            c.describe()
                        ),
                    });
                }
            }
        }
        Ok(caller)
    }
}

/// What a request carries to say who sends it.
enum Credentials {
    Bearer(String),
    Certificate(Arc<Caller>),
    Malformed,
    None,
}

impl Credentials {
    fn of(req: &Request) -> Credentials {
        match req.headers().get(AUTHORIZATION) {
            Some(v) => match v
                .to_str()
                .ok()
                .and_then(|s| s.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                Some(t) => Credentials::Bearer(t.to_string()),
                None => Credentials::Malformed,
            },
            None => match req.extensions().get::<PeerCertificate>() {
                Some(PeerCertificate(c)) => Credentials::Certificate(c.clone()),
                None => Credentials::None,
            },
        }
    }
}

async fn check(State(guard): State<Guard>, mut req: Request, next: Next) -> Response {
    let who = Credentials::of(&req);
    let need = required(req.method(), req.uri(), &guard.cache);
    match guard.allow(who, need).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            if let ApiError::AuthUnavailable { reason } = &e {
                tracing::warn!(
                    path = req.uri().path(),
                    "cannot authorize a request: {reason}"
                );
            }
            e.into_response()
        }
    }
}
