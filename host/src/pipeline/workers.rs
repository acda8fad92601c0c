//! The chain workers: each watch whose chain has plugins gets a pool of
//! threads of its own, each with its own instances of the chain's plugins
//! (a wasmtime store belongs to one thread at a time). A change goes to the
//! worker its object's uid picks, so one object's changes run one after
//! another, in order; different objects run in parallel; and a plugin that
//! is slow or fails holds up only its own watch's workers.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::plugin::{Chain, EventData, Fate};
use crate::sync::send_or_wait;

use super::Outcome;

/// Hand-overs a worker may have queued before the intake waits for it: a
/// burst of this many changes (at least) on one watch does not hold up the
/// others.
const WORKER_QUEUE: usize = 1024;

/// One change for a worker: its outcome without the object, the object,
/// and its number in its stream.
pub(super) struct Pending {
    pub(super) seq: u64,
    pub(super) outcome: Outcome,
    pub(super) data: EventData,
}

/// A change that left its chain (or needed none), for the commit; `Err`
/// carries the stream of a change with nothing to hand on.
pub(super) struct Done {
    pub(super) seq: u64,
    pub(super) outcome: Result<Outcome, String>,
}

pub(super) enum Job {
    /// Changes in the order the intake took them (see [`Pool::stage`]).
    Run(Vec<Pending>),
    /// New chains (a reload): from the next change on.
    Swap(Chain),
}

/// Runs `p` through `chain`; with `trace`, keeps each plugin's step in the
/// outcome (for the decisions ring).
pub(super) fn run(chain: &mut Chain, p: Pending, trace: bool) -> Done {
    let Pending {
        seq,
        mut outcome,
        data,
    } = p;
    let out = if trace {
        let mut steps = Vec::with_capacity(1);
        let out = chain.run_traced(vec![data], Some(&mut steps)).pop();
        outcome.plugins = steps.pop().unwrap_or_default();
        out
    } else {
        chain.run(vec![data]).pop()
    };
    match out {
        Some(o) => {
            outcome.object = o.event.object;
            outcome.old = o.event.old;
            outcome.fate = o.fate;
            Done {
                seq,
                outcome: Ok(outcome),
            }
        }
        None => Done {
            seq,
            outcome: Err(outcome.stream),
        },
    }
}

/// A change that needs no chain.
pub(super) fn direct(p: Pending) -> Done {
    let Pending {
        seq,
        mut outcome,
        data,
    } = p;
    outcome.object = data.object;
    outcome.old = data.old;
    outcome.fate = Fate::Deliver { routes: vec![] };
    Done {
        seq,
        outcome: Ok(outcome),
    }
}

/// The workers of one watch.
pub(super) enum Pool {
    /// One thread per copy of the chain.
    Threads {
        queues: Vec<SyncSender<Job>>,
        threads: Vec<JoinHandle<()>>,
        /// Per worker, the changes staged for its next hand-over.
        staged: Vec<Vec<Pending>>,
    },
    /// Threads could not be started: the chain runs in the intake (correct,
    /// not isolated), each call off the runtime; with the steps traced or
    /// not.
    Inline(Box<Chain>, bool),
}

