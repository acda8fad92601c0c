//! Asking the API server: who a bearer token belongs to (TokenReview) and
//! whether that caller may do something (SubjectAccessReview). Answers are
//! kept for a short TTL so that a repeated request costs no round trip, and
//! a revoked permission stops working within that TTL.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::attributes::Check;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Caller {
    /// User name. Example: `system:serviceaccount:monitoring:dashboard`
    pub user: String,
    /// The user's UID, when the authenticator gives one.
    pub uid: String,
    /// Groups. Example: `system:serviceaccounts`
    pub groups: Vec<String>,
    /// Extra attributes from the authenticator.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why a review could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReviewError {
    /// The API server did not answer the review.
    #[error("cannot ask the API server ({what}): {source}")]
    Unavailable {
        /// `TokenReview` or `SubjectAccessReview`.
        what: &'static str,
        /// What failed.
        #[source]
        source: kube::Error,
    },
}

/// A decision: allowed, or denied with the reason the API server gave.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    /// Whether the API server allows it.
    pub allowed: bool,
    /// The authorizer's reason, if it gave one.
    pub reason: String,
}

/// Most decisions kept (callers × permissions).
const MAX_DECISIONS: u64 = 100_000;
/// Most callers (token digests) kept.
const MAX_TOKENS: u64 = 10_000;

/// TokenReview and SubjectAccessReview over a client, with caches.
#[derive(Clone)]
pub(crate) struct Reviewer {
    client: kube::Client,
    tokens: Cache<[u8; 32], Option<Arc<Caller>>>,
    decisions: Cache<(Arc<Caller>, Check), Decision>,
}

impl Reviewer {
    /// Reviews through `client`, answers kept for `ttl`.
    pub(crate) fn new(client: kube::Client, ttl: Duration) -> Reviewer {
        Reviewer {
            client,
            tokens: Cache::builder()
                .max_capacity(MAX_TOKENS)
                .time_to_live(ttl)
                .build(),
            decisions: Cache::builder()
                .max_capacity(MAX_DECISIONS)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Who `token` belongs to; `None` when the API server does not know it.
    ///
    /// # Errors
    /// [`ReviewError::Unavailable`] when the API server cannot be asked.
    pub(crate) async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<Arc<Caller>>, ReviewError> {
        // The cache keys on a digest: the token itself is not kept.
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.tokens.get(&key) {
            return Ok(hit);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: None,
            },
            ..Default::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|source| ReviewError::Unavailable {
                what: "TokenReview",
                source,
            })?;
        let caller = answer
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user)
            .and_then(|u| {
                Some(Arc::new(Caller {
                    user: u.username.filter(|n| !n.is_empty())?,
                    uid: u.uid.unwrap_or_default(),
                    groups: u.groups.unwrap_or_default(),
                    extra: u.extra.unwrap_or_default(),
                }))
            });
        self.tokens.insert(key, caller.clone());
        Ok(caller)
    }

    /// Whether `caller` may do what `check` says, in the real cluster.
    ///
    /// # Errors
    /// [`ReviewError::Unavailable`] when the API server cannot be asked.
    pub(crate) async fn authorize(
        &self,
        caller: &Arc<Caller>,
        check: &Check,
    ) -> Result<Decision, ReviewError> {
        let key = (caller.clone(), check.clone());
        if let Some(hit) = self.decisions.get(&key) {
            return Ok(hit);
        }
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(caller.user.clone()),
                uid: some(&caller.uid),
                groups: Some(caller.groups.clone()),
                extra: (!caller.extra.is_empty()).then(|| caller.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(check.verb.to_string()),
                    group: Some(check.group.clone()),
                    resource: Some(check.resource.clone()),
                    namespace: some(&check.namespace),
                    name: some(&check.name),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|source| ReviewError::Unavailable {
                what: "SubjectAccessReview",
                source,
            })?;
        let decision = match answer.status {
            Some(s) => Decision {
                allowed: s.allowed && s.denied != Some(true),
                reason: s.reason.or(s.evaluation_error).unwrap_or_default(),
            },
            None => Decision {
                allowed: false,
                reason: "the API server gave no decision".into(),
            },
        };
        self.decisions.insert(key, decision.clone());
        Ok(decision)
    }
}
