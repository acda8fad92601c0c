//! JSON text read 64 bytes at a time, as bit masks: which bytes are
//! brackets or whitespace outside strings (the method of simdjson's first
//! stage: quotes not escaped by an odd run of backslashes open and close
//! strings; a prefix XOR of them marks the bytes inside). Skipping a
//! container then counts brackets a block at a time instead of walking its
//! strings one by one, which is what the scans of [`raw`](super::raw) spend
//! most of their time on (an object's `managedFields`, `spec` and `status`
//! between the fields a plugin reads).
//!
//! [`string_stop`] finds where a string's plain text ends the same way, 16
//! bytes at a time: the dedup walk and the scans' string skips.
//!
//! On x86_64 each 16 bytes take one vector compare and one mask move per
//! class of byte (SSE2, which every x86_64 has); elsewhere a loop does the
//! same byte by byte. Tests hold the two to the same answers.

use super::raw::Malformed;

/// Bytes per block: one bit of a `u64` mask each.
const BLOCK: usize = 64;

/// Every odd bit.
const ODD_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;

/// One block's bytes of interest, outside strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Structure {
    /// `{` and `[`.
    open: u64,
    /// `}` and `]`.
    close: u64,
    /// Space, tab, line feed, carriage return (only when asked for).
    space: u64,
}

/// What a block leaves to the next: whether it ends inside a string, and
/// whether its last byte is a backslash that escapes the next block's first.
#[derive(Debug, Default, Clone, Copy)]
struct Scanner {
    /// All ones inside a string, else zero.
    in_string: u64,
    /// 1 when the next block's first byte is escaped.
    escaped_next: u64,
}

/// The raw compares of one block.
#[derive(Default)]
struct Raw {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
    space: u64,
}

/// One mask per class of byte; whitespace only when `SPACE`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn classify<const SPACE: bool>(block: &[u8; BLOCK]) -> Raw {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let mut raw = Raw::default();
    // SAFETY: SSE2 is part of every x86_64 target, and each load reads the
    // 16 bytes of a 16-byte chunk (an unaligned load).
    unsafe {
        let eq = |v: __m128i, c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
        let bits = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16);
        for (lane, bytes) in block.chunks_exact(16).enumerate() {
            let v = _mm_loadu_si128(bytes.as_ptr().cast());
            // `{` and `[` differ by 0x20 only, as do `}` and `]`.
            let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let at = 16 * lane;
            raw.quote |= bits(eq(v, b'"')) << at;
            raw.backslash |= bits(eq(v, b'\\')) << at;
            raw.open |= bits(eq(folded, b'{')) << at;
            raw.close |= bits(eq(folded, b'}')) << at;
            if SPACE {
                let space = _mm_or_si128(
                    _mm_or_si128(eq(v, b' '), eq(v, b'\t')),
                    _mm_or_si128(eq(v, b'\n'), eq(v, b'\r')),
                );
                raw.space |= bits(space) << at;
            }
        }
    }
    raw
}

/// One mask per class of byte; whitespace only when `SPACE`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn classify<const SPACE: bool>(block: &[u8; BLOCK]) -> Raw {
    classify_portable::<SPACE>(block)
}

/// [`classify`] without vector instructions: the code for other targets,
/// and what the vector code is tested against.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline]
fn classify_portable<const SPACE: bool>(block: &[u8; BLOCK]) -> Raw {
    let mut raw = Raw::default();
    // Four lanes of 16 bytes each, so that each lane's compares become one
    // vector compare and one mask move.
    for (lane, bytes) in block.chunks_exact(16).enumerate() {
        let (mut q, mut b, mut o, mut c, mut s) = (0u16, 0u16, 0u16, 0u16, 0u16);
        for (k, &byte) in bytes.iter().enumerate() {
            // `{` and `[` differ by 0x20 only, as do `}` and `]`.
            let folded = byte | 0x20;
            q |= u16::from(byte == b'"') << k;
            b |= u16::from(byte == b'\\') << k;
            o |= u16::from(folded == b'{') << k;
            c |= u16::from(folded == b'}') << k;
            if SPACE {
                s |= u16::from(matches!(byte, b' ' | b'\t' | b'\n' | b'\r')) << k;
            }
        }
        let at = 16 * lane;
        raw.quote |= u64::from(q) << at;
        raw.backslash |= u64::from(b) << at;
        raw.open |= u64::from(o) << at;
        raw.close |= u64::from(c) << at;
        raw.space |= u64::from(s) << at;
    }
    raw
}

