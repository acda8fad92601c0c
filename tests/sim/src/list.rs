//! LIST: resourceVersion semantics, pagination with opaque continue tokens, and the
//! list document (items are sent without `kind`/`apiVersion`, as the real server does).

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::object::{Key, Obj, put_json_str};
use crate::order::KeyOrder;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::Shared;
use crate::store::{ListQuery, Page, too_large};
use crate::types::ResourceType;

/// What a list asks for.
#[derive(Clone, Debug)]
pub struct ListRequest {
    /// The type and version listed.
    pub rt: ResourceType,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0 or absent: everything).
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// Accept asked for `PartialObjectMetadataList`.
    pub metadata_only: bool,
}

impl ListRequest {
    /// Whether an object is in the result (namespace is handled by the key range).
    pub fn matches(&self, o: &Obj) -> bool {
        self.labels.matches(&o.labels) && self.fields.matches(|f| o.field(f))
    }

    fn filtered(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }
}

/// The state a continue token carries.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct Token {
    /// Format marker, like the real server's token.
    v: String,
    /// resourceVersion the list is consistent at.
    rv: u64,
    /// Namespace of the last key returned.
    ns: String,
    /// Name of the last key returned.
    name: String,
    /// Items returned so far.
    n: usize,
    /// Items in the whole list.
    t: usize,
}

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

fn encode_token(t: &Token) -> String {
    base64_encode(&serde_json::to_vec(t).unwrap_or_default())
}

fn decode_token(s: &str) -> Result<Token, ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {s:?}"));
    let raw = base64_decode(s).ok_or_else(bad)?;
    let t: Token = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if t.v != TOKEN_VERSION {
        return Err(bad());
    }
    Ok(t)
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::invalid(
            "ListOptions",
            "",
            format!("resourceVersion: Invalid value: {s:?}: must be a number"),
        )
    })
}

/// Runs a list and renders the response body.
///
/// # Errors
/// `400` for bad parameters, `410 Expired` for a continue token or exact
/// resourceVersion older than history, `504` for a resourceVersion not reached yet.
pub fn list(shared: &Shared, req: &ListRequest) -> Result<Bytes, ApiError> {
    let store = &shared.api.store;
    let gr = req.rt.group_resource();
    let limit = match (req.limit, shared.config.page_size_cap) {
        (None | Some(0), _) => None,
        (Some(l), Some(cap)) => Some(l.min(cap.max(1))),
        (Some(l), None) => Some(l),
    };
    let rv = req.resource_version.as_deref().unwrap_or("");
    let rvm = req.resource_version_match.as_deref().unwrap_or("");
    let mut before = 0;
    let mut total = None;
    let mut after: Option<Key> = None;
    let at = if let Some(tok) = req.continue_token.as_deref().filter(|t| !t.is_empty()) {
        if !rv.is_empty() && rv != "0" {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let t = decode_token(tok)?;
        if t.rv < store.compacted_rv() {
            // Offer the rest of the list at the current state, as the server does.
            let mut e = ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. \
                 You can start a new list without the continue parameter, or use the continue \
                 token in this response to retrieve the remainder of the results. Continuing with \
                 the provided token results in an inconsistent list - objects that were created, \
                 modified, or deleted between the time the first chunk was returned and now may \
                 show up in the list.",
            );
            e.continue_token = Some(encode_token(&Token {
                rv: store.current_rv(),
                t: store.count(&gr),
                ..t
            }));
            return Err(e);
        }
        before = t.n;
        total = Some(t.t);
        after = Some((t.ns, t.name));
        Some(t.rv)
    } else {
        match (rvm, rv) {
            ("", "") | ("", "0") => None,
            ("", n) if limit.is_some() => Some(parse_rv(n)?),
            ("", n) | ("NotOlderThan", n) => {
                let n = parse_rv(n)?;
                let cur = store.current_rv();
                if n > cur {
                    return Err(too_large(n, cur));
                }
                None
            }
            (_, "") => {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "",
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            ("Exact", "0") => {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "",
                    "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            ("Exact", n) => Some(parse_rv(n)?),
            (other, _) => {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "",
                    format!(
                        "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""
                    ),
                ));
            }
        }
    };
    let q = ListQuery {
        namespace: req.namespace.as_deref(),
        at,
        after: after.as_ref(),
        limit,
        total,
    };
    let page = store.list(&gr, &q, |o| req.matches(o), req.filtered())?;
    Ok(render(req, &page, before))
}

