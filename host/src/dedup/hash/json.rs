//! [`super::ObjectHasher::hash_json`]: the v1 stream straight from JSON text.

use super::*;

impl ObjectHasher {
    /// The hash of the JSON document `json`: exactly
    /// `self.hash(&serde_json::from_slice(json)?)`, without building the
    /// `Value` (one streaming pass; buffers reused per thread).
    ///
    /// # Errors
    ///
    /// The error `serde_json::from_slice::<Value>` gives for the same bytes.
    pub(crate) fn hash_json(&self, json: &[u8]) -> serde_json::Result<ObjectHash> {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.hash_json_in(json, &mut scratch),
            // Not reentrant today; stay correct if it ever is.
            Err(_) => self.hash_json_in(json, &mut Scratch::default()),
        })
    }

    fn hash_json_in(&self, json: &[u8], s: &mut Scratch) -> serde_json::Result<ObjectHash> {
        if let Some(hash) = self.hash_text_in(json, s) {
            return Ok(hash);
        }
        s.enc.clear();
        s.members.clear();
        s.enc.extend_from_slice(b"H\x01");
        let mut de = serde_json::Deserializer::from_slice(json);
        let done = Enc {
            s: &mut *s,
            node: Some(&self.root),
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        let hash = done.map(|()| ObjectHash(xxh3_128(&s.enc)));
        s.trim();
        hash
    }
}

impl ObjectHasher {
    /// [`ObjectHasher::hash_json`] by the hand-written walk of
    /// [`super::text`]: `None` when it leaves the text to serde's.
    pub(super) fn hash_text_in(&self, json: &[u8], s: &mut Scratch) -> Option<ObjectHash> {
        s.enc.clear();
        s.members.clear();
        s.enc.extend_from_slice(b"H\x01");
        let done = super::text::encode(json, &self.root, s);
        let hash = done.map(|()| ObjectHash(xxh3_128(&s.enc)));
        s.trim();
        hash
    }
}

// === from JSON text ===
//
// `Enc` is a `Visitor` that appends the encoding of the value it is given to
// `Scratch::enc`, then the whole stream is hashed at once (XXH3's one-shot
// and streaming digests agree). Arrays and scalars are written as they come.
// A map's members are written as they come too, each `k` + key + value, and
// recorded in `Scratch::members`; at the map's end they are put in key order
// (of equal keys the last one read wins, as `Map::insert` keeps it) through
// `Scratch::sorted`. A nested map is sorted in place before its parent's
// member ends, so a member's bytes are always one range of `enc`.
//
// To give the error `from_slice::<Value>` gives, everything `Value` reads is
// read here too: an excluded value goes through `Skip` (a full parse that
// keeps nothing), not `IgnoredAny`, whose fast skip accepts what `Value`
// rejects (invalid UTF-8 or lone surrogates in strings, numbers out of range,
// nesting beyond serde_json's recursion limit). And `Value` (with serde_json's
// `raw_value` feature, on in this build) reads a map whose first key is
// `RAW_VALUE_TOKEN` as the JSON text in that key's string value; so do `Enc`
// and `Skip`.

pub(super) use crate::change::raw::RAW_VALUE_TOKEN;

/// Bytes before a member's key: `k` and the length.
pub(super) const KEY_AT: usize = 9;

/// `Scratch` buffers above this size are dropped after use, not kept.
pub(super) const SCRATCH_KEPT: usize = 1 << 20;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// The buffers of [`ObjectHasher::hash_json`], reused between calls.
#[derive(Default)]
pub(super) struct Scratch {
    /// The stream so far.
    pub(super) enc: Vec<u8>,
    /// The members read so far of the maps being read, innermost last.
    pub(super) members: Vec<Member>,
    /// Where a map's members are put in order.
    pub(super) sorted: Vec<u8>,
}

/// One map member: `enc[start..end]` is `k`, the key's length, the key
/// (`key_len` bytes) and the value's encoding.
#[derive(Clone, Copy)]
pub(super) struct Member {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) key_len: usize,
}

impl Scratch {
    #[inline]
    pub(super) fn tagged(&mut self, tag: u8, v: [u8; 8]) {
        self.enc.push(tag);
        self.enc.extend_from_slice(&v);
    }

    #[inline]
    pub(super) fn string(&mut self, tag: u8, s: &str) {
        self.tagged(tag, (s.len() as u64).to_le_bytes());
        self.enc.extend_from_slice(s.as_bytes());
    }

    /// Puts the members from `members[base..]`, written from `enc[first..]`,
    /// in key order, keeping the last of equal keys.
    pub(super) fn sort_members(&mut self, first: usize, base: usize) {
        let Scratch {
            enc,
            members,
            sorted,
        } = self;
        let members = &mut members[base..];
        let key = |m: &Member| &enc[m.start + KEY_AT..m.start + KEY_AT + m.key_len];
        if !members.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
            members.sort_unstable_by(|a, b| key(a).cmp(key(b)).then(a.start.cmp(&b.start)));
            sorted.clear();
            for (i, m) in members.iter().enumerate() {
                if members.get(i + 1).is_none_or(|next| key(next) != key(m)) {
                    sorted.extend_from_slice(&enc[m.start..m.end]);
                }
            }
            enc.truncate(first);
            enc.extend_from_slice(sorted);
        }
        self.members.truncate(base);
    }

    /// Drops buffers a huge document left large.
    fn trim(&mut self) {
        if self.enc.capacity() > SCRATCH_KEPT || self.sorted.capacity() > SCRATCH_KEPT {
            *self = Scratch::default();
        }
    }
}