/// Bit `i` of the result is the XOR of bits `0..=i` of `x`.
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

impl Scanner {
    /// The bytes escaped by a backslash (the byte after each backslash that
    /// is not itself escaped), carrying an escape across the block's end.
    #[inline]
    fn escaped(&mut self, backslash: u64) -> u64 {
        if backslash == 0 {
            return std::mem::take(&mut self.escaped_next);
        }
        // simdjson's escape scanner: a run of backslashes that starts on an
        // even bit and one that starts on an odd bit are told apart by a
        // subtraction whose borrow runs to the end of the run.
        let potential = backslash & !self.escaped_next;
        let maybe_escaped = potential << 1;
        let escape_and_terminal = (maybe_escaped | ODD_BITS).wrapping_sub(potential) ^ ODD_BITS;
        let escaped = escape_and_terminal ^ (backslash | self.escaped_next);
        let escape = escape_and_terminal & backslash;
        self.escaped_next = escape >> 63;
        escaped
    }

    /// The block's brackets (and whitespace when `SPACE`) outside strings.
    #[inline]
    fn block<const SPACE: bool>(&mut self, block: &[u8; BLOCK]) -> Structure {
        let raw = classify::<SPACE>(block);
        let escaped = self.escaped(raw.backslash);
        let quotes = raw.quote & !escaped;
        // Set from an opening quote up to (not including) its closing one.
        let inside = prefix_xor(quotes) ^ self.in_string;
        self.in_string = ((inside as i64) >> 63) as u64;
        Structure {
            open: raw.open & !inside,
            close: raw.close & !inside,
            space: raw.space & !inside,
        }
    }
}

/// The 64 bytes of `json` from `at`, padded with zero bytes past its end.
#[inline]
fn load(json: &[u8], at: usize) -> std::borrow::Cow<'_, [u8; BLOCK]> {
    match json.get(at..at + BLOCK) {
        Some(full) => std::borrow::Cow::Borrowed(full.try_into().expect("64 bytes")),
        None => {
            let mut padded = [0u8; BLOCK];
            let rest = json.get(at..).unwrap_or_default();
            padded[..rest.len()].copy_from_slice(rest);
            std::borrow::Cow::Owned(padded)
        }
    }
}

/// The end (one past the closing bracket) of the object or array whose
/// opening bracket is at `open`. Brackets of either kind count, as in
/// [`raw::skip_value`](super::raw::skip_value): the scans check the
/// structure they walk through, not what they skip.
///
/// # Errors
/// The text ends before the container does.
pub(super) fn skip_container(json: &[u8], open: usize) -> Result<usize, Malformed> {
    debug_assert!(matches!(json.get(open), Some(b'{' | b'[')));
    let mut scanner = Scanner::default();
    let mut depth = 0u32;
    let mut at = open;
    while at < json.len() {
        let s = scanner.block::<false>(&load(json, at));
        let closes = s.close.count_ones();
        if depth > closes {
            // The container cannot end in this block.
            depth = depth + s.open.count_ones() - closes;
        } else {
            let mut brackets = s.open | s.close;
            while brackets != 0 {
                let k = brackets.trailing_zeros();
                if s.open >> k & 1 == 1 {
                    depth += 1;
                } else {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(at + k as usize + 1);
                    }
                }
                brackets &= brackets - 1;
            }
        }
        at += BLOCK;
    }
    Err(Malformed { at: open })
}

