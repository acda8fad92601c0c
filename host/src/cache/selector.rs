//! Label and field selectors, parsed the way the API server parses them, and matched
//! against cached objects.

use std::collections::BTreeMap;

/// A selector that does not parse, worded for a 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
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
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector: equality (`a=b`, `a==b`, `a!=b`), set (`a in (x,y)`,
/// `a notin (x)`), existence (`a`, `!a`) and numeric (`a>1`, `a<1`) requirements
/// joined by commas. The empty selector matches everything.
///
/// ```
/// use std::collections::BTreeMap;
/// use herald::cache::LabelSelector;
/// let s = LabelSelector::parse("app=web,tier in (front,edge),!canary").unwrap();
/// let labels = BTreeMap::from([("app".into(), "web".into()), ("tier".into(), "edge".into())]);
/// assert!(s.matches(&labels));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses `labelSelector` syntax.
    ///
    /// # Errors
    /// [`SelectorError`] naming the term that does not parse.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in split_top_level(s)? {
            let term = term.trim();
            if !term.is_empty() {
                reqs.push(parse_label_term(term)?);
            }
        }
        Ok(Self { reqs })
    }

    /// Whether no requirement is set.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_by(|k| labels.get(k).map(String::as_str))
    }

    /// Whether the labels `label` looks up (key → value) satisfy every requirement.
    pub fn matches_by<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.reqs.iter().all(|r| {
            let v = label(&r.key);
            match &r.op {
                Op::Eq(want) => v == Some(want.as_str()),
                Op::NotEq(want) => v != Some(want.as_str()),
                Op::In(set) => v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::NotIn(set) => !v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }

    /// Whether every requirement of `selector` (a `matchLabels` map, as in a Service's
    /// `spec.selector`) holds. An empty map selects nothing, as for Services.
    pub fn map_selects(
        selector: &BTreeMap<String, String>,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        Self::map_selects_by(selector, |k| labels.get(k).map(String::as_str))
    }

    /// [`map_selects`](Self::map_selects) over the labels `label` looks up.
    pub fn map_selects_by<'a>(
        selector: &BTreeMap<String, String>,
        label: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        !selector.is_empty() && selector.iter().all(|(k, v)| label(k) == Some(v.as_str()))
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Result<Vec<&str>, SelectorError> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(SelectorError(format!("unbalanced ')' in {s:?}")));
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError(format!("unbalanced '(' in {s:?}")));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_label_term(term: &str) -> Result<Requirement, SelectorError> {
    if let Some(key) = term.strip_prefix('!') {
        let key = label_key(key.trim(), term)?;
        return Ok(Requirement {
            key,
            op: Op::NotExists,
        });
    }
    if let Some(open) = term.find('(') {
        let inner = term[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| SelectorError(format!("expected ')' at the end of {term:?}")))?;
        let head: Vec<&str> = term[..open].split_whitespace().collect();
        let [key, op] = head.as_slice() else {
            return Err(SelectorError(format!(
                "expected `key in (...)` or `key notin (...)` in {term:?}"
            )));
        };
        let values = inner
            .split(',')
            .map(|v| label_value(v.trim(), term))
            .collect::<Result<Vec<_>, _>>()?;
        let op = match *op {
            "in" => Op::In(values),
            "notin" => Op::NotIn(values),
            other => {
                return Err(SelectorError(format!(
                    "unknown operator {other:?} in {term:?}: expected in or notin"
                )));
            }
        };
        return Ok(Requirement {
            key: label_key(key, term)?,
            op,
        });
    }
    let (key, op) = if let Some((k, v)) = term.split_once("!=") {
        (k, Op::NotEq(label_value(v.trim(), term)?))
    } else if let Some((k, v)) = term.split_once("==") {
        (k, Op::Eq(label_value(v.trim(), term)?))
    } else if let Some((k, v)) = term.split_once('=') {
        (k, Op::Eq(label_value(v.trim(), term)?))
    } else if let Some((k, v)) = term.split_once('>') {
        (k, Op::Gt(number(v.trim(), term)?))
    } else if let Some((k, v)) = term.split_once('<') {
        (k, Op::Lt(number(v.trim(), term)?))
    } else {
        (term, Op::Exists)
    };
    Ok(Requirement {
        key: label_key(key.trim(), term)?,
        op,
    })
}

fn number(v: &str, term: &str) -> Result<i64, SelectorError> {
    v.parse().map_err(|_| {
        SelectorError(format!(
            "expected an integer after the operator in {term:?}"
        ))
    })
}

/// `[prefix/]name`: the prefix a DNS subdomain, the name at most 63 characters of
/// alphanumerics, `-`, `_` and `.`.
fn label_key(key: &str, term: &str) -> Result<String, SelectorError> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let ok_prefix = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    });
    if ok_prefix && is_label_name(name) && !name.is_empty() {
        Ok(key.to_string())
    } else {
        Err(SelectorError(format!(
            "invalid label key {key:?} in {term:?}"
        )))
    }
}

