//! The query of `GET /api/v1/decisions`: which decisions, how many.

use super::{Decision, fate};

/// Most decisions one answer holds.
pub const MAX_LIMIT: usize = 1000;
/// Decisions one answer holds unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;

/// What a query asks for; each field that is set must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
    /// The kind, any case. Example: `configmap`
    pub kind: Option<String>,
    /// `metadata.uid`.
    pub uid: Option<String>,
    /// One of [`fate::ALL`].
    pub fate: Option<&'static str>,
    /// A sink it went to, was left out of, or was dead-lettered to.
    pub sink: Option<String>,
    /// The watch id.
    pub watch: Option<String>,
    /// Only decisions after this id (a tail polls with the last id it has).
    pub after: u64,
    /// At most this many, newest first.
    pub limit: usize,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            namespace: None,
            name: None,
            kind: None,
            uid: None,
            fate: None,
            sink: None,
            watch: None,
            after: 0,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// The parameters a query takes.
const PARAMS: &str = "namespace, name, kind, uid, fate, sink, watch, after, limit";

impl Filter {
    /// The filter of a query string's pairs; a repeated parameter counts
    /// once, the last (as the authorization reads `namespace`). An empty
    /// value is no filter.
    ///
    /// # Errors
    /// `(parameter, what is wrong)`: an unknown parameter, a fate that is
    /// not one, a `limit` or `after` that is not a number in range.
    pub fn parse(pairs: &[(String, String)]) -> Result<Filter, (&'static str, String)> {
        let mut f = Filter::default();
        for (k, v) in pairs {
            let text = (!v.is_empty()).then(|| v.clone());
            match k.as_str() {
                "namespace" => f.namespace = text,
                "name" => f.name = text,
                "kind" => f.kind = text,
                "uid" => f.uid = text,
                "sink" => f.sink = text,
                "watch" => f.watch = text,
                "fate" => {
                    f.fate = match text {
                        None => None,
                        Some(t) => {
                            Some(fate::ALL.into_iter().find(|x| *x == t).ok_or_else(|| {
                                (
                                    "fate",
                                    format!("{t:?} is not a fate; one of {}", fate::ALL.join(", ")),
                                )
                            })?)
                        }
                    }
                }
                "limit" => {
                    f.limit = match v.parse::<usize>() {
                        Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                        _ => {
                            return Err((
                                "limit",
                                format!("{v:?} is not a whole number from 1 to {MAX_LIMIT}"),
                            ));
                        }
                    }
                }
                "after" => {
                    f.after = v.parse().map_err(|_| {
                        (
                            "after",
                            format!("{v:?} is not a decision id (a whole number)"),
                        )
                    })?
                }
                other => {
                    return Err((
                        "parameter",
                        format!("unknown parameter {other:?}; the parameters are {PARAMS}"),
                    ));
                }
            }
        }
        Ok(f)
    }

    /// Whether `d` is one asked for.
    pub fn matches(&self, d: &Decision) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        d.id > self.after
            && eq(&self.namespace, d.namespace.as_deref().unwrap_or_default())
            && eq(&self.name, &d.name)
            && eq(&self.uid, &d.uid)
            && eq(&self.watch, &d.watch)
            && self
                .kind
                .as_deref()
                .is_none_or(|k| k.eq_ignore_ascii_case(&d.kind))
            && self.fate.is_none_or(|f| f == d.fate)
            && self.sink.as_deref().is_none_or(|s| {
                d.sinks.iter().any(|x| x.sink == s)
                    || d.left_out.iter().any(|x| x.sink == s)
                    || d.routes.iter().any(|x| x == s)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).expect("query")
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = |q: &str| Filter::parse(&pairs(q)).expect_err(q);
        assert_eq!(err("fate=lost").0, "fate");
        assert!(err("fate=lost").1.contains("one of duplicate, dropped"));
        assert_eq!(err("limit=0").0, "limit");
        assert_eq!(err("limit=1001").0, "limit");
        assert_eq!(err("limit=ten").0, "limit");
        assert_eq!(err("after=-1").0, "after");
        let (what, why) = err("namespce=a");
        assert_eq!(what, "parameter");
        assert!(
            why.contains("\"namespce\"") && why.contains("namespace, name"),
            "{why}"
        );
        let f =
            Filter::parse(&pairs("namespace=a&namespace=b&fate=dropped&limit=5&kind=")).unwrap();
        assert_eq!(f.namespace.as_deref(), Some("b"), "the last, as authorised");
        assert_eq!((f.fate, f.limit, f.kind), (Some("dropped"), 5, None));
    }
}
