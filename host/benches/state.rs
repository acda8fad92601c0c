//! The state dir's write cost (issue 4), against baselines measured in the same run:
//!
//! A producer thread submits 5,000 events/s for a few seconds; each event is what
//! the pipeline would write for one notification: the object's record (the ~6.6 KB
//! fixture pod as the last emitted state) and an outbox entry (the same 6.6 KB as
//! payload) in one submission, and, once that is durable, the ack of the previous
//! event's outbox entry (its delivery done). 10k objects are stored before the run
//! and the events cycle over them, so records are replaced, as in a cluster.
//!
//! Reported: CPU time per event of the whole process (`/proc/self/stat`, user +
//! system: the writer thread, redb and the syncs), durable commits per second,
//! and time-to-durable (submit to ticket resolved) p50 / p99. Baselines: the JSON
//! parse of the same pod (CPU), and the floor: the same paced load written by hand
//! to a plain append-only file with one `write` + `fdatasync` per group of the same
//! linger. Then the same load unpaced, for the headroom.
//!
//! Run: `cargo bench -p herald --bench state`

mod common;

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{micros, per_event};
use herald::change::Gvk;
use herald::dedup::ObjectHash;
use herald::state::{ObjectRecord, Op, StateStore, StoreOptions, Ticket};
use herald_sim::fixtures;
use serde_json::{Value, json};

const RATE: u64 = 5_000;
const SECONDS: u64 = 6;
const OBJECTS: usize = 10_000;
const SINK: &str = "hook";

fn pod_bytes() -> Vec<u8> {
    let mut p = fixtures::pod("ns", "pod-00000", &[("app", "web")]);
    p["metadata"]["uid"] = json!("5f0c6e4e-2a4b-4f43-9d4e-000000000000");
    p["metadata"]["resourceVersion"] = json!("1");
    serde_json::to_vec(&p).expect("json")
}

fn record(i: usize, body: &[u8]) -> ObjectRecord {
    ObjectRecord {
        uid: format!("5f0c6e4e-2a4b-4f43-9d4e-{i:012}"),
        watch: "pods".into(),
        gvk: Gvk {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
        },
        namespace: Some("ns".into()),
        name: format!("pod-{i:05}"),
        hash: ObjectHash::from_u128(i as u128),
        object: body.to_vec(),
    }
}

