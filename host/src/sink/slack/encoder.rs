//! Block Kit messages for Slack: a header, the change's facts, and the diff
//! in code sections, within Slack's limits (50 blocks a message, 3,000
//! characters a section text, 150 a header).

use serde_json::{Value, json};

use crate::change::ChangeType;
use crate::sink::notification::Notification;

/// Most blocks in one message.
pub(crate) const MAX_BLOCKS: usize = 50;
/// Most characters in a section's text.
pub(crate) const MAX_SECTION: usize = 3000;
/// Most characters in a header's text.
pub(crate) const MAX_HEADER: usize = 150;
/// Most characters of one value shown in a diff line.
const MAX_VALUE: usize = 300;

/// Escapes the three characters Slack's mrkdwn treats as markup.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn show(v: &Value) -> String {
    cut(&v.to_string(), MAX_VALUE)
}

/// The diff as lines: `~ /path: old → new`, `+ /path: value`, `- /path`.
pub(crate) fn diff_lines(n: &Notification) -> Vec<String> {
    let Some(old) = &n.old else {
        return vec![];
    };
    if n.change != ChangeType::Modified {
        return vec![];
    }
    let patch = json_patch::diff(old, &n.object);
    let mut lines = Vec::new();
    for op in patch.iter() {
        use json_patch::PatchOperation::*;
        let line = match op {
            Add(o) => format!("+ {}: {}", o.path, show(&o.value)),
            Remove(o) => format!(
                "- {}: {}",
                o.path,
                old.pointer(o.path.as_str()).map(show).unwrap_or_default()
            ),
            Replace(o) => format!(
                "~ {}: {} → {}",
                o.path,
                old.pointer(o.path.as_str()).map(show).unwrap_or_default(),
                show(&o.value)
            ),
            Move(o) => format!("> {} ← {}", o.path, o.from),
            Copy(o) => format!("= {} ← {}", o.path, o.from),
            Test(_) => continue,
        };
        lines.push(line);
    }
    lines
}

fn title(n: &Notification) -> String {
    format!("{} {} {}", n.gvk.kind, n.subject(), n.change.as_str())
}

fn facts(n: &Notification) -> Value {
    let field = |k: &str, v: &str| json!({"type": "mrkdwn", "text": cut(&format!("*{k}*\n{}", escape(v)), 2000)});
    json!({
        "type": "section",
        "fields": [
            field("Cluster", &n.cluster),
            field("Change", n.change.as_str()),
            field("Kind", &format!("{} {}", n.api_version(), n.gvk.kind)),
            field("Object", &n.subject()),
        ]
    })
}

/// Code sections holding `lines`, each within [`MAX_SECTION`], at most
/// `budget` of them; the last says how many lines did not fit.
fn diff_sections(lines: &[String], budget: usize) -> Vec<Value> {
    const FENCE: usize = 8; // "```\n" + "\n```"
    let mut sections = Vec::new();
    let mut current = String::new();
    let mut shown = 0;
    for line in lines {
        let line = escape(line);
        let line = cut(&line, MAX_SECTION - FENCE - 60);
        if current.chars().count() + line.chars().count() + 1 > MAX_SECTION - FENCE - 60 {
            if sections.len() + 1 >= budget {
                break;
            }
            sections.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
        shown += 1;
    }
    if !current.is_empty() {
        sections.push(current);
    }
    let hidden = lines.len() - shown;
    let n = sections.len();
    sections
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut text = format!("```\n{body}\n```");
            if i + 1 == n && hidden > 0 {
                text.push_str(&format!("\n… {hidden} more changed fields not shown"));
            }
            json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        })
        .collect()
}

/// One message for one or more notifications (grouped within a window).
pub(crate) fn message(group: &[&Notification]) -> Value {
    let mut blocks: Vec<Value> = Vec::new();
    if let [n] = group {
        blocks.push(json!({"type": "header", "text": {"type": "plain_text", "text": cut(&title(n), MAX_HEADER)}}));
        blocks.push(facts(n));
        let lines = diff_lines(n);
        blocks.extend(diff_sections(&lines, MAX_BLOCKS - blocks.len()));
        let text = cut(&title(n), MAX_HEADER);
        return json!({"text": text, "blocks": blocks});
    }
    let cluster = group
        .first()
        .map(|n| n.cluster.to_string())
        .unwrap_or_default();
    blocks.push(json!({"type": "header", "text": {"type": "plain_text", "text": cut(&format!("{} changes in {cluster}", group.len()), MAX_HEADER)}}));
    // Two blocks a notification (a line and its diff) plus a divider.
    let mut shown = 0;
    for n in group {
        if blocks.len() + 3 > MAX_BLOCKS - 1 {
            break;
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*{}* `{} {}` *{}*", n.change.as_str(), escape(&n.api_version()), escape(&n.gvk.kind), escape(&n.subject())), MAX_SECTION)}}));
        let lines = diff_lines(n);
        blocks.extend(diff_sections(&lines, 1));
        blocks.push(json!({"type": "divider"}));
        shown += 1;
    }
    if shown < group.len() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("… and {} more changes", group.len() - shown)}]}));
    }
    json!({"text": format!("{} changes in {cluster}", group.len()), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::notification::sample;

    fn within_limits(m: &Value) {
        let blocks = m["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
        for b in blocks {
            if let Some(t) = b.pointer("/text/text").and_then(Value::as_str) {
                let max = if b["type"] == "header" {
                    MAX_HEADER
                } else {
                    MAX_SECTION
                };
                assert!(
                    t.chars().count() <= max,
                    "{} chars in a {}",
                    t.chars().count(),
                    b["type"]
                );
            }
        }
    }

    #[test]
    fn a_100kb_diff_stays_within_block_kit_limits() {
        let mut n = sample("u1", "2");
        let (mut old, mut new) = (serde_json::Map::new(), serde_json::Map::new());
        for i in 0..2000 {
            old.insert(format!("key-{i}"), json!("x".repeat(25)));
            new.insert(format!("key-{i}"), json!("y".repeat(25)));
        }
        n.old.as_mut().unwrap()["data"] = Value::Object(old);
        n.object["data"] = Value::Object(new);
        assert!(n.object.to_string().len() + n.patch().to_string().len() > 100_000);
        let m = message(&[&n]);
        within_limits(&m);
        let text = m.to_string();
        assert!(
            text.contains("more changed fields not shown"),
            "truncation is said"
        );
        assert!(text.contains("~ /data/key-0: "));
    }

    #[test]
    fn a_modification_shows_old_and_new_values_escaped() {
        let mut n = sample("u1", "2");
        n.object["spec"]["note"] = json!("a<b");
        let m = message(&[&n]);
        within_limits(&m);
        let t = m.to_string();
        assert!(t.contains("~ /spec/replicas: 2 → 3"), "{t}");
        assert!(t.contains("a&lt;b"), "{t}");
        assert_eq!(
            m["blocks"][0]["text"]["text"],
            "Deployment web/front modified"
        );
    }

    #[test]
    fn a_group_of_many_changes_stays_within_limits_and_counts_the_rest() {
        let ns: Vec<_> = (0..40).map(|i| sample(&format!("u{i}"), "2")).collect();
        let refs: Vec<&Notification> = ns.iter().collect();
        let m = message(&refs);
        within_limits(&m);
        assert!(m.to_string().contains("more changes"));
    }
}
