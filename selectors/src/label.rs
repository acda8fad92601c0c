//! Kubernetes label selectors, equality- and set-based: `a=b`, `a==b`,
//! `a!=b`, `a in (x,y)`, `a notin (x)`, `a` (exists), `!a` (does not
//! exist); a comma means AND. The empty selector matches everything. With
//! [`Syntax::ApiServer`], also the API server's `a>1` and `a<1` (integer
//! comparisons).
//!
//! Parsed once; matching asks for one label per requirement through a
//! lookup function, so a plugin reads labels with the cheap
//! `event.label(key)` and the host's cache reads its stored object, neither
//! parsing the object.

use std::collections::BTreeMap;
use std::fmt;

use crate::SelectorError;

/// Which operators a selector may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Syntax {
    /// `=`, `==`, `!=`, `in`, `notin`, existence: what plugins and
    /// `matchExpressions` take.
    #[default]
    SetBased,
    /// [`SetBased`](Syntax::SetBased) and the API server's `>` and `<`
    /// against an integer: what a `labelSelector` query parameter takes.
    ApiServer,
}

/// What a requirement asks of one label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `key=value` or `key==value`: present with this value.
    Equals(String),
    /// `key!=value`: absent, or present with another value.
    NotEquals(String),
    /// `key in (a,b)`: present with one of these values.
    In(Vec<String>),
    /// `key notin (a,b)`: absent, or present with none of these values.
    NotIn(Vec<String>),
    /// `key`: present.
    Exists,
    /// `!key`: absent.
    NotExists,
    /// `key>n` ([`Syntax::ApiServer`]): present with an integer above `n`.
    GreaterThan(i64),
    /// `key<n` ([`Syntax::ApiServer`]): present with an integer below `n`.
    LessThan(i64),
}

/// One comma-separated part of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key, e.g. `app.kubernetes.io/name`.
    pub key: String,
    /// What the label must satisfy.
    pub op: Op,
}

impl Requirement {
    /// Whether a label with value `value` (`None`: absent) satisfies this.
    pub fn matches(&self, value: Option<&str>) -> bool {
        match (&self.op, value) {
            (Op::Equals(want), Some(v)) => v == want,
            (Op::Equals(_), None) => false,
            (Op::NotEquals(want), v) => v != Some(want.as_str()),
            (Op::In(set), Some(v)) => set.iter().any(|s| s == v),
            (Op::In(_), None) => false,
            (Op::NotIn(set), v) => !v.is_some_and(|v| set.iter().any(|s| s == v)),
            (Op::Exists, v) => v.is_some(),
            (Op::NotExists, v) => v.is_none(),
            (Op::GreaterThan(n), v) => int(v).is_some_and(|v| v > *n),
            (Op::LessThan(n), v) => int(v).is_some_and(|v| v < *n),
        }
    }
}

fn int(v: Option<&str>) -> Option<i64> {
    v.and_then(|v| v.parse().ok())
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        match &self.op {
            Op::Equals(v) => write!(f, "{key}={v}"),
            Op::NotEquals(v) => write!(f, "{key}!={v}"),
            Op::In(set) => write!(f, "{key} in ({})", set.join(",")),
            Op::NotIn(set) => write!(f, "{key} notin ({})", set.join(",")),
            Op::Exists => write!(f, "{key}"),
            Op::NotExists => write!(f, "!{key}"),
            Op::GreaterThan(n) => write!(f, "{key}>{n}"),
            Op::LessThan(n) => write!(f, "{key}<{n}"),
        }
    }
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    text: String,
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses Kubernetes selector syntax ([`Syntax::SetBased`]).
    ///
    /// # Errors
    ///
    /// A message naming the selector and the problem, e.g.
    /// `label selector "a in (x": unbalanced parentheses`.
    ///
    /// ```
    /// use herald_selectors::label::Selector;
    /// let s = Selector::parse("tier=frontend, env in (prod,staging), !legacy").unwrap();
    /// let labels = |k: &str| match k {
    ///     "tier" => Some("frontend".to_string()),
    ///     "env" => Some("prod".to_string()),
    ///     _ => None,
    /// };
    /// assert!(s.matches(labels));
    /// assert!(Selector::parse("a in (x").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        Self::parse_with(text, Syntax::SetBased)
    }

    /// Parses selector syntax with the operators `syntax` allows.
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    ///
    /// ```
    /// use herald_selectors::{LabelSelector, Syntax};
    /// let s = LabelSelector::parse_with("replicas>2", Syntax::ApiServer).unwrap();
    /// assert!(s.matches(|_| Some("3")));
    /// assert!(LabelSelector::parse("replicas>2").is_err());
    /// ```
    pub fn parse_with(text: &str, syntax: Syntax) -> Result<Self, SelectorError> {
        let fail = |problem: String| SelectorError(format!("label selector \"{text}\": {problem}"));
        let mut requirements = Vec::new();
        if !text.trim().is_empty() {
            for part in split_top_level(text).map_err(fail)? {
                requirements.push(parse_requirement(part, syntax).map_err(fail)?);
            }
        }
        Ok(Selector {
            text: text.trim().to_string(),
            requirements,
        })
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the selector has no requirements (and matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The first requirement the labels fail; `None` when all hold.
    /// `label(key)` returns the value of label `key`, if present.
    pub fn first_mismatch<F, S>(&self, label: F) -> Option<&Requirement>
    where
        F: Fn(&str) -> Option<S>,
        S: AsRef<str>,
    {
        self.requirements
            .iter()
            .find(|r| !r.matches(label(&r.key).as_ref().map(AsRef::as_ref)))
    }

    /// Whether every requirement holds.
    pub fn matches<F, S>(&self, label: F) -> bool
    where
        F: Fn(&str) -> Option<S>,
        S: AsRef<str>,
    {
        self.first_mismatch(label).is_none()
    }
}

/// Whether a `matchLabels` map (as a Service's `spec.selector`) selects the
/// labels `label` looks up: every pair holds. An empty map selects nothing,
/// as for Services.
pub fn match_labels<'a>(
    selector: &BTreeMap<String, String>,
    label: impl Fn(&str) -> Option<&'a str>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| label(k) == Some(v.as_str()))
}