/// User + system CPU time of this process.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .map(|x| x.parse().expect("ticks"))
        .collect();
    // USER_HZ is 100 on Linux.
    Duration::from_millis((f[0] + f[1]) * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sleeps until event `i` is due at `rate` per second (0: never sleeps).
fn pace(start: Instant, i: u64, rate: u64) {
    if let Some(offset) = (i * 1_000_000_000).checked_div(rate) {
        let due = start + Duration::from_nanos(offset);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

struct Figures {
    events: u64,
    elapsed: Duration,
    cpu: Duration,
    commits: u64,
    lat: Vec<Duration>,
}

impl Figures {
    fn cpu_per_event(&self) -> Duration {
        self.cpu / self.events as u32
    }
    fn commits_per_s(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64()
    }
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
    fn p(&self, q: f64) -> Duration {
        percentile(&self.lat, q)
    }
}

/// Runs `events` events through `submit` at `rate` per second (0: as fast as
/// the store takes them), timing each ticket.
fn drive(
    rate: u64,
    events: u64,
    mut submit: impl FnMut(u64) -> Ticket,
    mut ack: impl FnMut(u64),
    commits: impl Fn() -> u64,
) -> Figures {
    let (tx, rx) = mpsc::sync_channel::<(Instant, u64, Ticket)>(65_536);
    let waiter = std::thread::spawn(move || {
        let mut lat = Vec::new();
        let mut done = Vec::new();
        for (t, i, ticket) in rx {
            ticket.wait().expect("durable");
            lat.push(t.elapsed());
            done.push(i);
        }
        (lat, done)
    });
    let commits0 = commits();
    let cpu0 = cpu();
    let start = Instant::now();
    for i in 0..events {
        pace(start, i, rate);
        let t = Instant::now();
        tx.send((t, i, submit(i))).expect("waiter");
        if i > 0 {
            // The previous event's delivery is done: ack it (not awaited).
            ack(i - 1);
        }
    }
    drop(tx);
    let (mut lat, done) = waiter.join().expect("waiter");
    let elapsed = start.elapsed();
    let cpu = cpu() - cpu0;
    assert_eq!(done.len() as u64, events);
    lat.sort();
    Figures {
        events,
        elapsed,
        cpu,
        commits: commits() - commits0,
        lat,
    }
}

fn store_run(body: &[u8], options: StoreOptions, rate: u64, events: u64) -> (Figures, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open_with(dir.path(), options).expect("open");
    // 10k objects stored before the run.
    for chunk in (0..OBJECTS).collect::<Vec<_>>().chunks(1000) {
        let ops = chunk
            .iter()
            .map(|&i| Op::PutObject(record(i, body)))
            .collect();
        store.submit(ops).wait().expect("prefill");
    }
    let records: Vec<ObjectRecord> = (0..OBJECTS).map(|i| record(i, body)).collect();
    let f = drive(
        rate,
        events,
        |i| {
            store.submit(vec![
                Op::PutObject(records[i as usize % OBJECTS].clone()),
                Op::Enqueue {
                    sink: SINK.into(),
                    id: format!("e-{i}"),
                    payload: body.to_vec(),
                },
            ])
        },
        |i| {
            drop(store.ack(SINK, &format!("e-{i}")));
        },
        || store.stats().commits,
    );
    store.flush().expect("flush");
    assert!(store.len(SINK).expect("len") <= 1);
    let size = std::fs::metadata(store.path())
        .map(|m| m.len())
        .unwrap_or(0);
    (f, size)
}

/// The floor: the same bytes appended to a file, one `write` + `fdatasync` per
/// group of submissions that arrived within `linger`.
fn floor_run(body: &[u8], linger: Duration, rate: u64, events: u64) -> Figures {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = File::create(dir.path().join("log")).expect("file");
    let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, std::sync::mpsc::SyncSender<()>)>(16_384);
    let commits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = commits.clone();
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            let deadline = Instant::now() + linger;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(x) => group.push(x),
                    Err(_) => break,
                }
            }
            buf.clear();
            for (b, _) in &group {
                buf.extend_from_slice(b);
            }
            file.write_all(&buf).expect("write");
            file.sync_data().expect("fdatasync");
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for (_, done) in group {
                let _ = done.send(());
            }
        }
    });
    // A record, an outbox entry, and an ack, as bytes.
    let event: Vec<u8> = [body, body, b"ack e-0000000"].concat();
    let (ttx, trx) = mpsc::sync_channel::<(Instant, std::sync::mpsc::Receiver<()>)>(65_536);
    let waiter = std::thread::spawn(move || {
        let mut lat = Vec::new();
        for (t, rx) in trx {
            rx.recv().expect("synced");
            lat.push(t.elapsed());
        }
        lat
    });
    let c0 = commits.load(std::sync::atomic::Ordering::Relaxed);
    let cpu0 = cpu();
    let start = Instant::now();
    for i in 0..events {
        pace(start, i, rate);
        let t = Instant::now();
        let (dtx, drx) = mpsc::sync_channel(1);
        tx.send((event.clone(), dtx)).expect("writer");
        ttx.send((t, drx)).expect("waiter");
    }
    drop(tx);
    drop(ttx);
    let mut lat = waiter.join().expect("waiter");
    writer.join().expect("writer");
    let elapsed = start.elapsed();
    let cpu = cpu() - cpu0;
    lat.sort();
    Figures {
        events,
        elapsed,
        cpu,
        commits: commits.load(std::sync::atomic::Ordering::Relaxed) - c0,
        lat,
    }
}

/// Child: fills a store with `OBJECTS` records, then dies without closing it.
fn crash_child(dir: &str, quick_repair: bool) {
    let body = pod_bytes();
    let store = StateStore::open_with(
        dir,
        StoreOptions {
            quick_repair,
            ..StoreOptions::default()
        },
    )
    .expect("open");
    for chunk in (0..OBJECTS).collect::<Vec<_>>().chunks(100) {
        let ops = chunk
            .iter()
            .map(|&i| Op::PutObject(record(i, &body)))
            .collect();
        store.submit(ops).wait().expect("fill");
    }
    std::process::abort();
}