impl Pool {
    /// Starts one worker per chain of `chains` for `watch`; each sends what
    /// it finishes to `done`.
    pub(super) fn start(
        watch: &str,
        chains: Vec<Chain>,
        done: &tokio::sync::mpsc::UnboundedSender<Vec<Done>>,
        trace: bool,
    ) -> Pool {
        let mut queues = Vec::with_capacity(chains.len());
        let mut threads = Vec::with_capacity(chains.len());
        for i in 0..chains.len() {
            let (tx, rx) = sync_channel(WORKER_QUEUE);
            let done = done.clone();
            match std::thread::Builder::new()
                .name(format!("herald-chain-{i}"))
                .spawn(move || work(rx, done, trace))
            {
                Ok(t) => {
                    queues.push(tx);
                    threads.push(t);
                }
                Err(e) => {
                    tracing::error!(
                        watch,
                        "cannot start a chain worker thread; this watch's chain runs in the pipeline (not isolated): {e}"
                    );
                    drop(queues);
                    for t in threads {
                        let _ = t.join();
                    }
                    return match chains.into_iter().next() {
                        Some(c) => Pool::Inline(Box::new(c), trace),
                        None => Pool::Inline(Box::new(Chain::new(Vec::new())), trace),
                    };
                }
            }
        }
        // Each worker's first job is its chain.
        let staged = queues.iter().map(|_| Vec::new()).collect();
        let mut pool = Pool::Threads {
            queues,
            threads,
            staged,
        };
        pool.swap(chains);
        pool
    }

    /// How many workers.
    pub(super) fn len(&self) -> usize {
        match self {
            Pool::Threads { queues, .. } => queues.len(),
            Pool::Inline(..) => 1,
        }
    }

    /// Stages `p` for worker `i` (see [`shard`]); [`Pool::flush`] hands it
    /// over with the others staged. Without threads, runs it here and
    /// pushes the result onto `done`.
    pub(super) fn stage(&mut self, i: usize, p: Pending, done: &mut Vec<Done>) {
        match self {
            Pool::Threads { staged, .. } => {
                let n = staged.len();
                staged[i % n].push(p);
            }
            Pool::Inline(chain, trace) => {
                done.push(crate::sync::off_the_runtime(|| run(chain, p, *trace)))
            }
        }
    }

    /// Hands each worker what is staged for it: one wake-up per worker for
    /// every change of a read, not one per change. `Err` when a worker is gone.
    pub(super) fn flush(&mut self) -> Result<(), ()> {
        if let Pool::Threads { queues, staged, .. } = self {
            for (q, jobs) in queues.iter().zip(staged.iter_mut()) {
                if !jobs.is_empty() {
                    send_or_wait(q, Job::Run(std::mem::take(jobs))).map_err(drop)?;
                }
            }
        }
        Ok(())
    }

    /// Gives each worker its copy of new chains, after what it has queued
    /// (flushed first).
    pub(super) fn swap(&mut self, chains: Vec<Chain>) {
        let _ = self.flush();
        match self {
            Pool::Threads { queues, .. } => {
                for (q, c) in queues.iter().zip(chains) {
                    let _ = send_or_wait(q, Job::Swap(c));
                }
            }
            Pool::Inline(chain, _) => {
                if let Some(c) = chains.into_iter().next() {
                    **chain = c;
                }
            }
        }
    }

    /// Lets the workers finish what they have queued and end; their
    /// threads, to join.
    pub(super) fn retire(mut self) -> Vec<JoinHandle<()>> {
        let _ = self.flush();
        match self {
            Pool::Threads {
                queues, threads, ..
            } => {
                drop(queues);
                threads
            }
            Pool::Inline(..) => Vec::new(),
        }
    }
}

/// The worker a key's changes go to, of `n`.
pub(super) fn shard(key: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    // A fixed hasher: the same key always picks the same worker.
    let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
    (h % n as u64) as usize
}

/// Runs each change of a hand-over through the chain, one call per change
/// (a plugin's failure or deadline is its own change's), and hands the
/// results on together.
fn work(jobs: Receiver<Job>, done: tokio::sync::mpsc::UnboundedSender<Vec<Done>>, trace: bool) {
    let mut chain: Option<Chain> = None;
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Run(batch) => {
                let finished = batch
                    .into_iter()
                    .map(|p| match chain.as_mut() {
                        Some(c) => run(c, p, trace),
                        None => direct(p),
                    })
                    .collect();
                if done.send(finished).is_err() {
                    break;
                }
            }
            // The old chain's instances are dropped on the thread that ran them.
            Job::Swap(c) => chain = Some(c),
        }
    }
}