impl fmt::Display for Selector {
    /// The selector as the user wrote it (trimmed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits at commas outside parentheses; each part is trimmed.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced parentheses".into());
                }
            }
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    parts.push(text[start..].trim());
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty requirement (stray comma?)".into());
    }
    Ok(parts)
}

fn parse_requirement(part: &str, syntax: Syntax) -> Result<Requirement, String> {
    if let Some(rest) = part.strip_prefix('!') {
        let key = rest.trim();
        validate_key(key)?;
        return Ok(Requirement {
            key: key.to_string(),
            op: Op::NotExists,
        });
    }
    let end = part
        .find(|c: char| c.is_whitespace() || matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<'))
        .unwrap_or(part.len());
    let (key, rest) = (&part[..end], part[end..].trim_start());
    if key.is_empty() {
        return Err(format!("\"{part}\": missing label key"));
    }
    validate_key(key)?;
    let op = if rest.is_empty() {
        Op::Exists
    } else if let Some(v) = rest.strip_prefix("!=") {
        Op::NotEquals(value(key, v.trim())?)
    } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        Op::Equals(value(key, v.trim())?)
    } else if let Some(v) = keyword(rest, "notin") {
        Op::NotIn(set(key, v)?)
    } else if let Some(v) = keyword(rest, "in") {
        Op::In(set(key, v)?)
    } else if let (Syntax::ApiServer, Some(v)) = (syntax, rest.strip_prefix('>')) {
        Op::GreaterThan(integer(key, v.trim())?)
    } else if let (Syntax::ApiServer, Some(v)) = (syntax, rest.strip_prefix('<')) {
        Op::LessThan(integer(key, v.trim())?)
    } else {
        return Err(format!(
            "\"{part}\": expected =, ==, !=, in or notin after key {key}, found \"{rest}\""
        ));
    };
    Ok(Requirement {
        key: key.to_string(),
        op,
    })
}

/// `rest` without a leading `word` that is followed by a space or `(`.
fn keyword<'a>(rest: &'a str, word: &str) -> Option<&'a str> {
    let after = rest.strip_prefix(word)?;
    after
        .starts_with(|c: char| c.is_whitespace() || c == '(')
        .then(|| after.trim())
}

fn integer(key: &str, v: &str) -> Result<i64, String> {
    v.parse()
        .map_err(|_| format!("expected an integer after the operator for {key}, found \"{v}\""))
}

fn set(key: &str, text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("values for {key} must be in parentheses, e.g. (a,b)"))?;
    if inner.trim().is_empty() {
        return Err(format!("empty value set for {key}"));
    }
    inner.split(',').map(|v| value(key, v.trim())).collect()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A label value: empty, or at most 63 of `[A-Za-z0-9_.-]`, starting and
/// ending with a letter or digit.
fn value(key: &str, v: &str) -> Result<String, String> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.chars().all(is_name_char)
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "invalid value \"{v}\" for {key}: a label value is at most 63 letters, digits, \
             '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// A label key: `[prefix/]name`; the name as a value (but not empty), the
