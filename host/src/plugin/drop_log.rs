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
    /// Per (plugin, watch): when a line was last written, drops since.
    seen: HashMap<(String, String), (Instant, u64)>,
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
    pub(crate) fn dropped(
        &mut self,
        plugin: &str,
        watch: &str,
        object: &str,
        reason: &str,
    ) -> bool {
        let now = Instant::now();
        let entry = self
            .seen
            .entry((plugin.to_string(), watch.to_string()))
            .or_insert((now, u64::MAX));
        let first = entry.1 == u64::MAX;
        if !first && now.duration_since(entry.0) < self.every {
            entry.1 += 1;
            return false;
        }
        let since = if first { 0 } else { entry.1 };
        *entry = (now, 0);
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
        assert!(log.dropped("f", "w", "ns/a", "r"));
        assert!(!log.dropped("f", "w", "ns/b", "r"), "within the interval");
        assert!(!log.dropped("f", "w", "ns/c", "r"));
        assert!(log.dropped("g", "w", "ns/a", "r"), "another plugin");
        assert!(log.dropped("f", "v", "ns/a", "r"), "another watch");
        std::thread::sleep(Duration::from_millis(60));
        assert!(log.dropped("f", "w", "ns/d", "r"), "the next interval");
        assert_eq!(
            log.seen[&("f".into(), "w".into())].1,
            0,
            "the count was reported"
        );
    }
}
