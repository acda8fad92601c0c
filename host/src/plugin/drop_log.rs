//! Drop reasons in herald's log at info, sampled: the first drop of each
//! plugin in each watch is logged at once, later ones at most once per
//! interval, each line saying how many drops it stands for. Every drop is
//! counted in `herald_plugin_drops_total{plugin,watch}` regardless.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The sampler; one per pipeline hand-over.
#[derive(Debug)]
pub(crate) struct DropLog {
    every: Duration,
    /// Per plugin, per watch: when a line was last written, drops since.
    /// Nested so that a drop looks its entry up by `&str`, allocating only
    /// the first time a plugin drops in a watch.
    seen: HashMap<String, HashMap<String, (Instant, u64)>>,
}

impl DropLog {
    /// At most one line per plugin and watch per `every`.
    pub(crate) fn new(every: Duration) -> Self {
        DropLog {
            every,
            seen: HashMap::new(),
        }
    }

    /// Plugin `plugin` of watch `watch` dropped `namespace/name` for
    /// `reason`; returns whether a line was written.
    /// `object` (`namespace/name`) is made only when a line is written.
    pub(crate) fn dropped(
        &mut self,
        plugin: &str,
        watch: &str,
        object: impl FnOnce() -> String,
        reason: &str,
    ) -> bool {
        let now = Instant::now();
        if !self.seen.get(plugin).is_some_and(|w| w.contains_key(watch)) {
            self.seen
                .entry(plugin.to_string())
                .or_default()
                .insert(watch.to_string(), (now, u64::MAX));
        }
        let Some(entry) = self.seen.get_mut(plugin).and_then(|w| w.get_mut(watch)) else {
            unreachable!("inserted above")
        };
        let first = entry.1 == u64::MAX;
        if !first && now.duration_since(entry.0) < self.every {
            entry.1 += 1;
            return false;
        }
        let since = if first { 0 } else { entry.1 };
        *entry = (now, 0);
        let object = object();
        let object = object.as_str();
        if since == 0 {
            tracing::info!(plugin, watch, object, reason, "dropped by plugin");
        } else {
            tracing::info!(
                plugin,
                watch,
                object,
                reason,
                "dropped by plugin ({since} more dropped by it since the last such line; herald_plugin_drops_total counts each)"
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_drop_is_logged_then_one_line_per_interval() {
        let mut log = DropLog::new(Duration::from_millis(50));
        assert!(log.dropped("f", "w", || "ns/a".into(), "r"));
        assert!(
            !log.dropped("f", "w", || "ns/b".into(), "r"),
            "within the interval"
        );
        assert!(!log.dropped("f", "w", || "ns/c".into(), "r"));
        assert!(
            log.dropped("g", "w", || "ns/a".into(), "r"),
            "another plugin"
        );
        assert!(
            log.dropped("f", "v", || "ns/a".into(), "r"),
            "another watch"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            log.dropped("f", "w", || "ns/d".into(), "r"),
            "the next interval"
        );
        assert_eq!(log.seen["f"]["w"].1, 0, "the count was reported");
    }
}
