//! [`WatchedObject`]: what kube's watcher decodes each listed or watched object into —
//! the object's compact JSON and the metadata the cache indexes, never a JSON tree.
//!
//! kube's watcher is generic over the object type; `DynamicObject` would hold a
//! `serde_json::Value` per object (six to seven times its JSON size), and a list page
//! holds 500 of them. This type decodes each object straight into the bytes the cache
//! keeps (see [`compact`](super::compact)), so a page costs about its JSON size.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use kube::api::{ApiResource, ObjectMeta};
use kube::core::{DynamicResourceScope, Resource};
use serde::de::{DeserializeSeed, Error as _, MapAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};

use crate::cache::{CachedObject, IndexFields};
use crate::change::raw;

use super::compact;

/// One object from a list or watch: compact JSON plus the metadata fields the cache
/// indexes. `meta` holds only name, namespace, uid and resourceVersion (what kube's
/// watcher reads).
#[derive(Clone)]
pub(crate) struct WatchedObject {
    meta: ObjectMeta,
    json: Box<[u8]>,
    index: IndexFields,
    /// The JSON has `apiVersion` / `kind` (list items come without).
    has_api_version: bool,
    has_kind: bool,
}

impl fmt::Debug for WatchedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedObject")
            .field("namespace", &self.meta.namespace)
            .field("name", &self.meta.name)
            .field("resource_version", &self.meta.resource_version)
            .field("bytes", &self.json.len())
            .finish()
    }
}

/// The part of `metadata` read from the JSON.
struct Meta<'a> {
    name: Option<Cow<'a, str>>,
    namespace: Option<Cow<'a, str>>,
    uid: Option<Cow<'a, str>>,
    resource_version: Option<Cow<'a, str>>,
    labels: Vec<(String, String)>,
    owner_references: Vec<OwnerRef>,
}

impl<'a> Meta<'a> {
    /// The fields the cache indexes, from `metadata`'s text (JSON that
    /// serde_json has read or written): member by member on the bytes, so
    /// `managedFields` and the annotations are skipped, not decoded; labels
    /// and owner references are parsed from their own text. A field that is
    /// `null` is absent; one of another type is an error that names it.
    fn read(json: &'a [u8]) -> Result<Meta<'a>, String> {
        if json.first() != Some(&b'{') {
            return Err("not an object".into());
        }
        let entries = raw::entries(json, 0).map_err(|e| e.to_string())?;
        Meta::of_entries(json, &entries)
    }

    /// [`Meta::read`] of `metadata`'s members, `entries` (offsets in `json`).
    fn of_entries(json: &'a [u8], entries: &[raw::Entry]) -> Result<Meta<'a>, String> {
        let mut meta = Meta {
            name: None,
            namespace: None,
            uid: None,
            resource_version: None,
            labels: Vec::new(),
            owner_references: Vec::new(),
        };
        for e in entries {
            let key = raw::unquote(&json[e.start..e.key_end]).ok_or("a key is not a string")?;
            let value = &json[e.value..e.end];
            let parsed = |what: &str, e: serde_json::Error| format!("{what}: {e}");
            match &*key {
                "name" => meta.name = string(value, "name")?,
                "namespace" => meta.namespace = string(value, "namespace")?,
                "uid" => meta.uid = string(value, "uid")?,
                "resourceVersion" => {
                    meta.resource_version = string(value, "resourceVersion")?;
                }
                "labels" => meta.labels = labels(value).map_err(|e| format!("labels: {e}"))?,
                "ownerReferences" => {
                    meta.owner_references =
                        null_default(&mut serde_json::Deserializer::from_slice(value))
                            .map_err(|e| parsed("ownerReferences", e))?;
                }
                _ => {}
            }
        }
        Ok(meta)
    }
}

/// A string field's value: `None` for `null`.
fn string<'a>(value: &'a [u8], field: &str) -> Result<Option<Cow<'a, str>>, String> {
    if value == b"null" {
        return Ok(None);
    }
    match value.first() {
        Some(b'"') => raw::unquote(value)
            .map(Some)
            .ok_or_else(|| format!("{field}: not a JSON string")),
        _ => Err(format!("{field}: expected a string")),
    }
}

#[derive(Deserialize)]
struct OwnerRef {
    #[serde(default)]
    uid: String,
}

fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A label map's text read member by member, in the object's order; `null`
/// for none; members whose value is not a string (`null`, a number) dropped.
fn labels(value: &[u8]) -> Result<Vec<(String, String)>, String> {
    match value.first() {
        Some(b'{') => {}
        _ if value == b"null" => return Ok(Vec::new()),
        _ => return Err("expected a map".into()),
    }
    let entries = raw::entries(value, 0).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let key = raw::unquote(&value[e.start..e.key_end]).ok_or("a key is not a string")?;
        let text = &value[e.value..e.end];
        if text.first() != Some(&b'"') {
            continue;
        }
        let v = raw::unquote(text).ok_or_else(|| format!("{key}: not a JSON string"))?;
        out.push((key.into_owned(), v.into_owned()));
    }
    Ok(out)
}

thread_local! {
    /// Where objects are written before being copied out at their exact size: no
    /// growth reallocations per object, and no slack left in the cache.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Larger scratch buffers are dropped after use rather than kept per thread.
const SCRATCH_KEEP: usize = 1 << 20;

impl<'de> Deserialize<'de> for WatchedObject {
    /// From serde_json (a watch event's object), the object's text as the
    /// server sent it: kept as it is when it is compact, as the API server
    /// writes it, with `metadata` read out of it; otherwise (a list item,
    /// which kube's `ObjectList` buffers first, or text with whitespace)
    /// re-encoded as compact JSON value by value.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_newtype_struct(raw::RAW_VALUE_TOKEN, ObjectVisitor)
    }
}

/// Takes the object's text when the deserializer hands it over, else its
/// values (see [`WatchedObject`]'s `Deserialize`).
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = WatchedObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<WatchedObject, D::Error> {
        decode(|buf| compact::top_level(d, buf))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WatchedObject, A::Error> {
        // serde_json answers the raw-value name with a map of one member,
        // the text under the name; anything else is a plain map.
        if map.next_key_seed(RawKey)?.is_none() {
            return Err(A::Error::invalid_value(Unexpected::Map, &self));
        }
        let text = map.next_value_seed(Text)?;
        if raw::is_compact(text.as_bytes()) {
            // Kept as it is: copied once, into the object.
            let seen = compact::top_level_of_text(text.as_bytes())
                .map_err(|e| A::Error::custom(format!("object: {e}")))?;
            return build(text.as_bytes(), &seen);
        }
        decode(|buf| {
            compact::top_level(&mut serde_json::Deserializer::from_str(&text), buf)
                .map_err(A::Error::custom)
        })
    }
}

/// The one key of serde_json's raw-value map; another key is an error.
struct RawKey;

impl<'de> DeserializeSeed<'de> for RawKey {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let key = Text.deserialize(d)?;
        if key == raw::RAW_VALUE_TOKEN {
            Ok(())
        } else {
            Err(D::Error::invalid_value(
                Unexpected::Str(&key),
                &"the object's text",
            ))
        }
    }
}

/// A string, borrowed from the input when it can be.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// The object `write` puts in a per-thread buffer, with its index.
fn decode<E: serde::de::Error>(
    write: impl FnOnce(&mut Vec<u8>) -> Result<compact::TopLevel, E>,
) -> Result<WatchedObject, E> {
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        buf.clear();
        let result = write(&mut buf).and_then(|seen| build(&buf, &seen));
        if buf.capacity() > SCRATCH_KEEP {
            *buf = Vec::new();
        }
        result
    })
}

/// The object whose compact JSON is `json`, with what [`compact::top_level`]
/// (or its reading of text) noted of it: its metadata read, its bytes
/// copied out at their exact size.
fn build<E: serde::de::Error>(json: &[u8], seen: &compact::TopLevel) -> Result<WatchedObject, E> {
    let meta = match (&seen.metadata, &seen.metadata_entries) {
        (_, Some(entries)) => Meta::of_entries(json, entries),
        (Some(range), None) => Meta::read(&json[range.clone()]),
        (None, None) => return Err(E::missing_field("metadata")),
    }
    .map_err(|e| E::custom(format!("metadata: {e}")))?;
    let index = IndexFields {
        uid: meta.uid.clone().map(Cow::into_owned),
        resource_version: meta.resource_version.clone().map(Cow::into_owned),
        labels: meta.labels,
        owner_uids: meta.owner_references.into_iter().map(|o| o.uid).collect(),
    };
    Ok(WatchedObject {
        meta: ObjectMeta {
            name: meta.name.map(Cow::into_owned),
            namespace: meta.namespace.map(Cow::into_owned),
            uid: meta.uid.map(Cow::into_owned),
            resource_version: meta.resource_version.map(Cow::into_owned),
            ..ObjectMeta::default()
        },
        json: Box::from(json),
        index,
        has_api_version: seen.api_version,
        has_kind: seen.kind,
    })
}

impl WatchedObject {
    pub(crate) fn namespace(&self) -> Option<&str> {
        self.meta.namespace.as_deref()
    }