fn label_value(v: &str, term: &str) -> Result<String, SelectorError> {
    if is_label_name(v) {
        Ok(v.to_string())
    } else {
        Err(SelectorError(format!(
            "invalid label value {v:?} in {term:?}"
        )))
    }
}

/// Empty, or at most 63 of `[A-Za-z0-9-_.]` starting and ending alphanumeric.
fn is_label_name(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.len() <= 63
        && s.chars()
            .all(|c| alnum(c) || c == '-' || c == '_' || c == '.')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    negate: bool,
}

/// A parsed field selector: `field=value`, `field==value` and `field!=value` terms
/// joined by commas. The cache can answer `metadata.name` and `metadata.namespace`;
/// the API server decides which other fields a type supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// Fields [`FieldSelector::matches`] can evaluate.
pub(crate) const CACHE_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

impl FieldSelector {
    /// Parses `fieldSelector` syntax.
    ///
    /// # Errors
    /// [`SelectorError`] naming the term that does not parse.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
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
                    "invalid field selector term {term:?}: expected field=value or field!=value"
                )));
            };
            let field = field.trim();
            if field.is_empty()
                || !field
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
            {
                return Err(SelectorError(format!(
                    "invalid field {field:?} in field selector term {term:?}"
                )));
            }
            terms.push(FieldTerm {
                field: field.to_string(),
                value: value.trim().to_string(),
                negate,
            });
        }
        Ok(Self { terms })
    }

    /// Whether no term is set.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The first field the cache cannot evaluate, if any.
    pub fn unsupported_field(&self) -> Option<&str> {
        self.terms
            .iter()
            .map(|t| t.field.as_str())
            .find(|f| !CACHE_FIELDS.contains(f))
    }

    /// Whether an object with this namespace (`""` when cluster-scoped) and name
    /// satisfies every term. Terms on other fields never match.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        self.terms.iter().all(|t| {
            let actual = match t.field.as_str() {
                "metadata.name" => name,
                "metadata.namespace" => namespace,
                _ => return false,
            };
            (actual == t.value) != t.negate
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn equality_and_set_based_label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("tier in (front, edge)", true),
            ("tier in (edge)", false),
            ("tier notin (edge)", true),
            ("missing notin (x)", true),
            ("missing in (x)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("n>4", true),
            ("n<5", false),
            ("app=web,tier in (front),!canary", true),
            ("app=web,tier=back", false),
            ("example.com/team", false),
        ] {
            let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&l), want, "{sel}");
        }
    }

    #[test]
    fn bad_label_selectors_are_rejected() {
        for sel in [
            "app in (web",
            "app in web)",
            "app = (x)",
            "app foo (x)",
            "-bad=x",
            "app=not valid",
            "n>x",
            "UPPER.example.com/x=y",
        ] {
            assert!(LabelSelector::parse(sel).is_err(), "{sel}");
        }
    }

    #[test]
    fn field_selectors_on_name_and_namespace() {
        let s = FieldSelector::parse("metadata.namespace=web,metadata.name!=a").expect("parses");
        assert!(s.matches("web", "b"));
        assert!(!s.matches("web", "a"));
        assert!(!s.matches("db", "b"));
        assert_eq!(s.unsupported_field(), None);
        let s = FieldSelector::parse("status.phase=Running").expect("parses");
        assert_eq!(s.unsupported_field(), Some("status.phase"));
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(FieldSelector::parse("bad field=x").is_err());
    }

    #[test]
    fn map_selector_needs_every_pair_and_selects_nothing_when_empty() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(LabelSelector::map_selects(&labels(&[("app", "web")]), &l));
        assert!(!LabelSelector::map_selects(
            &labels(&[("app", "web"), ("x", "y")]),
            &l
        ));
        assert!(!LabelSelector::map_selects(&BTreeMap::new(), &l));
    }
}
