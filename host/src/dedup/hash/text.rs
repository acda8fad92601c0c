//! The v1 stream from JSON text the common way: a hand-written walk for
//! the documents the API server writes (strings, non-negative integers,
//! no floats), which gives up on anything else so that [`super::json`]'s
//! serde walk, the reference, answers instead.
//!
//! Giving up is always allowed and never changes a hash: the walk writes
//! exactly what `Enc` writes for what it accepts, and it accepts only text
//! serde_json reads without error. What it checks itself: the whole text is
//! UTF-8 (once, up front), the structure (the bytes between tokens are
//! whitespace, `,` and `:` where JSON puts them), no control character in
//! a string (a string with escapes is read by serde_json), literals
//! spelled out, and nesting well under serde_json's limit of 128.

use std::borrow::Cow;

use super::json::{KEY_AT, Member, RAW_VALUE_TOKEN, Scratch};
use super::trie::Node;
use crate::change::raw::string_stop;

/// Nesting beyond this is left to serde_json (which refuses beyond 128).
const MAX_DEPTH: usize = 100;

/// Digits of a u64 that always fit (`u64::MAX` has 20).
const SAFE_DIGITS: usize = 19;

/// Appends the encoding of the JSON document `json` to `s.enc`; `None`
/// when the text has anything the walk leaves to serde_json.
pub(super) fn encode(json: &[u8], root: &Node, s: &mut Scratch) -> Option<()> {
    let text = std::str::from_utf8(json).ok()?;
    let mut walk = Walk {
        text,
        i: 0,
        depth: 0,
    };
    walk.value(s, Some(root))?;
    walk.ws();
    (walk.i == text.len()).then_some(())
}

struct Walk<'a> {
    text: &'a str,
    i: usize,
    depth: usize,
}

impl<'a> Walk<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Skips whitespace and then `b`.
    fn expect(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.peek()? == b).then(|| self.i += 1)
    }

    fn value(&mut self, s: &mut Scratch, node: Option<&Node>) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' => self.object(s, node),
            b'[' => self.array(s, node),
            b'"' => {
                let v = self.string()?;
                s.string(b's', &v);
                Some(())
            }
            b't' => self.literal("true", b't', s),
            b'f' => self.literal("false", b'f', s),
            b'n' => self.literal("null", b'n', s),
            b'0'..=b'9' => self.integer(s),
            _ => None,
        }
    }

    fn literal(&mut self, word: &str, tag: u8, s: &mut Scratch) -> Option<()> {
        self.word(word)?;
        s.enc.push(tag);
        Some(())
    }

    /// `word` spelled out at the cursor.
    fn word(&mut self, word: &str) -> Option<()> {
        self.text[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    /// A non-negative integer of at most [`SAFE_DIGITS`] digits (no leading
    /// zero): `u` and its value, as serde_json's `visit_u64` gives it.
    fn integer(&mut self, s: &mut Scratch) -> Option<()> {
        let v = self.integer_value()?;
        s.tagged(b'u', v.to_le_bytes());
        Some(())
    }

    /// The integer [`Walk::integer`] reads.
    fn integer_value(&mut self) -> Option<u64> {
        let b = self.text.as_bytes();
        let start = self.i;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        let digits = end - start;
        // A fraction, an exponent, a leading zero or a long number: serde's.
        let plain = !matches!(b.get(end), Some(b'.' | b'e' | b'E'))
            && digits <= SAFE_DIGITS
            && (digits == 1 || b[start] != b'0');
        if !plain {
            return None;
        }
        let v: u64 = self.text[start..end].parse().ok()?;
        self.i = end;
        Some(v)
    }

    /// The string at the cursor, unquoted; `None` for a control character
    /// or a bad escape (serde's to refuse).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let b = self.text.as_bytes();
        let start = self.i + 1;
        let mut end = start;
        let mut escaped = false;
        loop {
            end = string_stop(b, end)?;
            match b[end] {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    end += 2;
                }
                // A control character (serde's to refuse). One right after
                // a backslash is passed over here and refused by serde,
                // which reads every string with an escape.
                _ => return None,
            }
        }
        self.i = end + 1;
        if escaped {
            // Both ends are ASCII quotes: char boundaries of the UTF-8 text.
            return serde_json::from_str::<String>(self.text.get(start - 1..=end)?)
                .ok()
                .map(Cow::Owned);
        }
        self.text.get(start..end).map(Cow::Borrowed)
    }

    fn array(&mut self, s: &mut Scratch, node: Option<&Node>) -> Option<()> {
        s.enc.push(b'[');
        self.items(|walk, n| walk.member_value(s, node.and_then(|p| p.index(n))))?;
        s.enc.push(b']');
        Some(())
    }

    fn object(&mut self, s: &mut Scratch, node: Option<&Node>) -> Option<()> {
        let open = s.enc.len();
        s.enc.push(b'{');
        let base = s.members.len();
        self.members(|walk, key| {
            let child = node.and_then(|p| p.key(&key));
            if child.is_some_and(|c| c.excluded) {
                return walk.skip();
            }
            let start = s.enc.len();
            s.string(b'k', &key);
            debug_assert_eq!(s.enc.len(), start + KEY_AT + key.len());
            walk.value(s, child)?;
            s.members.push(Member {
                start,
                end: s.enc.len(),
                key_len: key.len(),
            });
            Some(())
        })?;
        s.sort_members(open + 1, base);
        s.enc.push(b'}');
        Some(())
    }

    /// The array at the cursor: `each` reads item `n` (from its start, or
    /// the whitespace before it).
    fn items(&mut self, mut each: impl FnMut(&mut Self, usize) -> Option<()>) -> Option<()> {
        self.enter()?;
        self.i += 1;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            let mut n = 0;
            loop {
                each(self, n)?;
                n += 1;
                if self.closed(b']')? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// The object at the cursor: `each` reads the value of the member
    /// whose key it gets (unquoted).
    fn members(
        &mut self,
        mut each: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.enter()?;
        self.i += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            let mut first = true;
            loop {
                self.ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                // serde_json's raw-value map: serde's to read.
                if first && *key == *RAW_VALUE_TOKEN {
                    return None;
                }
                first = false;
                self.expect(b':')?;
                each(self, key)?;
                if self.closed(b'}')? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// A value that is excluded (`node` says so) is read and checked like
    /// any other, and nothing of it written, as `Skip` reads it in full.
    fn member_value(&mut self, s: &mut Scratch, node: Option<&Node>) -> Option<()> {
        if node.is_some_and(|n| n.excluded) {
            return self.skip();
        }
        self.value(s, node)
    }

    /// [`Walk::value`] without its encoding: the same text accepted, and
    /// the same given up on (`managedFields`, often a third of an object,
    /// is read this way: its strings are not copied nor its maps sorted).
    fn skip(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' => self.members(|walk, _| walk.skip()),
            b'[' => self.items(|walk, _| walk.skip()),
            b'"' => self.string().map(drop),
            b't' => self.word("true"),
            b'f' => self.word("false"),
            b'n' => self.word("null"),
            b'0'..=b'9' => self.integer_value().map(drop),
            _ => None,
        }
    }

    /// After a member or an item: `,` (more follow) or `close` (the end);
    /// `None` for anything else.
    fn closed(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let b = self.peek()?;
        self.i += 1;
        match b {
            b',' => Some(false),
            b if b == close => Some(true),
            _ => None,
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }
}