    /// The cache's form, with `kind` and `apiVersion` of `resource` added (in
    /// that order, the API server's) when the JSON lacks them (a built-in
    /// type's list items do), so every object looks the same whichever path
    /// it took; with `redact`, a Secret's values replaced by digests (see
    /// [`secrets`](super::secrets)).
    pub(crate) fn into_cached(
        self,
        resource: &ApiResource,
        redact: Option<&super::SecretKey>,
    ) -> CachedObject {
        let json = if self.has_api_version && self.has_kind {
            self.json
        } else {
            // `kind` first, as the API server writes a built-in type (whose
            // list items come without both; a custom resource's list items
            // carry them), so an object's bytes are the same listed or watched.
            let mut head = Vec::new();
            if !self.has_kind {
                head.extend_from_slice(b"\"kind\":");
                // A string never fails to serialise.
                let _ = serde_json::to_writer(&mut head, &resource.kind);
                head.push(b',');
            }
            if !self.has_api_version {
                head.extend_from_slice(b"\"apiVersion\":");
                let _ = serde_json::to_writer(&mut head, &resource.api_version);
                head.push(b',');
            }
            // `{` + head + the rest; an empty object loses the head's last comma.
            let rest = &self.json[1..];
            if rest == b"}" {
                head.pop();
            }
            let mut json = Vec::with_capacity(1 + head.len() + rest.len());
            json.push(b'{');
            json.extend_from_slice(&head);
            json.extend_from_slice(rest);
            json.into_boxed_slice()
        };
        let json = match redact.and_then(|key| super::secrets::redact_bytes(&json, key)) {
            Some(redacted) => redacted.into_boxed_slice(),
            None => json,
        };
        let namespace = self.meta.namespace.as_deref().unwrap_or_default();
        let name = self.meta.name.as_deref().unwrap_or_default();
        CachedObject::new(namespace, name, json, &self.index)
    }
}

