//! JSON shapes of answers: lists in the API server's `XList` form, single objects.
//!
//! Objects are written as the cache keeps them, compact JSON bytes copied into the
//! answer: nothing is parsed or serialised per object.

use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::cache::CachedObject;

/// A JSON answer, already encoded.
pub(crate) struct RawJson(pub(crate) Vec<u8>);

impl IntoResponse for RawJson {
    fn into_response(self) -> Response {
        ([(CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

/// One cached object, as stored.
pub(crate) fn object(o: &CachedObject) -> RawJson {
    RawJson(o.json().to_vec())
}

/// `metadata` of a list.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListMeta {
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    pub(crate) continue_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) remaining_item_count: Option<usize>,
}

/// `{"apiVersion", "kind": "PodList", "metadata", "items"}`.
pub(crate) struct List {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: ListMeta,
    pub(crate) items: Vec<Arc<CachedObject>>,
}

/// Everything before the items.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: &'a ListMeta,
}

impl List {
    /// The answer: the head serialised, then each object's bytes.
    pub(crate) fn render(&self) -> RawJson {
        let items: usize = self.items.iter().map(|o| o.json().len() + 1).sum();
        let mut out = Vec::with_capacity(items + 256);
        let head = Head {
            api_version: &self.api_version,
            kind: &self.kind,
            metadata: &self.metadata,
        };
        // Plain strings and numbers: serialising cannot fail.
        let _ = serde_json::to_writer(&mut out, &head);
        out.pop(); // the head's closing `}`
        out.extend_from_slice(b",\"items\":[");
        for (i, o) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(o.json());
        }
        out.extend_from_slice(b"]}");
        RawJson(out)
    }
}

impl IntoResponse for List {
    fn into_response(self) -> Response {
        self.render().into_response()
    }
}

/// `axum::extract::Path` whose rejection (a segment that is not UTF-8, say)
/// is an [`ApiError`] like every other answer, not plain text.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for ApiPath<T>
{
    type Rejection = super::error::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| ApiPath(t))
            .map_err(|e| super::error::ApiError::BadRequest {
                what: "path",
                reason: e.body_text(),
            })
    }
}
