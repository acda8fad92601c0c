//! Field selectors, as the API server takes them: `field=value`,
//! `field==value` and `field!=value` terms joined by commas. Which fields a
//! type supports is for the caller to say ([`FieldSelector::fields`]).

use crate::SelectorError;

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// The value it is compared with.
    pub value: String,
    /// `!=`.
    pub negate: bool,
}

/// A parsed field selector: every term must hold. The empty selector
/// matches everything.
///
/// ```
/// use herald_selectors::FieldSelector;
/// let s = FieldSelector::parse("metadata.namespace=web,metadata.name!=a").unwrap();
/// assert!(s.matches_by(|f| match f {
///     "metadata.namespace" => Some("web"),
///     "metadata.name" => Some("b"),
///     _ => None,
/// }));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

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

    /// The terms, in the order written.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// The fields the terms name, in the order written.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.field.as_str())
    }

    /// Whether every term holds, `field(path)` giving a field's value. A
    /// term on a field the lookup does not know (`None`) never holds.
    pub fn matches_by<'a>(&self, field: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.terms.iter().all(|t| match field(&t.field) {
            Some(actual) => (actual == t.value) != t.negate,
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_parse_and_match_through_the_lookup() {
        let s = FieldSelector::parse("metadata.namespace=web, metadata.name!=a").expect("parses");
        let obj = |ns: &'static str, name: &'static str| {
            move |f: &str| match f {
                "metadata.namespace" => Some(ns),
                "metadata.name" => Some(name),
                _ => None,
            }
        };
        assert!(s.matches_by(obj("web", "b")));
        assert!(!s.matches_by(obj("web", "a")));
        assert!(!s.matches_by(obj("db", "b")));
        assert_eq!(
            s.fields().collect::<Vec<_>>(),
            ["metadata.namespace", "metadata.name"]
        );
        let other = FieldSelector::parse("status.phase=Running").expect("parses");
        assert!(
            !other.matches_by(obj("web", "b")),
            "an unknown field never holds"
        );
        assert!(FieldSelector::parse("").expect("empty").is_empty());
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(FieldSelector::parse("bad field=x").is_err());
    }
}
