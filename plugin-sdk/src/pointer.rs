//! RFC 6901 JSON pointer helpers.

/// Escapes one reference token: `~` becomes `~0`, `/` becomes `~1`.
///
/// ```
/// assert_eq!(herald_plugin_sdk::pointer::escape("app.kubernetes.io/name"), "app.kubernetes.io~1name");
/// ```
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Builds a pointer from tokens, escaping each.
///
/// ```
/// assert_eq!(herald_plugin_sdk::pointer::join(["metadata", "labels", "a/b"]), "/metadata/labels/a~1b");
/// ```
pub fn join<I, S>(tokens: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for t in tokens {
        out.push('/');
        out.push_str(&escape(t.as_ref()));
    }
    out
}