/// prefix a DNS subdomain.
fn validate_key(key: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid label key \"{key}\": {why}"));
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 {
            return bad("the prefix must be 1 to 253 characters");
        }
        if !p
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        {
            return bad("the prefix must be a DNS subdomain (lowercase letters, digits, '-', '.')");
        }
    }
    if name.is_empty() || name.len() > 63 {
        return bad("the name must be 1 to 63 characters");
    }
    if !name.chars().all(is_name_char)
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return bad(
            "the name must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone())
    }

    fn m(sel: &str, l: &[(&str, &str)]) -> bool {
        Selector::parse(sel).unwrap().matches(labels(l))
    }

    #[test]
    fn equality_based() {
        assert!(m("a=b", &[("a", "b")]));
        assert!(m("a==b", &[("a", "b")]));
        assert!(!m("a=b", &[("a", "c")]));
        assert!(!m("a=b", &[]));
        assert!(m("a!=b", &[("a", "c")]));
        assert!(m("a!=b", &[]));
        assert!(!m("a!=b", &[("a", "b")]));
        assert!(m("a=", &[("a", "")]));
        assert!(m(" a = b ", &[("a", "b")]));
    }

    #[test]
    fn set_based_and_existence() {
        assert!(m("env in (prod, staging)", &[("env", "staging")]));
        assert!(m("env in(prod)", &[("env", "prod")]));
        assert!(!m("env in (prod)", &[("env", "dev")]));
        assert!(!m("env in (prod)", &[]));
        assert!(m("env notin (prod)", &[("env", "dev")]));
        assert!(m("env notin (prod)", &[]));
        assert!(!m("env notin (prod,dev)", &[("env", "dev")]));
        assert!(m("app", &[("app", "x")]));
        assert!(!m("app", &[]));
        assert!(m("!app", &[]));
        assert!(!m("!app", &[("app", "x")]));
        assert!(m("", &[]));
        assert!(Selector::parse("  ").unwrap().is_empty());
    }

    #[test]
    fn comma_is_and_and_first_mismatch_is_named() {
        let s = Selector::parse("tier=frontend,env in (a,b),!legacy").unwrap();
        assert_eq!(s.requirements().len(), 3);
        let ok = labels(&[("tier", "frontend"), ("env", "b")]);
        assert!(s.matches(ok));
        let bad = labels(&[("tier", "frontend"), ("env", "b"), ("legacy", "1")]);
        assert_eq!(s.first_mismatch(bad).unwrap().to_string(), "!legacy");
        assert_eq!(s.to_string(), "tier=frontend,env in (a,b),!legacy");
    }

    #[test]
    fn prefixed_keys() {
        assert!(m(
            "app.kubernetes.io/name=web",
            &[("app.kubernetes.io/name", "web")]
        ));
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |s: &str| Selector::parse(s).err().unwrap().to_string();
        assert!(
            err("a in (x").contains("unbalanced parentheses"),
            "{}",
            err("a in (x")
        );
        assert!(err("a in x)").contains("unbalanced"));
        assert!(err("a=b,").contains("empty requirement"));
        assert!(err("a in ()").contains("empty value set for a"));
        assert!(err("a in x").contains("must be in parentheses"));
        assert!(err("a > 3").contains("expected =, ==, !=, in or notin"));
        assert!(err("a=b c").contains("invalid value \"b c\""));
        assert!(err("-a=b").contains("invalid label key \"-a\""));
        assert!(err("=b").contains("missing label key"));
        assert!(err("Foo/a=b").contains("DNS subdomain"));
        assert!(err("a=-b").starts_with("label selector \"a=-b\": invalid value"));
    }

    #[test]
    fn the_api_servers_integer_comparisons() {
        let api = |s: &str| Selector::parse_with(s, Syntax::ApiServer);
        let l = labels(&[("n", "5"), ("app", "web")]);
        assert!(api("n>4").unwrap().matches(&l));
        assert!(!api("n<5").unwrap().matches(&l));
        assert!(api("n < 6, app=web").unwrap().matches(&l));
        assert!(!api("app>1").unwrap().matches(&l), "not an integer");
        assert!(!api("missing<1").unwrap().matches(&l));
        assert_eq!(api("n>4").unwrap().requirements()[0].to_string(), "n>4");
        let e = api("n>x").unwrap_err().to_string();
        assert!(e.contains("expected an integer"), "{e}");
        assert!(Selector::parse("n>4").is_err(), "set-based syntax has no >");
    }

    #[test]
    fn match_labels_needs_every_pair_and_selects_nothing_when_empty() {
        let l: BTreeMap<String, String> = [("app", "web"), ("tier", "front")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let get = |k: &str| l.get(k).map(String::as_str);
        let sel = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(match_labels(&sel(&[("app", "web")]), get));
        assert!(!match_labels(&sel(&[("app", "web"), ("x", "y")]), get));
        assert!(!match_labels(&BTreeMap::new(), get));
    }
}
