//! [`StateStore`]: the redb file in the state dir, written by one
//! group-committing writer thread, read concurrently by anyone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::oneshot;

use super::op::{Op, StoreOptions, StoreStats, Ticket};
use super::record::ObjectRecord;
use super::writer::{Counters, Submission, Writer};
use super::{Error, Result};
use crate::dedup::ObjectHash;

/// The file inside the state dir.
pub const FILE_NAME: &str = "herald-state.redb";

/// (watch, uid) → [`ObjectRecord::encode`]: objects of one watch are one range.
pub(super) const OBJECTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("objects");
/// uid → hash (16 bytes) + watch: finds a uid's watch, and seeds dedup cheaply.
pub(super) const UIDS: TableDefinition<&str, &[u8]> = TableDefinition::new("uids");
/// (sink, sequence) → id length (u32 LE) + id + payload: the outbox, in order.
pub(super) const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
/// (sink, id) → sequence: finds an entry to acknowledge.
pub(super) const OUTBOX_IDS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("outbox_ids");
/// "next_seq" → the next outbox sequence number.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The durable state of a herald process: per uid the last emitted state
/// ([`ObjectRecord`]), per sink the outbox of notifications not yet
/// acknowledged. One file, `herald-state.redb`, in the state dir.
///
/// # Durability
///
/// Writes go through [`StateStore::submit`] (or the one-op helpers) to a
/// writer thread, which commits everything that arrived within
/// [`StoreOptions::linger`] as one redb transaction with
/// [`Durability::Immediate`](redb::Durability::Immediate) (fsync before the commit returns). When a
/// submission's [`Ticket`] resolves `Ok`, its writes are on disk: they
/// survive SIGKILL and, on a disk that honours fsync, power loss. Before
/// that they may or may not survive, but a submission is never torn (all of
/// it or none of it), and submissions are committed in the order they were
/// made: if one is durable, every earlier one is.
///
/// Reads see committed writes only; [`StateStore::flush`] first to read
/// your own writes.
///
/// # Recovery
///
/// Reopening after a crash rolls back to the last durable commit: redb
/// checks the commit's checksums and walks the file to rebuild its allocator
/// state (about 0.1 s per 10k stored pods), or, with
/// [`StoreOptions::quick_repair`], loads the state saved by the commit. The file is
/// locked: a second process opening the same state dir gets an error.
pub struct StateStore {
    db: Arc<Database>,
    tx: Option<SyncSender<Submission>>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    path: PathBuf,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StateStore {
    /// Opens (creating it if needed) the store in `dir` with default options.
    ///
    /// # Errors
    ///
    /// The directory cannot be created, or the file cannot be opened or
    /// repaired (see [`Error`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// [`StateStore::open`] with explicit options.
    ///
    /// # Errors
    ///
    /// As [`StateStore::open`].
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::builder()
            .set_cache_size(options.cache_size)
            .create(&path)
            .map_err(|source| Error::Open {
                path: path.clone(),
                source: Box::new(source),
            })?;
        // Create the tables, and read where the outbox sequence stands.
        let next_seq = {
            let txn = db.begin_write().map_err(storage)?;
            let next = {
                txn.open_table(OBJECTS).map_err(storage)?;
                txn.open_table(UIDS).map_err(storage)?;
                txn.open_table(OUTBOX).map_err(storage)?;
                txn.open_table(OUTBOX_IDS).map_err(storage)?;
                let meta = txn.open_table(META).map_err(storage)?;
                meta.get("next_seq")
                    .map_err(storage)?
                    .map_or(0, |v| v.value())
            };
            txn.commit().map_err(storage)?;
            next
        };
        let db = Arc::new(db);
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::sync_channel(options.queue.max(1));
        let writer = {
            let db = db.clone();
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("herald-state".into())
                .spawn(move || {
                    Writer {
                        db,
                        options,
                        counters,
                        next_seq,
                    }
                    .run(rx)
                })
                .map_err(|source| Error::Dir {
                    path: dir.to_path_buf(),
                    source,
                })?
        };
        Ok(StateStore {
            db,
            tx: Some(tx),
            writer: Some(writer),
            counters,
            path,
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `ops` as one transaction. Blocks only while
    /// [`StoreOptions::queue`] submissions are already waiting (on the async
    /// runtime, with its other tasks handed to another thread first).
    pub fn submit(&self, ops: Vec<Op>) -> Ticket {
        let (done, rx) = oneshot::channel();
        let sub = Submission { ops, done };
        if let Some(tx) = &self.tx {
            // Back-pressure; an error means the writer is gone, and the
            // dropped sender resolves the ticket with `Closed`.
            let _ = crate::sync::send_or_wait(tx, sub);
        }
        Ticket(rx)
    }

    /// [`StateStore::submit`] for async code: never blocks the calling
    /// thread. When the writer's queue is full, the submission waits for
    /// room on a blocking thread instead (so submissions made meanwhile may
    /// be committed before it).
    pub(crate) fn submit_nonblocking(self: &Arc<Self>, ops: Vec<Op>) -> Ticket {
        let (done, rx) = oneshot::channel();
        let sub = Submission { ops, done };
        let Some(tx) = &self.tx else {
            return Ticket(rx);
        };
        match tx.try_send(sub) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => Ticket(rx),
            Err(TrySendError::Full(sub)) => {
                let tx = tx.clone();
                // An error means the writer is gone, and the dropped sender
                // resolves the ticket with `Closed`.
                tokio::task::spawn_blocking(move || drop(tx.send(sub)));
                Ticket(rx)
            }
        }
    }

    /// Stores the record of an emitted change (tools and tests that prepare
    /// a state dir, e.g. for `herald explain --state-dir`).
    pub fn put_object(&self, record: ObjectRecord) -> Ticket {
        self.submit(vec![Op::PutObject(record)])
    }

    /// Forgets `uid`.
    #[cfg(test)]
    pub(crate) fn remove_object(&self, uid: &str) -> Ticket {
        self.submit(vec![Op::RemoveObject {
            uid: uid.to_string(),
        }])
    }

    /// Appends to `sink`'s outbox.
    #[cfg(test)]
    pub(crate) fn enqueue(&self, sink: &str, id: &str, payload: &[u8]) -> Ticket {
        self.submit(vec![Op::Enqueue {
            sink: sink.to_string(),
            id: id.to_string(),
            payload: payload.to_vec(),
        }])
    }

    /// Removes a delivered entry from `sink`'s outbox.
    pub fn ack(&self, sink: &str, id: &str) -> Ticket {
        self.submit(vec![Op::Ack {
            sink: sink.to_string(),
            id: id.to_string(),
        }])
    }

    /// Blocks until everything submitted before is durable.
    ///
    /// # Errors
    ///
    /// The commit failed or the store is closed.
    pub fn flush(&self) -> Result<()> {
        self.submit(Vec::new()).wait()
    }

    /// The record of `uid`.
    ///
    /// # Errors
    ///
    /// A storage error or an undecodable record.
    pub fn object(&self, uid: &str) -> Result<Option<ObjectRecord>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let uids = txn.open_table(UIDS).map_err(storage)?;
        let Some(entry) = uids.get(uid).map_err(storage)? else {
            return Ok(None);
        };
        let watch = uid_watch(uid, entry.value())?;
        let objects = txn.open_table(OBJECTS).map_err(storage)?;
        let Some(v) = objects.get((watch.as_str(), uid)).map_err(storage)? else {
            return Err(Error::Corrupt(format!("uid {uid:?} has no record")));
        };
        ObjectRecord::decode(&watch, uid, v.value()).map(Some)
    }

    /// The records of `watch`, by uid: what [`super::vanished`] compares a
    /// fresh list with. The iterator reads a snapshot taken now.
    ///
    /// # Errors
    ///
    /// A storage error; the iterator yields decode errors.
    pub fn objects(
        &self,
        watch: &str,
    ) -> Result<impl Iterator<Item = Result<ObjectRecord>> + use<>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(OBJECTS).map_err(storage)?;
        let range = table.range((watch, "")..).map_err(storage)?;
        let watch = watch.to_string();
        Ok(range
            .map_while(move |item| match item {
                Err(e) => Some(Err(storage(e))),
                Ok((k, v)) => {
                    let (w, uid) = k.value();
                    (w == watch).then(|| ObjectRecord::decode(w, uid, v.value()))
                }
            })
            .fuse())
    }

