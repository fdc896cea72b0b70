//! The audit writer for SQLite: a thread of its own that owns one connection to the database
//! file, with its INSERT statements prepared once.
//!
//! Requests hand their entries to the thread through a bounded channel and wait for their batch;
//! the thread takes whatever queued while its last commit ran, chains it, and commits it in one
//! transaction (WAL, `synchronous = FULL`: durable before anyone is answered). Compared with the
//! writer task on the shared pool, a batch costs no trips between the async runtime, the pool and
//! the driver's worker thread, and no SQL is built or parsed per batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::AuditError;
use super::checkpoint::{Checkpoint, CheckpointKind};
use super::record::{AuditEntry, AuditRecord, GENESIS_HASH};
use super::vouching::Vouching;
use super::wal_backfill::Backfill;
use super::wal_vfs;
use super::writer::{Counters, INSERT_CHECKPOINT, Pending};
use crate::store::WriteTurn;

const INSERT_RECORD: &str = "INSERT INTO audit_records (transaction_id, chain_id, seq, time_us, \
    party_id, product, action, purpose, decision, reasons, policy_id, policy_version, status, \
    method, path, trace_id, span_id, prev_hash, hash) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

// Nearly every message is a record: boxing it would add an allocation per request to save
// space only on the rare `Stop`.
#[allow(clippy::large_enum_variant)]
pub(super) enum Msg {
    Record(Pending),
    Stop,
}

/// Everything the thread needs; `run` consumes it.
pub(super) struct SqliteWriter {
    pub(super) max_batch: usize,
    pub(super) vouching: Vouching,
    pub(super) counters: Arc<Counters>,
    /// Entries in the channel, for the queue-depth metric.
    pub(super) depth: Arc<AtomicU64>,
    /// Taken for each batch, so that the pool's writers get their turn between batches.
    pub(super) turn: WriteTurn,
}

/// Opens the writer's connection with the pool's settings: WAL, every commit synced, the same
/// wait for a lock, foreign keys enforced.
///
/// Its WAL writes go through [`super::wal_vfs`] (one write per commit instead of two per page),
/// which relies on `synchronous = FULL`: that is checked, not assumed.
pub(super) fn open(path: &std::path::Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if wal_vfs::register() {
        Connection::open_with_flags_and_vfs(path, flags, wal_vfs::NAME)?
    } else {
        Connection::open_with_flags(path, flags)?
    };
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "full")?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    if synchronous != 2 {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
            Some(format!(
                "the audit writer needs synchronous = FULL (2), the connection says {synchronous}"
            )),
        ));
    }
    Ok(conn)
}

struct State {
    cfg: SqliteWriter,
    /// Declared before `backfill`, so dropped first: its WAL hook points into `backfill`.
    conn: Connection,
    /// Backfills the WAL on another thread; `None` leaves it to SQLite's automatic checkpoint.
    backfill: Option<Backfill>,
    /// Sequence number and hash of the last committed record; `None` after a failed batch,
    /// until it is read back.
    head: Option<(i64, String)>,
}

impl SqliteWriter {
    /// Runs on the calling thread until `Msg::Stop` (or every sender is gone), then closes the
    /// chain with a shutdown checkpoint.
    pub(super) fn run(self, conn: Connection, path: &std::path::Path, rx: Receiver<Msg>) {
        let backfill = match Backfill::start(&conn, path) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(error = %e, "audit WAL backfilled inside commits");
                None
            }
        };
        let mut w = State {
            conn,
            backfill,
            head: Some((0, GENESIS_HASH.to_string())),
            cfg: self,
        };
        let turn = w.cfg.turn.clone();
        let mut entries: Vec<AuditEntry> = Vec::with_capacity(w.cfg.max_batch);
        let mut waiting: Vec<oneshot::Sender<Result<(), AuditError>>> =
            Vec::with_capacity(w.cfg.max_batch);
        let mut stopping = false;
        while !stopping {
            // An idle writer still vouches for its tail once the interval has passed.
            let timeout = w
                .cfg
                .vouching
                .idle_deadline()
                .map_or(Duration::from_secs(3600), |d| {
                    d.saturating_duration_since(Instant::now())
                });
            let first = match rx.recv_timeout(timeout) {
                Ok(Msg::Record(p)) => p,
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    if w.cfg.vouching.idle_deadline().is_some() {
                        let _turn = turn.take_blocking();
                        w.checkpoint_alone(CheckpointKind::Interval);
                    }
                    continue;
                }
            };
            // Taken before the batch is gathered: what queues while a pool writer has its turn
            // joins this batch.
            let _turn = turn.take_blocking();
            entries.push(first.entry);
            waiting.push(first.done);
            while entries.len() < w.cfg.max_batch {
                match rx.try_recv() {
                    Ok(Msg::Record(p)) => {
                        entries.push(p.entry);
                        waiting.push(p.done);
                    }
                    Ok(Msg::Stop) => {
                        stopping = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            w.cfg
                .depth
                .fetch_sub(waiting.len() as u64, Ordering::Relaxed);
            let n = entries.len();
            let result = w.commit(&mut entries);
            match &result {
                Ok(()) => w.cfg.counters.committed(n),
                Err(e) => {
                    w.cfg.counters.failed(n);
                    tracing::error!(error = %e, records = n, "audit batch not committed");
                }
            }
            for done in waiting.drain(..) {
                let _ = done.send(result.clone());
            }
            // After the answers: a backfill finished here delays the next batch, not this one.
            if let (Ok(()), Some(b)) = (&result, &mut w.backfill) {
                b.committed(&w.conn);
            }
        }
        // The servers have stopped: answer whatever is still queued, then close the chain.
        let _turn = turn.take_blocking();
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Record(p) = msg {
                w.cfg.depth.fetch_sub(1, Ordering::Relaxed);
                let result = w.commit(&mut vec![p.entry]);
                let _ = p.done.send(result);
            }
        }
        w.checkpoint_alone(CheckpointKind::Shutdown);
        tracing::info!(chain = %w.cfg.vouching.chain_id, "audit writer stopped");
    }
}