/// The list document, in a real server's key order: a built-in type's list
/// as its Go struct (`kind`, `apiVersion`, `metadata`, `items`; items without
/// `kind` and `apiVersion`), a custom resource's sorted (`apiVersion`,
/// `items`, `kind`, `metadata`; items with both), as unstructured JSON is.
fn render(req: &ListRequest, page: &Page, before: usize) -> Bytes {
    let returned = before + page.items.len();
    let size: usize = page.items.iter().map(|o| o.body.len() + 64).sum();
    let api_version = req.rt.api_version();
    let (list_kind, list_version) = if req.metadata_only {
        ("PartialObjectMetadataList".to_string(), "meta.k8s.io/v1")
    } else {
        (format!("{}List", req.rt.kind), api_version.as_str())
    };
    let sorted = !req.metadata_only && KeyOrder::of_api_version(&api_version) == KeyOrder::Sorted;

    let mut meta = BytesMut::new();
    let rv = page.rv.to_string();
    let mut meta_fields: Vec<(&str, Vec<u8>)> = vec![("resourceVersion", json_str(&rv))];
    if let Some((ns, name)) = &page.next {
        let tok = Token {
            v: TOKEN_VERSION.into(),
            rv: page.rv,
            ns: ns.clone(),
            name: name.clone(),
            n: returned,
            t: page.total,
        };
        meta_fields.push(("continue", json_str(&encode_token(&tok))));
        if !req.filtered() {
            let remaining = page.total.saturating_sub(returned);
            meta_fields.push(("remainingItemCount", remaining.to_string().into_bytes()));
        }
    }
    if sorted {
        meta_fields.sort_by_key(|(k, _)| *k);
    }
    meta.put_u8(b'{');
    for (i, (k, v)) in meta_fields.iter().enumerate() {
        if i > 0 {
            meta.put_u8(b',');
        }
        put_json_str(&mut meta, k);
        meta.put_u8(b':');
        meta.put_slice(v);
    }
    meta.put_u8(b'}');

    let write_items = |out: &mut BytesMut| {
        out.put_u8(b'[');
        for (i, o) in page.items.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            if req.metadata_only {
                o.write_metadata(out);
            } else if sorted {
                o.write_full(out, &api_version, &req.rt.kind);
            } else {
                out.put_slice(&o.body);
            }
        }
        out.put_u8(b']');
    };
    let key = |out: &mut BytesMut, first: bool, key: &str| {
        out.put_slice(if first { b"{" } else { b"," });
        put_json_str(out, key);
        out.put_u8(b':');
    };
    let mut out = BytesMut::with_capacity(size + meta.len() + 128);
    if sorted {
        key(&mut out, true, "apiVersion");
        put_json_str(&mut out, list_version);
        key(&mut out, false, "items");
        write_items(&mut out);
        key(&mut out, false, "kind");
        put_json_str(&mut out, &list_kind);
        key(&mut out, false, "metadata");
        out.put_slice(&meta);
    } else {
        key(&mut out, true, "kind");
        put_json_str(&mut out, &list_kind);
        key(&mut out, false, "apiVersion");
        put_json_str(&mut out, list_version);
        key(&mut out, false, "metadata");
        out.put_slice(&meta);
        key(&mut out, false, "items");
        write_items(&mut out);
    }
    out.put_u8(b'}');
    out.freeze()
}

/// `s` as a JSON string.
fn json_str(s: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    put_json_str(&mut out, s);
    out.to_vec()
}

/// URL-safe alphabet without padding, as the real server's tokens use.
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64_encode(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            s.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "abcd", "{\"rv\":12}"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).as_deref(), Some(s.as_bytes()), "{s}");
        }
        assert_eq!(base64_encode(b"ab"), "YWI");
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn tokens_round_trip() {
        let t = Token {
            v: TOKEN_VERSION.into(),
            rv: 5,
            ns: "a".into(),
            name: "b".into(),
            n: 1,
            t: 3,
        };
        assert_eq!(decode_token(&encode_token(&t)).expect("decode"), t);
        assert_eq!(
            decode_token("eyJ4Ijox").map_err(|e| e.code).err(),
            Some(400)
        );
    }
}
