//! Label and field selectors, parsed and matched the way the API server does.
//!
//! Label selectors take equality (`a=b`, `a==b`, `a!=b`), set (`a in (x,y)`,
//! `a notin (x)`), existence (`a`, `!a`) and numeric (`a>1`, `a<1`) requirements joined
//! by commas. Field selectors take `=`, `==` and `!=` on `metadata.name`,
//! `metadata.namespace` and a few fields each type declares.

use std::collections::BTreeMap;

/// A parse failure, worded for a 400 `BadRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LabelReq {
    key: String,
    op: LabelOp,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<LabelReq>,
}

impl LabelSelector {
    /// Parses `labelSelector` syntax.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in split_top_level(s)? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_label_term(term)?);
        }
        Ok(Self { reqs })
    }

    /// True if no requirement is set.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|r| {
            let v = labels.get(&r.key);
            match &r.op {
                LabelOp::Eq(want) => v == Some(want),
                LabelOp::NotEq(want) => v != Some(want),
                LabelOp::In(set) => v.is_some_and(|v| set.contains(v)),
                LabelOp::NotIn(set) => !v.is_some_and(|v| set.contains(v)),
                LabelOp::Exists => v.is_some(),
                LabelOp::NotExists => v.is_none(),
                LabelOp::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                LabelOp::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Result<Vec<&str>, SelectorError> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    SelectorError(format!(
                        "unable to parse requirement: unbalanced ')' in {s:?}"
                    ))
                })?;
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError(format!(
            "unable to parse requirement: missing ')' in {s:?}"
        )));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_label_term(term: &str) -> Result<LabelReq, SelectorError> {
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(LabelReq {
            key: key.to_string(),
            op: LabelOp::NotExists,
        });
    }
    if let Some(open) = term.find('(') {
        let close = term
            .rfind(')')
            .filter(|&c| c > open && term[c + 1..].trim().is_empty())
            .ok_or_else(|| SelectorError(format!("unable to parse requirement: {term:?}")))?;
        let head = term[..open].trim();
        let (key, notin) = if let Some(k) = head.strip_suffix("notin") {
            (k, true)
        } else if let Some(k) = head.strip_suffix("in") {
            (k, false)
        } else {
            return Err(SelectorError(format!(
                "unable to parse requirement: expected 'in' or 'notin' in {term:?}"
            )));
        };
        // `keyin (x)` is not `key in (x)`: the operator must be a separate word.
        if !key.ends_with(char::is_whitespace) {
            return Err(SelectorError(format!(
                "unable to parse requirement: {term:?}"
            )));
        }
        let key = key.trim();
        check_key(key)?;
        let values: Vec<String> = term[open + 1..close]
            .split(',')
            .map(|v| v.trim().to_string())
            .collect();
        for v in &values {
            check_value(v)?;
        }
        let op = if notin {
            LabelOp::NotIn(values)
        } else {
            LabelOp::In(values)
        };
        return Ok(LabelReq {
            key: key.to_string(),
            op,
        });
    }
    for (sym, make) in [
        ("!=", LabelOp::NotEq as fn(String) -> LabelOp),
        ("==", LabelOp::Eq),
        ("=", LabelOp::Eq),
    ] {
        if let Some((k, v)) = term.split_once(sym) {
            let (k, v) = (k.trim(), v.trim());
            check_key(k)?;
            check_value(v)?;
            return Ok(LabelReq {
                key: k.to_string(),
                op: make(v.to_string()),
            });
        }
    }
    for (sym, gt) in [(">", true), ("<", false)] {
        if let Some((k, v)) = term.split_once(sym) {
            let k = k.trim();
            check_key(k)?;
            let n: i64 = v.trim().parse().map_err(|_| {
                SelectorError(format!(
                    "unable to parse requirement: {v:?} is not an integer"
                ))
            })?;
            let op = if gt { LabelOp::Gt(n) } else { LabelOp::Lt(n) };
            return Ok(LabelReq {
                key: k.to_string(),
                op,
            });
        }
    }
    check_key(term)?;
    Ok(LabelReq {
        key: term.to_string(),
        op: LabelOp::Exists,
    })
}

fn check_key(key: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c))
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "unable to parse requirement: invalid label key {key:?}: name part must consist of \
             alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character"
        )))
    }
}

fn check_value(v: &str) -> Result<(), SelectorError> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "unable to parse requirement: invalid label value: {v:?}: a valid label must be an \
             empty string or consist of alphanumeric characters, '-', '_' or '.', and must start \
             and end with an alphanumeric character"
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReq {
    field: String,
    value: String,
    negate: bool,
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    reqs: Vec<FieldReq>,
}

impl FieldSelector {
    /// Parses `fieldSelector` syntax, accepting `metadata.name`, `metadata.namespace` and
    /// the fields in `extra`.
    pub fn parse(s: &str, extra: &[&str]) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in s.split(',') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (field, value, negate) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, false)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                )));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" && !extra.contains(&field)
            {
                return Err(SelectorError(format!("field label not supported: {field}")));
            }
            reqs.push(FieldReq {
                field: field.to_string(),
                value: v_unescape(value.trim()),
                negate,
            });
        }
        Ok(Self { reqs })
    }

    /// True if no requirement is set.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether the object satisfies every requirement; `get` returns a field's value
    /// (empty string when the object lacks it).
    pub fn matches<'a>(&self, get: impl Fn(&str) -> &'a str) -> bool {
        self.reqs
            .iter()
            .all(|r| (get(&r.field) == r.value) != r.negate)
    }

    /// The value of a `metadata.name=` requirement, if one pins the name.
    pub fn pinned_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|r| r.field == "metadata.name" && !r.negate)
            .map(|r| r.value.as_str())
    }
}

/// Undoes the `\,` `\=` `\\` escapes field selector values may use.
fn v_unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_operators() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (web, db)",
            "app notin (db)",
            "missing notin (db)",
            "app",
            "!missing",
            "app=web,tier=front",
            "n>4",
            "n<6",
            "example.com/x!=y",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).expect(s).matches(&l), "{s}");
        }
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "app notin (web,db)",
            "missing",
            "!app",
            "app=web,tier=back",
            "n>5",
            "missing in (x)",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).expect(s).matches(&l), "{s}");
        }
    }

    #[test]
    fn label_errors() {
        for s in [
            "app in (x",
            "a=b)",
            "=x",
            "app=-bad",
            "app in x",
            "bad key=x",
            "n>x",
        ] {
            assert!(LabelSelector::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn field_selectors() {
        let get = |f: &str| match f {
            "metadata.name" => "a",
            "metadata.namespace" => "ns",
            "status.phase" => "Running",
            _ => "",
        };
        let extra = ["status.phase"];
        for (s, want) in [
            ("metadata.name=a", true),
            ("metadata.name==a", true),
            ("metadata.name!=a", false),
            ("metadata.namespace=ns,metadata.name=a", true),
            ("metadata.namespace=other", false),
            ("status.phase=Running", true),
        ] {
            assert_eq!(
                FieldSelector::parse(s, &extra).expect(s).matches(get),
                want,
                "{s}"
            );
        }
        assert!(FieldSelector::parse("spec.foo=x", &extra).is_err());
        assert!(FieldSelector::parse("metadata.name", &extra).is_err());
        assert_eq!(
            FieldSelector::parse("metadata.name=a", &[])
                .expect("parse")
                .pinned_name(),
            Some("a")
        );
    }
}