/// Whether `json` has no whitespace outside its strings. Text that is not
/// JSON may give either answer.
pub(super) fn is_compact(json: &[u8]) -> bool {
    let mut scanner = Scanner::default();
    let mut at = 0;
    while at < json.len() {
        if scanner.block::<true>(&load(json, at)).space != 0 {
            return false;
        }
        at += BLOCK;
    }
    true
}

/// Where the first quote, backslash or control character (below 0x20) at
/// or after `from` is: what ends or interrupts a string's plain text.
/// Sixteen bytes at a time: most strings of an object (keys, names, paths)
/// are short, where a search tuned for long text spends more on its set-up
/// than on the bytes.
pub(crate) fn string_stop(json: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    #[cfg(target_arch = "x86_64")]
    while let Some(chunk) = json.get(at..at + 16) {
        let stops = stops16(chunk.try_into().expect("16 bytes"));
        if stops != 0 {
            return Some(at + stops.trailing_zeros() as usize);
        }
        at += 16;
    }
    let rest = json.get(at..)?;
    rest.iter().position(|&b| is_stop(b)).map(|k| at + k)
}

/// A byte [`string_stop`] stops at.
fn is_stop(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Bit `k` set where byte `k` of `chunk` is a [`string_stop`] stop.
#[cfg(target_arch = "x86_64")]
#[inline]
fn stops16(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 target; the load reads the 16
    // bytes of `chunk` (an unaligned load).
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Unsigned `v <= 0x1F`: the smaller of the two is `v` itself.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte by byte: the bytes outside strings (quotes aside) and whether
    /// each is escaped (follows a backslash that is not itself escaped).
    fn reference(json: &[u8]) -> (Vec<bool>, Vec<bool>) {
        let (mut outside, mut escaped) = (vec![false; json.len()], vec![false; json.len()]);
        let (mut in_string, mut escape) = (false, false);
        for (i, &b) in json.iter().enumerate() {
            escaped[i] = escape;
            let quote = b == b'"' && !escape;
            escape = !escape && b == b'\\';
            if quote {
                in_string = !in_string;
            } else {
                outside[i] = !in_string;
            }
        }
        (outside, escaped)
    }

    /// Random text of the bytes that matter, runs of backslashes included.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let alphabet = b"\\\\\\\"\"{}[]a :,\n\t\r";
                alphabet[(x % alphabet.len() as u64) as usize]
            })
            .collect()
    }

    #[test]
    fn the_vector_compares_agree_with_the_portable_ones() {
        for seed in 0..2_000 {
            let block: [u8; BLOCK] = noise(seed, BLOCK).try_into().unwrap();
            let (v, p) = (classify::<true>(&block), classify_portable::<true>(&block));
            let masks = |r: Raw| [r.quote, r.backslash, r.open, r.close, r.space];
            assert_eq!(masks(v), masks(p), "{block:?}");
            assert_eq!(classify::<false>(&block).space, 0);
        }
    }

    #[test]
    fn the_masks_agree_with_a_byte_by_byte_reading() {
        for seed in 0..2_000 {
            let json = noise(seed, 1 + (seed as usize % 300));
            let (outside, escaped_ref) = reference(&json);
            let mut scanner = Scanner::default();
            let mut at = 0;
            while at < json.len() {
                let block = load(&json, at);
                let mut copy = scanner;
                let escaped = copy.escaped(classify::<false>(&block).backslash);
                let s = scanner.block::<true>(&block);
                for k in 0..BLOCK.min(json.len() - at) {
                    let i = at + k;
                    let b = json[i];
                    assert_eq!(
                        escaped >> k & 1 == 1,
                        escaped_ref[i],
                        "escaped at {i} of {json:?}"
                    );
                    let out = outside[i];
                    let folded = b | 0x20;
                    assert_eq!(s.open >> k & 1 == 1, out && folded == b'{', "open at {i}");
                    assert_eq!(s.close >> k & 1 == 1, out && folded == b'}', "close at {i}");
                    assert_eq!(
                        s.space >> k & 1 == 1,
                        out && matches!(b, b' ' | b'\t' | b'\n' | b'\r'),
                        "space at {i}"
                    );
                }
                at += BLOCK;
            }
        }
    }

    /// The container's end, byte by byte.
    fn skip_reference(json: &[u8], open: usize) -> Option<usize> {
        let (outside, _) = reference(json);
        let mut depth = 0i64;
        for i in open..json.len() {
            if !outside[i] {
                continue;
            }
            match json[i] | 0x20 {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    #[test]
    fn a_container_ends_where_a_byte_by_byte_count_ends_it() {
        let mut ended = 0;
        for seed in 0..5_000 {
            let mut json = b"[".to_vec();
            json.extend(noise(seed, seed as usize % 400));
            let want = skip_reference(&json, 0);
            ended += usize::from(want.is_some());
            assert_eq!(skip_container(&json, 0).ok(), want, "{json:?}");
        }
        // Both outcomes were tried.
        assert!(ended > 500 && ended < 4_500, "{ended} of 5,000 ended");
    }

    #[test]
    fn real_documents_end_where_serde_json_ends_them() {
        let pod = serde_json::json!({
            "metadata": {"name": "p", "annotations": {"last": "{\"a\":\"b\\\\\",\"c\":[1]}"},
                         "managedFields": [{"fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]},
            "spec": {"containers": [{"name": "c", "args": ["}", "]", "\\", "\"{"]}]},
            "status": {"phase": "Running"}});
        let text = serde_json::to_vec(&pod).unwrap();
        for len in [0, 1, 63, 64, 65, 130] {
            let mut json = text.clone();
            json.extend(std::iter::repeat_n(b' ', len));
            json.extend(b",1]");
            assert_eq!(skip_container(&json, 0), Ok(text.len()));
            // From a member's value inside.
            let at = text.windows(9).position(|w| w == b"\"status\":").unwrap() + 9;
            assert_eq!(skip_container(&json, at), Ok(text.len() - 1));
        }
        assert_eq!(skip_container(b"{\"a\":\"}\"", 0), Err(Malformed { at: 0 }));
        // Cut anywhere, the document has no end: an error, never a panic.
        for cut in 1..text.len() {
            assert_eq!(
                skip_container(&text[..cut], 0),
                Err(Malformed { at: 0 }),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn compact_text_has_no_whitespace_outside_its_strings() {
        assert!(is_compact(br#"{"a b":"c\" d","e":[1,{"f":"\\"}]}"#));
        assert!(is_compact(b""));
        assert!(!is_compact(br#"{"a":1, "b":2}"#));
        let long = format!(r#"{{"a":"{}","b":[1,{{}}]}}"#, "x ".repeat(100));
        assert!(is_compact(long.as_bytes()));
        assert!(!is_compact(format!("{long}\n").as_bytes()));
        for seed in 0..2_000 {
            let json = noise(seed, 1 + seed as usize % 200);
            let (outside, _) = reference(&json);
            let want = !json
                .iter()
                .enumerate()
                .any(|(i, b)| outside[i] && matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
            assert_eq!(is_compact(&json), want, "{json:?}");
        }
    }

    #[test]
    fn a_string_stops_where_a_byte_by_byte_search_stops() {
        for seed in 0..3_000 {
            let mut text = noise(seed, seed as usize % 90);
            // Control characters and bytes above 0x7F too.
            for (i, b) in text.iter_mut().enumerate() {
                if *b == b'a' {
                    *b = [b'a', 0x01, 0x1F, 0x20, 0x7F, 0x80, 0xE9, 0xFF][(i + seed as usize) % 8];
                }
            }
            for from in 0..=text.len() + 1 {
                let want = text
                    .get(from..)
                    .and_then(|rest| rest.iter().position(|&b| is_stop(b)).map(|k| from + k));
                assert_eq!(string_stop(&text, from), want, "from {from} in {text:?}");
            }
        }
    }
}
