//! JSON shapes of answers: lists in the API server's `XList` form, single objects.

use std::sync::Arc;

use kube::api::DynamicObject;
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

/// One cached object, serialised in place (no copy).
pub(crate) struct Object(pub(crate) Arc<DynamicObject>);

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Cached objects, serialised in place.
pub(crate) struct Items(pub(crate) Vec<Arc<DynamicObject>>);

impl Serialize for Items {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for o in &self.0 {
            seq.serialize_element(&**o)?;
        }
        seq.end()
    }
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
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct List {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: ListMeta,
    pub(crate) items: Items,
}
