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

use super::Outcome;

/// Changes a worker may have queued before the intake waits for it: a burst
/// this big on one watch does not hold up the others.
const WORKER_QUEUE: usize = 1024;

/// One change for a worker: its outcome without the object, the object,
/// and its number in its stream.
pub(super) struct Pending {
    pub(super) seq: u64,
    pub(super) outcome: Outcome,
    pub(super) data: EventData,
}

/// A change that left its chain (or needed none), for the committer; `Err`
/// carries the stream of a change with nothing to hand on.
pub(super) struct Done {
    pub(super) seq: u64,
    pub(super) outcome: Result<Outcome, String>,
}

pub(super) enum Job {
    Run(Box<Pending>),
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
    },
    /// Threads could not be started: the chain runs on the intake thread
    /// (correct, not isolated); with the steps traced or not.
    Inline(Box<Chain>, bool),
}

impl Pool {
    /// Starts one worker per chain of `chains` for `watch`; each sends what
    /// it finishes to `done`.
    pub(super) fn start(
        watch: &str,
        chains: Vec<Chain>,
        done: &SyncSender<Done>,
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
                        "cannot start a chain worker thread; this watch's chain runs on the pipeline thread: {e}"
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
        let mut pool = Pool::Threads { queues, threads };
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

    /// Runs `p` on worker `i` (see [`shard`]), or here. `Err` when the
    /// committer is gone.
    pub(super) fn submit(
        &mut self,
        i: usize,
        p: Pending,
        done: &SyncSender<Done>,
    ) -> Result<(), ()> {
        match self {
            Pool::Threads { queues, .. } => {
                let q = &queues[i % queues.len()];
                q.send(Job::Run(Box::new(p))).map_err(drop)
            }
            Pool::Inline(chain, trace) => done.send(run(chain, p, *trace)).map_err(drop),
        }
    }

    /// Gives each worker its copy of new chains, after what it has queued.
    pub(super) fn swap(&mut self, chains: Vec<Chain>) {
        match self {
            Pool::Threads { queues, .. } => {
                for (q, c) in queues.iter().zip(chains) {
                    let _ = q.send(Job::Swap(c));
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
    pub(super) fn retire(self) -> Vec<JoinHandle<()>> {
        match self {
            Pool::Threads { queues, threads } => {
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

fn work(jobs: Receiver<Job>, done: SyncSender<Done>, trace: bool) {
    let mut chain: Option<Chain> = None;
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Run(p) => {
                let finished = match chain.as_mut() {
                    Some(c) => run(c, *p, trace),
                    None => direct(*p),
                };
                if done.send(finished).is_err() {
                    break;
                }
            }
            // The old chain's instances are dropped on the thread that ran them.
            Job::Swap(c) => chain = Some(c),
        }
    }
}