impl State {
    /// Chains and commits the batch (emptying `entries`), with a checkpoint when one is due.
    fn commit(&mut self, entries: &mut Vec<AuditEntry>) -> Result<(), AuditError> {
        // Taken out first: whatever fails below, these entries have been answered with an error
        // and must never be written by a later batch.
        let batch = std::mem::take(entries);
        let head = self.head()?;
        let n = batch.len() as u64;
        let (records, head) = self.cfg.vouching.chain(batch, head);
        let checkpoint = self.cfg.vouching.due(n, &head);
        match self.insert(&records, checkpoint.as_ref()) {
            Ok(()) => {
                self.head = Some(head);
                self.cfg.vouching.committed(n, checkpoint.is_some());
                Ok(())
            }
            Err(e) => {
                // The head is read back before the next batch rather than assumed.
                self.head = None;
                self.cfg.vouching.committed(n, false);
                Err(AuditError::Unavailable(e.to_string()))
            }
        }
    }

    fn insert(
        &mut self,
        records: &[AuditRecord],
        checkpoint: Option<&Checkpoint>,
    ) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(INSERT_RECORD)?;
            let mut txid = uuid::Uuid::encode_buffer();
            for r in records {
                let e = &r.entry;
                stmt.execute(params![
                    e.transaction_id.hyphenated().encode_lower(&mut txid) as &str,
                    r.chain,
                    r.seq,
                    e.time_us,
                    e.party_id,
                    e.product,
                    e.action,
                    e.purpose,
                    e.decision.as_str(),
                    r.reasons_json(),
                    e.policy_id,
                    e.policy_version,
                    e.status,
                    e.method,
                    e.path,
                    e.trace_id,
                    e.span_id,
                    r.prev_hash,
                    r.hash,
                ])?;
            }
            if let Some(cp) = checkpoint {
                let mut stmt = tx.prepare_cached(&sqlite_placeholders(INSERT_CHECKPOINT))?;
                stmt.execute(params![
                    cp.statement.chain,
                    cp.statement.seq,
                    cp.statement.kind.as_str(),
                    cp.statement.hash,
                    cp.statement.time_us,
                    cp.jws,
                ])?;
            }
        }
        tx.commit()
    }

    /// A checkpoint of the current head in a transaction of its own (idle interval, shutdown).
    fn checkpoint_alone(&mut self, kind: CheckpointKind) {
        self.cfg.vouching.attempting();
        let head = match self.head() {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, kind = kind.as_str(), "audit checkpoint not written");
                return;
            }
        };
        let Some(cp) = self.cfg.vouching.sign(&head, kind) else {
            return;
        };
        match self.insert(&[], Some(&cp)) {
            Ok(()) => self.cfg.vouching.vouched(),
            Err(e) => {
                tracing::error!(error = %e, kind = kind.as_str(), "audit checkpoint not written");
            }
        }
    }

    fn head(&mut self) -> Result<(i64, String), AuditError> {
        if let Some(h) = &self.head {
            return Ok(h.clone());
        }
        let sql =
            "SELECT seq, hash FROM audit_records WHERE chain_id = ?1 ORDER BY seq DESC LIMIT 1";
        let head = match self
            .conn
            .query_row(sql, [&self.cfg.vouching.chain_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            }) {
            Ok(h) => h,
            Err(rusqlite::Error::QueryReturnedNoRows) => (0, GENESIS_HASH.to_string()),
            Err(e) => return Err(AuditError::Unavailable(e.to_string())),
        };
        self.head = Some(head.clone());
        Ok(head)
    }
}

/// `$1, $2, …` (the dialect-neutral form shared with the sqlx writer) as SQLite's `?1, ?2, …`.
fn sqlite_placeholders(sql: &str) -> String {
    sql.replace('$', "?")
}