/// Time to reopen a store whose writer was killed, with and without quick repair.
fn reopen_after_crash(quick_repair: bool) -> (Duration, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--crash-child",
            &d,
            if quick_repair { "quick" } else { "full" },
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("child");
    assert!(!status.success(), "the child aborts");
    let size = std::fs::metadata(dir.path().join(herald::state::FILE_NAME))
        .map(|m| m.len())
        .unwrap_or(0);
    let t = Instant::now();
    let store = StateStore::open(dir.path()).expect("reopen");
    let took = t.elapsed();
    assert_eq!(store.object_count().expect("count"), OBJECTS as u64);
    (took, size)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--crash-child") {
        crash_child(&args[i + 1], args[i + 2] == "quick");
        return;
    }
    // Under `cargo test --benches` (no `--bench`), only check that it starts.
    if !args.iter().any(|a| a == "--bench") {
        println!("state bench: run with `cargo bench -p herald --bench state`");
        return;
    }
    let body = pod_bytes();
    let events = RATE * SECONDS;
    println!(
        "# state bench: {} byte pod, {RATE} events/s for {SECONDS} s, {OBJECTS} objects stored, temp dir {}",
        body.len(),
        std::env::temp_dir().display()
    );
    let parse = per_event(20_000, 1, || {
        black_box(serde_json::from_slice::<Value>(black_box(&body)).expect("json"));
    });

    let default = StoreOptions::default();
    let cases: Vec<(String, StoreOptions)> = vec![
        (
            format!("redb, linger {:?} (default)", default.linger),
            default.clone(),
        ),
        (
            format!("redb, linger {:?}, quick repair", default.linger),
            StoreOptions {
                quick_repair: true,
                ..default.clone()
            },
        ),
        (
            "redb, linger 0".into(),
            StoreOptions {
                linger: Duration::ZERO,
                ..default.clone()
            },
        ),
    ];

    println!();
    println!(
        "| {RATE} events/s (record + outbox entry + ack of ~{} B each) | CPU µs/event | vs parse | vs floor | commits/s | durable p50 ms | p99 ms | p99 vs floor |",
        body.len()
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let floor = floor_run(&body, default.linger, RATE, events);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let row = |name: &str, f: &Figures| {
        println!(
            "| {name} | {:.1} | {:.2}x | {:.2}x | {:.0} | {:.2} | {:.2} | {:.2}x |",
            micros(f.cpu_per_event()),
            micros(f.cpu_per_event()) / micros(parse),
            micros(f.cpu_per_event()) / micros(floor.cpu_per_event()),
            f.commits_per_s(),
            ms(f.p(0.5)),
            ms(f.p(0.99)),
            ms(f.p(0.99)) / ms(floor.p(0.99)),
        );
    };
    println!(
        "| baseline: `serde_json::from_slice` of the pod | {:.1} | 1.00x | – | – | – | – | – |",
        micros(parse)
    );
    row(
        &format!("floor: append + `fdatasync` per {:?} group", default.linger),
        &floor,
    );
    let mut sizes = Vec::new();
    for (name, options) in &cases {
        let (f, size) = store_run(&body, options.clone(), RATE, events);
        row(name, &f);
        sizes.push((name.clone(), size));
    }

    println!();
    println!("| unpaced (as fast as it goes) | events/s | vs floor | CPU µs/event | commits/s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let floor_max = floor_run(&body, default.linger, 0, events);
    println!(
        "| floor: append + `fdatasync` | {:.0} | 1.00x | {:.1} | {:.0} |",
        floor_max.events_per_s(),
        micros(floor_max.cpu_per_event()),
        floor_max.commits_per_s()
    );
    let (max, _) = store_run(&body, default.clone(), 0, events);
    println!(
        "| redb (default options) | {:.0} | {:.2}x | {:.1} | {:.0} |",
        max.events_per_s(),
        max.events_per_s() / floor_max.events_per_s(),
        micros(max.cpu_per_event()),
        max.commits_per_s()
    );
    println!();
    println!("| reopen after the writer was killed ({OBJECTS} objects) | file MiB | ms |");
    println!("| --- | ---: | ---: |");
    for quick in [true, false] {
        let (took, size) = reopen_after_crash(quick);
        println!(
            "| {} | {:.1} | {:.1} |",
            if quick {
                "quick repair"
            } else {
                "full repair (default)"
            },
            size as f64 / (1024.0 * 1024.0),
            ms(took)
        );
    }
    println!();
    for (name, size) in sizes {
        println!(
            "file after the run ({name}): {:.1} MiB",
            size as f64 / (1024.0 * 1024.0)
        );
    }
}
