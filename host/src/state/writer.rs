//! The state's writer thread: takes submissions in order, commits each group
//! that arrived within the linger as one durable redb transaction, and
//! resolves their tickets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use redb::{Database, Durability, ReadableTable, WriteTransaction};
use tokio::sync::oneshot;

use super::op::{Op, StoreOptions};
use super::store::{META, OBJECTS, OUTBOX, OUTBOX_IDS, UIDS};
use super::{Error, Result};

pub(super) struct Submission {
    pub(super) ops: Vec<Op>,
    pub(super) done: oneshot::Sender<Result<()>>,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) commits: AtomicU64,
    pub(super) ops: AtomicU64,
}

pub(super) struct Writer {
    pub(super) db: Arc<Database>,
    pub(super) options: StoreOptions,
    pub(super) counters: Arc<Counters>,
    pub(super) next_seq: u64,
}

impl Writer {
    /// Until every sender is gone: take a group of submissions, commit it,
    /// resolve its tickets.
    pub(super) fn run(mut self, rx: Receiver<Submission>) {
        while let Ok(first) = rx.recv() {
            let mut ops = first.ops.len();
            let mut group = vec![first];
            let deadline = Instant::now() + self.options.linger;
            while ops < self.options.max_batch {
                let next = match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => rx.recv_timeout(left),
                    _ => rx.try_recv().map_err(|_| RecvTimeoutError::Timeout),
                };
                match next {
                    Ok(sub) => {
                        ops += sub.ops.len();
                        group.push(sub);
                    }
                    Err(_) => break,
                }
            }
            let seq_before = self.next_seq;
            let result = self.commit(&group);
            if let Err(e) = &result {
                // Nothing of the group was written.
                tracing::warn!(error = %e, submissions = group.len(), ops, "state commit failed");
                self.next_seq = seq_before;
            } else {
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters.ops.fetch_add(ops as u64, Ordering::Relaxed);
            }
            for sub in group {
                let _ = sub.done.send(result.clone().map_err(Error::Storage));
            }
        }
    }

    fn commit(&mut self, group: &[Submission]) -> Result<(), Arc<redb::Error>> {
        let wrap = |e: redb::Error| Arc::new(e);
        let mut txn = self.db.begin_write().map_err(|e| wrap(e.into()))?;
        // The commit returns once the file is synced (redb's default, said here).
        txn.set_durability(Durability::Immediate)
            .map_err(|e| wrap(e.into()))?;
        txn.set_quick_repair(self.options.quick_repair);
        self.apply(&txn, group).map_err(wrap)?;
        txn.commit().map_err(|e| wrap(e.into()))
    }

    fn apply(&mut self, txn: &WriteTransaction, group: &[Submission]) -> Result<(), redb::Error> {
        let mut objects = txn.open_table(OBJECTS)?;
        let mut uids = txn.open_table(UIDS)?;
        let mut outbox = txn.open_table(OUTBOX)?;
        let mut ids = txn.open_table(OUTBOX_IDS)?;
        let seq_before = self.next_seq;
        for op in group.iter().flat_map(|s| &s.ops) {
            match op {
                Op::PutObject(rec) => {
                    let old_watch = uids
                        .get(rec.uid.as_str())?
                        .and_then(|v| v.value().get(16..).map(|w| w.to_vec()));
                    if let Some(w) = old_watch.filter(|w| w != rec.watch.as_bytes()) {
                        let w = String::from_utf8_lossy(&w).into_owned();
                        objects.remove((w.as_str(), rec.uid.as_str()))?;
                    }
                    objects.insert(
                        (rec.watch.as_str(), rec.uid.as_str()),
                        rec.encode().as_slice(),
                    )?;
                    let mut v = Vec::with_capacity(16 + rec.watch.len());
                    v.extend_from_slice(&rec.hash.to_bytes());
                    v.extend_from_slice(rec.watch.as_bytes());
                    uids.insert(rec.uid.as_str(), v.as_slice())?;
                }
                Op::RemoveObject { uid } => {
                    let watch = uids
                        .remove(uid.as_str())?
                        .and_then(|v| v.value().get(16..).map(|w| w.to_vec()));
                    if let Some(w) = watch {
                        let w = String::from_utf8_lossy(&w).into_owned();
                        objects.remove((w.as_str(), uid.as_str()))?;
                    }
                }
                Op::Enqueue { sink, id, payload } => {
                    if ids.get((sink.as_str(), id.as_str()))?.is_some() {
                        continue;
                    }
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let mut v = Vec::with_capacity(4 + id.len() + payload.len());
                    v.extend_from_slice(&(id.len() as u32).to_le_bytes());
                    v.extend_from_slice(id.as_bytes());
                    v.extend_from_slice(payload);
                    outbox.insert((sink.as_str(), seq), v.as_slice())?;
                    ids.insert((sink.as_str(), id.as_str()), seq)?;
                }
                Op::Checkpoint { key, rv } => {
                    let mut meta = txn.open_table(META)?;
                    let k = format!("checkpoint/{key}");
                    let current = meta.get(k.as_str())?.map(|v| v.value()).unwrap_or(0);
                    if *rv > current {
                        meta.insert(k.as_str(), *rv)?;
                    }
                }
                Op::Listed { watch } => {
                    let mut meta = txn.open_table(META)?;
                    meta.insert(format!("listed/{watch}").as_str(), 1)?;
                }
                Op::Ack { sink, id } => {
                    let seq = ids.remove((sink.as_str(), id.as_str()))?.map(|v| v.value());
                    if let Some(seq) = seq {
                        outbox.remove((sink.as_str(), seq))?;
                    }
                }
            }
        }
        if self.next_seq != seq_before {
            txn.open_table(META)?.insert("next_seq", self.next_seq)?;
        }
        Ok(())
    }
}

// === helpers ===
