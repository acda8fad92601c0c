//! A standby's memory stays bounded while the leader delivers (issue 13): the
//! outcomes of 100k changes of 6.6 KB pods pass a standing-by HA gate, as they
//! would on a replica that is not the leader. It keeps only the newest ones
//! within `replayBytes` (64 MiB), as compact JSON, and the process's memory
//! grows by no more than that plus allocator slack. When it then leads, it
//! replays what it kept, newest last.
//!
//! Its own test binary, so that nothing else runs in the process whose memory
//! it reads.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use herald::change::{ChangeType, Gvk};
use herald::ha::Gate;
use herald::pipeline::{Deliver, Outcome};
use herald::plugin::Fate;
use serde_json::{Value, json};

const CHANGES: usize = 100_000;
const BUDGET: usize = 64 << 20;
/// Allocator and bookkeeping slack on top of the budget.
const SLACK: u64 = 48 << 20;

/// Where a leading gate hands outcomes: counted, in order.
#[derive(Default, Clone)]
struct Counted(Arc<Mutex<Vec<u64>>>);

impl Deliver for Counted {
    fn deliver(&self, o: Outcome, _: Option<Arc<dyn std::any::Any + Send + Sync>>) -> usize {
        let rv = herald::change::resource_version(&o.object).unwrap_or_default();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(rv);
        1
    }

    fn record_only(&self, _: Vec<herald::state::Op>) {}
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

fn outcome(pod: &Value, i: usize) -> Outcome {
    let mut object = pod.clone();
    object["metadata"]["name"] = json!(format!("pod-{i:06}"));
    object["metadata"]["uid"] = json!(format!("uid-{i:06}"));
    object["metadata"]["resourceVersion"] = json!((i + 1).to_string());
    let old = object.clone();
    Outcome {
        change: ChangeType::Modified,
        gvk: Gvk {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
        },
        watch: "pods".into(),
        namespace: Some("shop".into()),
        name: format!("pod-{i:06}"),
        uid: format!("uid-{i:06}"),
        observed_at: std::time::SystemTime::now(),
        object: object.into(),
        old: Some(old.into()),
        fate: Fate::Deliver { routes: vec![] },
        record: vec![],
        stream: "pods".into(),
        plugins: Vec::new(),
    }
}

#[test]
fn a_standby_keeps_at_most_replay_bytes_of_what_the_leader_delivers() {
    let pod = herald_sim::fixtures::pod("shop", "pod", &[("app", "web")]);
    let leader = Arc::new(AtomicBool::new(false));
    let mut gate = Gate::new(
        leader.clone(),
        Default::default(),
        Default::default(),
        CHANGES,
        BUDGET,
    );
    let sinks = Counted::default();
    let before = rss_bytes();
    let mut peak = before;
    for i in 0..CHANGES {
        gate.pass(Some(outcome(&pod, i)), &sinks);
        if i % 1000 == 0 {
            peak = peak.max(rss_bytes());
        }
    }
    peak = peak.max(rss_bytes());
    let (kept, bytes) = gate.kept();
    assert!(bytes <= BUDGET, "{bytes} bytes kept");
    assert!(
        kept < CHANGES && kept > 1000,
        "the newest {kept} of {CHANGES} kept"
    );
    let grown = peak.saturating_sub(before);
    assert!(
        grown <= BUDGET as u64 + SLACK,
        "the standby grew by {} MiB keeping {kept} outcomes ({} MiB of them)",
        grown >> 20,
        bytes >> 20
    );
    // Leading now: what it kept is replayed, in order, ending with the newest.
    leader.store(true, Ordering::Release);
    gate.pass(None, &sinks);
    let got = sinks.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(got.len(), kept);
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(got.last().copied(), Some(CHANGES as u64));
    eprintln!(
        "standby: kept {kept} of {CHANGES} outcomes in {} MiB; RSS grew by {} MiB",
        bytes >> 20,
        grown >> 20
    );
}