    /// Every stored uid with its hash: seeds [`crate::dedup::Dedup`] at start.
    ///
    /// # Errors
    ///
    /// A storage error; the iterator yields decode errors.
    pub fn hashes(&self) -> Result<impl Iterator<Item = Result<(String, ObjectHash)>> + use<>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(UIDS).map_err(storage)?;
        let range = table.range::<&str>(..).map_err(storage)?;
        Ok(range.map(|item| {
            let (k, v) = item.map_err(storage)?;
            let uid = k.value();
            let hash = v
                .value()
                .get(..16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .ok_or_else(|| Error::Corrupt(format!("hash of uid {uid:?}")))?;
            Ok((uid.to_string(), ObjectHash::from_bytes(hash)))
        }))
    }

    /// The outbox of `sink` in enqueue order: (id, payload).
    ///
    /// # Errors
    ///
    /// A storage error; the iterator yields decode errors.
    pub fn pending(
        &self,
        sink: &str,
    ) -> Result<impl Iterator<Item = Result<(String, Vec<u8>)>> + use<>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(OUTBOX).map_err(storage)?;
        let range = table.range((sink, 0)..=(sink, u64::MAX)).map_err(storage)?;
        Ok(range.map(|item| {
            let (_, v) = item.map_err(storage)?;
            decode_entry(v.value())
        }))
    }

    /// The resourceVersion up to which stream `key` was processed, if any
    /// (see [`Op::Checkpoint`]).
    ///
    /// # Errors
    ///
    /// The file cannot be read.
    pub fn checkpoint(&self, key: &str) -> Result<Option<u64>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        Ok(meta
            .get(format!("checkpoint/{key}").as_str())
            .map_err(storage)?
            .map(|v| v.value()))
    }

    /// Whether `watch` has completed a list with this state dir before (see
    /// [`Op::Listed`]), or recorded an object (a state dir written before that
    /// op existed).
    ///
    /// # Errors
    ///
    /// The file cannot be read.
    pub fn listed(&self, watch: &str) -> Result<bool> {
        {
            let txn = self.db.begin_read().map_err(storage)?;
            match txn.open_table(META) {
                Ok(meta) => {
                    if meta
                        .get(format!("listed/{watch}").as_str())
                        .map_err(storage)?
                        .is_some()
                    {
                        return Ok(true);
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(storage(e)),
            }
        }
        Ok(self.objects(watch)?.next().is_some())
    }

    /// How many entries `sink`'s outbox holds (counts them: O(n)).
    ///
    /// # Errors
    ///
    /// A storage error.
    pub fn len(&self, sink: &str) -> Result<u64> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(OUTBOX).map_err(storage)?;
        let range = table.range((sink, 0)..=(sink, u64::MAX)).map_err(storage)?;
        Ok(range.count() as u64)
    }

    /// Objects stored, over all watches.
    ///
    /// # Errors
    ///
    /// A storage error.
    pub fn object_count(&self) -> Result<u64> {
        let txn = self.db.begin_read().map_err(storage)?;
        txn.open_table(UIDS)
            .map_err(storage)?
            .len()
            .map_err(storage)
    }

    /// The writer's counters.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            ops: self.counters.ops.load(Ordering::Relaxed),
        }
    }
}

