//! herald's own metrics read back from their OpenMetrics text, for the
//! status page: it shows exactly the numbers `/metrics` shows.

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric's name as exposed. Example: `herald_sink_delivered_total`
    pub name: String,
    /// Its labels, in order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// The line's `name{labels}`, as a key into `/metrics`.
    pub key: String,
}

impl Sample {
    /// The value of label `k`, or empty.
    pub fn label(&self, k: &str) -> &str {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The samples of an OpenMetrics text (comments and lines that do not
/// parse are skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(line)
        .collect()
}

fn line(l: &str) -> Option<Sample> {
    let (key, value) = l.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match key.split_once('{') {
        Some((n, rest)) => (n, labels(rest.strip_suffix('}')?)?),
        None => (key, vec![]),
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
        key: key.to_string(),
    })
}

/// `a="x",b="y"` with `\"`, `\\` and `\n` escapes.
fn labels(mut s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let (k, rest) = s.split_once("=\"")?;
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => v.push('\n'),
                    c => v.push(c),
                },
                (_, c) => v.push(c),
            }
        };
        out.push((k.trim_start_matches(',').to_string(), v));
        s = rest[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

/// The upper bound of the bucket holding the `q` quantile of a histogram's
/// cumulative `(le, count)` buckets (as Prometheus reads them), or `None`
/// with no observations.
pub fn quantile_bound(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.iter().map(|b| b.1).fold(0.0, f64::max);
    if total <= 0.0 {
        return None;
    }
    let mut sorted = buckets.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    sorted
        .into_iter()
        .find(|(_, count)| *count >= q * total)
        .map(|(le, _)| le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_a_quantile_read_back() {
        let text = "# HELP x y\nherald_sink_delivered_total{sink=\"a\\\"b\"} 3\nherald_up 1\n\
                    h_bucket{le=\"0.001\",plugin=\"p\"} 90\nh_bucket{le=\"0.01\",plugin=\"p\"} 99\n\
                    h_bucket{le=\"+Inf\",plugin=\"p\"} 100\n";
        let s = parse(text);
        assert_eq!(s[0].label("sink"), "a\"b");
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[1].name, "herald_up");
        let b: Vec<(f64, f64)> = s[2..]
            .iter()
            .map(|x| (x.label("le").parse().unwrap_or(f64::INFINITY), x.value))
            .collect();
        assert_eq!(quantile_bound(0.99, &b), Some(0.01));
        assert_eq!(quantile_bound(0.5, &b), Some(0.001));
        assert_eq!(quantile_bound(0.99, &[]), None);
    }
}
