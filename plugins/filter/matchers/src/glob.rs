//! Shell-style name globs: `*` matches any run of characters (also none),
//! `?` exactly one; everything else matches itself. Used for namespaces.

use std::fmt;

/// One compiled glob, or an exact name when it has no `*` or `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
    text: String,
    exact: bool,
}

impl Glob {
    /// Compiles `pattern`; any text is a valid pattern.
    ///
    /// ```
    /// let g = filter_matchers::glob::Glob::new("team-*");
    /// assert!(g.matches("team-a"));
    /// assert!(!g.matches("ops"));
    /// ```
    pub fn new(pattern: &str) -> Self {
        Glob {
            pattern: pattern.chars().collect(),
            text: pattern.to_string(),
            exact: !pattern.contains(['*', '?']),
        }
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        if self.exact {
            return self.text == name;
        }
        let name: Vec<char> = name.chars().collect();
        // Iterative matcher with one backtrack point (the last `*`): linear
        // in practice, never exponential.
        let (p, n) = (&self.pattern, &name);
        let (mut pi, mut ni) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
                pi += 1;
                ni += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ni));
                pi += 1;
            } else if let Some((sp, sn)) = star {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|c| *c == '*')
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A list of globs; matches a name that any of them matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobSet {
    globs: Vec<Glob>,
}

impl GlobSet {
    /// Compiles every pattern.
    pub fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        GlobSet {
            globs: patterns
                .into_iter()
                .map(|p| Glob::new(p.as_ref()))
                .collect(),
        }
    }

    /// Whether the set has no patterns.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// Whether any pattern matches `name`.
    pub fn matches(&self, name: &str) -> bool {
        self.globs.iter().any(|g| g.matches(name))
    }
}

impl fmt::Display for GlobSet {
    /// `[a, b-*]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, g) in self.globs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(g.as_str())?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_star_and_question_mark() {
        assert!(Glob::new("kube-system").matches("kube-system"));
        assert!(!Glob::new("kube-system").matches("kube-system2"));
        assert!(Glob::new("kube-*").matches("kube-"));
        assert!(Glob::new("kube-*").matches("kube-public"));
        assert!(!Glob::new("kube-*").matches("kubex"));
        assert!(Glob::new("*-prod").matches("pay-prod"));
        assert!(!Glob::new("*-prod").matches("pay-prod-2"));
        assert!(Glob::new("team-?").matches("team-a"));
        assert!(!Glob::new("team-?").matches("team-"));
        assert!(!Glob::new("team-?").matches("team-ab"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a*b*c").matches("aXXbYYbc"));
        assert!(!Glob::new("a*b*c").matches("aXXbYYb"));
        assert!(Glob::new("**a").matches("a"));
    }

    #[test]
    fn set_matches_any_and_displays() {
        let s = GlobSet::new(["web", "pay-*"]);
        assert!(s.matches("web") && s.matches("pay-eu"));
        assert!(!s.matches("ops"));
        assert!(!GlobSet::default().matches("x"));
        assert_eq!(s.to_string(), "[web, pay-*]");
    }
}