impl Resource for WatchedObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A `WatchedObject` as the watcher would decode `v`.
    pub(crate) fn watched(v: &Value) -> WatchedObject {
        serde_json::from_value(v.clone()).expect("decodes")
    }

    fn pods() -> ApiResource {
        ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
        }
    }

    #[test]
    fn decodes_to_compact_json_and_index_and_adds_type_fields() {
        let text = r#"{"metadata": {"name": "p", "namespace": "ns", "uid": "u1",
            "resourceVersion": "7", "labels": {"app": "web", "tier": "a\"b", "bad": null},
            "ownerReferences": [{"uid": "o1", "kind": "ReplicaSet"}],
            "managedFields": [{"manager": "m"}]}, "spec": {"x": [1, 2.5]}}"#;
        let o: WatchedObject = serde_json::from_str(text).expect("decodes");
        assert_eq!(o.namespace(), Some("ns"));
        assert_eq!(o.meta.resource_version.as_deref(), Some("7"));
        let c = o.into_cached(&pods(), None);
        assert_eq!(c.key_pair(), ("ns", "p"));
        assert_eq!(c.uid(), Some("u1"));
        assert_eq!(c.resource_version(), Some("7"));
        assert_eq!(
            c.labels().collect::<Vec<_>>(),
            [("app", "web"), ("tier", "a\"b")]
        );
        assert_eq!(c.owner_uids().collect::<Vec<_>>(), ["o1"]);
        let json = std::str::from_utf8(c.json()).expect("utf-8");
        assert!(json.starts_with(r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p""#));
        let mut want: Value = serde_json::from_str(text).expect("json");
        want["apiVersion"] = json!("v1");
        want["kind"] = json!("Pod");
        assert_eq!(c.to_value().expect("parses"), want);
    }

    #[test]
    fn a_watch_events_compact_object_is_kept_as_the_server_wrote_it() {
        // Go's encoder escapes `<`, `>` and `&`; the text is kept as it is.
        let object = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"ns","resourceVersion":"9","labels":{"a":"x\u003cy"}},"spec":{"n":[1,-2.5e3,{"s":"a b\"c"}]},"status":{}}"#;
        let line = format!(r#"{{"type":"MODIFIED","object":{object}}}"#);
        let event: kube::core::WatchEvent<WatchedObject> =
            serde_json::from_str(&line).expect("decodes");
        let kube::core::WatchEvent::Modified(o) = event else {
            panic!("a MODIFIED event");
        };
        assert!(o.has_api_version && o.has_kind);
        let c = o.into_cached(&pods(), None);
        assert_eq!(c.json(), object.as_bytes());
        assert_eq!(c.key_pair(), ("ns", "p"));
        assert_eq!(c.resource_version(), Some("9"));
        assert_eq!(c.labels().collect::<Vec<_>>(), [("a", "x<y")]);
    }

    #[test]
    fn text_with_whitespace_and_list_items_are_stored_compact() {
        let pretty = "{ \"metadata\": {\"name\": \"p\"},\n\t\"spec\": {\"s\": \"a b\"} }";
        let o: WatchedObject = serde_json::from_str(pretty).expect("decodes");
        let c = o.into_cached(&pods(), None);
        assert_eq!(
            std::str::from_utf8(c.json()).expect("utf-8"),
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"s":"a b"}}"#
        );
        // kube's ObjectList buffers its input (a flattened field): the
        // object's values, not its text, reach the decode.
        let list = format!(
            r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"3"}},"items":[{pretty}]}}"#
        );
        let list: kube::core::ObjectList<WatchedObject> =
            serde_json::from_str(&list).expect("decodes");
        let c = list.items[0].clone().into_cached(&pods(), None);
        assert_eq!(
            std::str::from_utf8(c.json()).expect("utf-8"),
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"s":"a b"}}"#
        );
    }

    #[test]
    fn metadata_is_read_member_by_member_and_only_its_own_members_count() {
        // Nested objects name `uid`, `name` and `labels` too; strings hold
        // braces and quotes; only metadata's own members are read.
        let text = br#"{"managedFields":[{"manager":"m","fieldsV1":{"f:metadata":{"f:uid":{},"f:labels":{".":{}}}},"uid":"no"}],"annotations":{"x":"}\"name\":\"no\"{","name":"no"},"name":"p\u0041","uid":"u","labels":{"a":"1","b":null,"c":2,"d":"x\"y","e\u0041":"v\u0042"},"namespace":null,"ownerReferences":[{"uid":"o1","name":"no"},{"kind":"K"}],"resourceVersion":"42"}"#;
        let m = Meta::read(text).expect("reads");
        assert_eq!(m.name.as_deref(), Some("pA"));
        assert_eq!(m.uid.as_deref(), Some("u"));
        assert_eq!(m.namespace, None, "null is absent");
        assert_eq!(m.resource_version.as_deref(), Some("42"));
        assert_eq!(
            m.labels,
            [
                ("a".to_string(), "1".to_string()),
                ("d".into(), "x\"y".into()),
                ("eA".into(), "vB".into())
            ]
        );
        let owners: Vec<&str> = m.owner_references.iter().map(|o| o.uid.as_str()).collect();
        assert_eq!(owners, ["o1", ""]);
        // A field of the wrong type is an error that names it.
        for (bad, field) in [
            (&br#"{"name":5}"#[..], "name"),
            (br#"{"uid":{"a":1}}"#, "uid"),
            (br#"{"labels":[1]}"#, "labels"),
            (br#"{"ownerReferences":{"uid":"x"}}"#, "ownerReferences"),
        ] {
            let e = Meta::read(bad).err().expect("an error");
            assert!(e.starts_with(field), "{e}");
        }
        assert!(Meta::read(b"[1]").is_err());
        assert!(Meta::read(b"5").is_err());
        // Through a watch event: the error names metadata and the field.
        let line = r#"{"type":"ADDED","object":{"metadata":{"name":["p"]}}}"#;
        let e = serde_json::from_str::<kube::core::WatchEvent<WatchedObject>>(line)
            .expect_err("an error");
        assert!(e.to_string().contains("metadata: name"), "{e}");
    }

    #[test]
    fn an_object_without_metadata_or_not_an_object_is_an_error() {
        for text in [r#"{"spec":{}}"#, "[1]", r#""s""#, "{\"spec\": {}}"] {
            let e = serde_json::from_str::<WatchedObject>(text).err();
            assert!(e.is_some(), "{text}");
        }
        let line = r#"{"type":"ADDED","object":{"spec":{}}}"#;
        let e = serde_json::from_str::<kube::core::WatchEvent<WatchedObject>>(line)
            .expect_err("an error");
        assert!(e.to_string().contains("metadata"), "{e}");
    }

    #[test]
    fn keeps_type_fields_the_object_has_and_handles_sparse_metadata() {
        let v = json!({"kind": "Pod", "metadata": {"name": "n", "labels": null, "ownerReferences": null}});
        let c = watched(&v).into_cached(&pods(), None);
        assert_eq!(
            std::str::from_utf8(c.json()).expect("utf-8"),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"labels":null,"name":"n","ownerReferences":null}}"#
        );
        assert_eq!(c.key_pair(), ("", "n"));
        assert!(serde_json::from_value::<WatchedObject>(json!({"spec": {}})).is_err());
        assert!(serde_json::from_value::<WatchedObject>(json!([1])).is_err());
    }
}