impl Drop for StateStore {
    /// Commits what is queued, then stops the writer.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

// === impl Writer ===

fn storage(e: impl Into<redb::Error>) -> Error {
    Error::Storage(Arc::new(e.into()))
}

fn uid_watch(uid: &str, v: &[u8]) -> Result<String> {
    v.get(16..)
        .and_then(|w| std::str::from_utf8(w).ok())
        .map(str::to_string)
        .ok_or_else(|| Error::Corrupt(format!("index entry of uid {uid:?}")))
}

fn decode_entry(v: &[u8]) -> Result<(String, Vec<u8>)> {
    let corrupt = || Error::Corrupt("outbox entry".into());
    let len = u32::from_le_bytes(
        v.get(..4)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?,
    ) as usize;
    let id = v.get(4..4 + len).ok_or_else(corrupt)?;
    let id = std::str::from_utf8(id).map_err(|_| corrupt())?.to_string();
    Ok((id, v[4 + len..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Gvk;

    pub(crate) fn rec(watch: &str, uid: &str, hash: u128, body: &str) -> ObjectRecord {
        ObjectRecord {
            uid: uid.into(),
            watch: watch.into(),
            gvk: Gvk {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
            },
            namespace: Some("ns".into()),
            name: format!("name-{uid}"),
            hash: ObjectHash::from_u128(hash),
            object: format!("{{\"b\":{body:?}}}").into_bytes(),
        }
    }

    fn pending(s: &StateStore, sink: &str) -> Vec<(String, Vec<u8>)> {
        s.pending(sink).unwrap().collect::<Result<_>>().unwrap()
    }

    #[test]
    fn objects_by_watch_and_uid() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        s.submit(vec![
            Op::PutObject(rec("w1", "b", 1, "x")),
            Op::PutObject(rec("w1", "a", 2, "y")),
            Op::PutObject(rec("w2", "c", 3, "z")),
            // "w1x" sorts right after "w1": not part of w1's range.
            Op::PutObject(rec("w1x", "d", 4, "z")),
        ])
        .wait()
        .unwrap();
        let w1: Vec<_> = s.objects("w1").unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(w1, [rec("w1", "a", 2, "y"), rec("w1", "b", 1, "x")]);
        assert_eq!(s.objects("w0").unwrap().count(), 0);
        assert_eq!(s.object("c").unwrap(), Some(rec("w2", "c", 3, "z")));
        assert_eq!(s.object_count().unwrap(), 4);

        // Replace, move to another watch, remove.
        s.put_object(rec("w1", "a", 5, "y2")).wait().unwrap();
        s.put_object(rec("w2", "b", 6, "x2")).wait().unwrap();
        s.remove_object("c").wait().unwrap();
        s.remove_object("never").wait().unwrap();
        let w1: Vec<_> = s.objects("w1").unwrap().map(|r| r.unwrap().uid).collect();
        let w2: Vec<_> = s.objects("w2").unwrap().map(|r| r.unwrap().uid).collect();
        assert_eq!((w1, w2), (vec!["a".to_string()], vec!["b".to_string()]));
        let mut hashes: Vec<_> = s.hashes().unwrap().map(|r| r.unwrap()).collect();
        hashes.sort();
        assert_eq!(
            hashes,
            [
                ("a".into(), ObjectHash::from_u128(5)),
                ("b".into(), ObjectHash::from_u128(6)),
                ("d".into(), ObjectHash::from_u128(4))
            ]
        );
    }

    #[test]
    fn outbox_order_ack_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = StateStore::open(dir.path()).unwrap();
            for i in [3, 1, 2] {
                drop(s.enqueue("hook", &format!("id-{i}"), format!("p{i}").as_bytes()));
            }
            drop(s.enqueue("slack", "id-1", b"other sink"));
            // The same id again keeps its place and payload.
            drop(s.enqueue("hook", "id-3", b"retry"));
            s.flush().unwrap();
            let ids: Vec<_> = pending(&s, "hook").into_iter().map(|e| e.0).collect();
            assert_eq!(ids, ["id-3", "id-1", "id-2"]);
            assert_eq!(pending(&s, "hook")[0].1, b"p3");
            s.ack("hook", "id-1").wait().unwrap();
            s.ack("hook", "unknown").wait().unwrap();
            assert_eq!(s.len("hook").unwrap(), 2);
            assert_eq!(s.len("slack").unwrap(), 1);
            assert_eq!(s.len("none").unwrap(), 0);
            assert!(s.stats().commits >= 1);
        }
        // Dropping the store committed everything; the sequence goes on after reopen.
        let s = StateStore::open(dir.path()).unwrap();
        drop(s.enqueue("hook", "id-4", b"p4"));
        s.flush().unwrap();
        let ids: Vec<_> = pending(&s, "hook").into_iter().map(|e| e.0).collect();
        assert_eq!(ids, ["id-3", "id-2", "id-4"]);
        // An acked id can be enqueued again (a new notification with that id).
        s.ack("hook", "id-3").wait().unwrap();
        drop(s.enqueue("hook", "id-3", b"again"));
        s.flush().unwrap();
        let ids: Vec<_> = pending(&s, "hook").into_iter().map(|e| e.0).collect();
        assert_eq!(ids, ["id-2", "id-4", "id-3"]);
    }

    #[test]
    fn concurrent_writers_are_group_committed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(StateStore::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        s.enqueue("q", &format!("{t}-{i:03}"), b"x").wait().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.len("q").unwrap(), 200);
        // Per thread, enqueue order is kept.
        let ids: Vec<_> = pending(&s, "q").into_iter().map(|e| e.0).collect();
        for t in 0..4 {
            let mine: Vec<_> = ids
                .iter()
                .filter(|i| i.starts_with(&format!("{t}-")))
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]));
        }
        let st = s.stats();
        assert_eq!(st.ops, 200);
        assert!(st.commits < 200, "{st:?}");
    }

    #[test]
    fn second_open_is_refused_and_async_tickets_work() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        let err = StateStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Open { .. }), "{err:?}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            s.put_object(rec("w", "u", 1, "x")).await.unwrap();
        });
        assert!(s.object("u").unwrap().is_some());
    }
}