/// Appends the encoding of one value to `s.enc`; `node` as in [`walk`].
pub(super) struct Enc<'s, 'n> {
    pub(super) s: &'s mut Scratch,
    pub(super) node: Option<&'n Node>,
}

impl<'de> DeserializeSeed<'de> for Enc<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Enc<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.s.enc.push(b'n');
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.s.enc.push(if v { b't' } else { b'f' });
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.s.tagged(b'u', v.to_le_bytes());
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        // `Number::from(i64)` keeps a non-negative one as a u64 (serde_json's
        // parser sends those to `visit_u64`; this is for exactness only).
        match u64::try_from(v) {
            Ok(u) => self.visit_u64(u),
            Err(_) => {
                self.s.tagged(b'i', v.to_le_bytes());
                Ok(())
            }
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // `Value` holds a non-finite float as null.
        if v.is_finite() {
            self.s.tagged(b'd', v.to_bits().to_le_bytes());
        } else {
            self.s.enc.push(b'n');
        }
        Ok(())
    }

    // visit_borrowed_str and visit_string forward here.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.s.string(b's', v);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Enc { s, node } = self;
        s.enc.push(b'[');
        let mut i = 0;
        loop {
            let child = node.and_then(|n| n.index(i));
            let more = if child.is_some_and(|c| c.excluded) {
                seq.next_element_seed(Skip)?.is_some()
            } else {
                seq.next_element_seed(Enc {
                    s: &mut *s,
                    node: child,
                })?
                .is_some()
            };
            if !more {
                break;
            }
            i += 1;
        }
        s.enc.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Enc { s, node } = self;
        let open = s.enc.len();
        s.enc.push(b'{');
        let base = s.members.len();
        let mut first = true;
        while let Some(key) = map.next_key_seed(Key {
            s: &mut *s,
            node,
            first,
        })? {
            first = false;
            match key {
                KeyRead::Excluded => map.next_value_seed(Skip)?,
                KeyRead::Kept {
                    start,
                    key_len,
                    child,
                } => {
                    map.next_value_seed(Enc {
                        s: &mut *s,
                        node: child,
                    })?;
                    s.members.push(Member {
                        start,
                        end: s.enc.len(),
                        key_len,
                    });
                }
                KeyRead::RawValue => {
                    s.enc.truncate(open);
                    let inner = map.next_value_seed(RawValue(Enc { s, node }))?;
                    return inner.map_err(de::Error::custom);
                }
            }
        }
        s.sort_members(open + 1, base);
        s.enc.push(b'}');
        Ok(())
    }
}

/// What [`Key`] read.
pub(super) enum KeyRead<'n> {
    /// Leave the value out.
    Excluded,
    /// Written at `enc[start..]`, `key_len` bytes of key; `child` is the trie
    /// node of the value.
    Kept {
        start: usize,
        key_len: usize,
        child: Option<&'n Node>,
    },
    /// The first key is [`RAW_VALUE_TOKEN`].
    RawValue,
}

/// Reads a map key; writes `k` + key unless it is excluded.
pub(super) struct Key<'s, 'n> {
    pub(super) s: &'s mut Scratch,
    pub(super) node: Option<&'n Node>,
    pub(super) first: bool,
}

impl<'de, 'n> DeserializeSeed<'de> for Key<'_, 'n> {
    type Value = KeyRead<'n>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<KeyRead<'n>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'n> Visitor<'de> for Key<'_, 'n> {
    type Value = KeyRead<'n>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyRead<'n>, E> {
        if self.first && v == RAW_VALUE_TOKEN {
            return Ok(KeyRead::RawValue);
        }
        let child = self.node.and_then(|n| n.key(v));
        if child.is_some_and(|c| c.excluded) {
            return Ok(KeyRead::Excluded);
        }
        let start = self.s.enc.len();
        self.s.string(b'k', v);
        Ok(KeyRead::Kept {
            start,
            key_len: v.len(),
            child,
        })
    }
}

/// Reads the value of a [`RAW_VALUE_TOKEN`] key as `Value` does: a string,
/// parsed as a JSON document with `T`. The parse's error is the `Ok` value,
/// for the map to return (where `Value` makes it a custom error).
pub(super) struct RawValue<T>(T);

impl<'de, T> DeserializeSeed<'de> for RawValue<T>
where
    T: for<'a> DeserializeSeed<'a, Value = ()>,
{
    type Value = serde_json::Result<()>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T> Visitor<'de> for RawValue<T>
where
    T: for<'a> DeserializeSeed<'a, Value = ()>,
{
    type Value = serde_json::Result<()>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("raw value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let mut de = serde_json::Deserializer::from_str(v);
        Ok(self.0.deserialize(&mut de).and_then(|()| de.end()))
    }
}

/// Reads a value as `Value` would, keeping nothing.
pub(super) struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut first = true;
        while let Some(raw) = map.next_key_seed(SkipKey { first })? {
            first = false;
            if raw {
                let inner = map.next_value_seed(RawValue(Skip))?;
                return inner.map_err(de::Error::custom);
            }
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// Reads a map key for [`Skip`]: whether it is a first [`RAW_VALUE_TOKEN`].
pub(super) struct SkipKey {
    pub(super) first: bool,
}

impl<'de> DeserializeSeed<'de> for SkipKey {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for SkipKey {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(self.first && v == RAW_VALUE_TOKEN)
    }
}
