//! Group commit: requests enqueue their entry and wait; one writer takes whatever queued while the
//! previous commit ran, chains it, and writes it in one go. No fixed batching window: the next
//! batch starts as soon as the last commit returns. Every `checkpoint_records` records or
//! `checkpoint_interval` (whichever comes first) the batch carries a signed checkpoint of its
//! last record; a clean shutdown closes the chain with one more.
//!
//! On PostgreSQL a task on the runtime that started the writer commits each batch on a
//! connection of its own, opened by that task (see [`Target`]). On a SQLite file a thread of its
//! own does, with its own connection and prepared statements (see [`super::sqlite_writer`]):
//! fewer hops per batch. An in-memory SQLite database, which only the pool's connections can
//! see, is written through the pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, QueryBuilder, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};

use super::sqlite_writer::{self, Msg, SqliteWriter};
use super::vouching::Vouching;
use tokio::time::Instant;
use uuid::Uuid;

use super::checkpoint::{Checkpoint, CheckpointKind, CheckpointSigner, CheckpointStatement};
use super::record::{AuditEntry, AuditRecord, GENESIS_HASH};
use super::{AuditError, now_us};
use crate::config::AuditSettings;
use crate::store::{Db, StoreError, WriteTurn};

/// Rows per INSERT statement: 19 binds each stays below SQLite's 32766-variable limit.
const ROWS_PER_STATEMENT: usize = 256;

/// Upper bounds (inclusive) of the batch-size buckets in [`AuditStats`]; the last is open.
pub const BATCH_SIZE_BOUNDS: [u64; 7] = [1, 4, 16, 64, 256, 1024, u64::MAX];

pub(super) const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints \
    (chain_id, seq, kind, hash, time_us, statement) VALUES ($1, $2, $3, $4, $5, $6)";

/// Executes INSERT_CHECKPOINT for a `&Checkpoint` on an executor.
macro_rules! insert_checkpoint {
    ($executor:expr, $cp:expr) => {{
        let cp: &Checkpoint = $cp;
        sqlx::query(INSERT_CHECKPOINT)
            .bind(&cp.statement.chain)
            .bind(cp.statement.seq)
            .bind(cp.statement.kind.as_str())
            .bind(&cp.statement.hash)
            .bind(cp.statement.time_us)
            .bind(&cp.jws)
            .execute($executor)
            .await?;
    }};
}

pub(super) struct Pending {
    pub(super) entry: AuditEntry,
    pub(super) done: oneshot::Sender<Result<(), AuditError>>,
}

/// The request path's handle on the audit log. Cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    queue: Queue,
    chain_id: Arc<str>,
    counters: Arc<Counters>,
}

#[derive(Clone)]
enum Queue {
    /// To the database writer task.
    Task(mpsc::Sender<Pending>),
    /// To the SQLite writer thread, with the number of entries waiting in it.
    Thread {
        tx: std::sync::mpsc::SyncSender<Msg>,
        depth: Arc<AtomicU64>,
        capacity: usize,
    },
}

/// Owned by the process that started the writer: stops it after the servers have drained.
pub struct AuditorHandle(HandleKind);

enum HandleKind {
    Task {
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    },
    Thread {
        tx: std::sync::mpsc::SyncSender<Msg>,
        thread: std::thread::JoinHandle<()>,
    },
}

/// What the writer has done since it started, for metrics. Counts only go up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditStats {
    pub batches_committed: u64,
    pub records_committed: u64,
    /// Batches whose transaction failed; their requests were refused (503), nothing served.
    pub batches_failed: u64,
    pub records_failed: u64,
    pub checkpoints_written: u64,
    /// Committed batches by size: `(upper bound, count)` per bucket of [`BATCH_SIZE_BOUNDS`],
    /// not cumulative (a Prometheus histogram sums them up).
    pub batch_sizes: [(u64, u64); 7],
}

#[derive(Default)]
pub(super) struct Counters {
    batches: AtomicU64,
    records: AtomicU64,
    failed_batches: AtomicU64,
    failed_records: AtomicU64,
    pub(super) checkpoints: AtomicU64,
    sizes: [AtomicU64; 7],
}

impl Counters {
    pub(super) fn failed(&self, records: usize) {
        self.failed_batches.fetch_add(1, Ordering::Relaxed);
        self.failed_records
            .fetch_add(records as u64, Ordering::Relaxed);
    }

    pub(super) fn committed(&self, records: usize) {
        let n = records as u64;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(n, Ordering::Relaxed);
        let bucket = BATCH_SIZE_BOUNDS
            .iter()
            .position(|&b| n <= b)
            .unwrap_or(BATCH_SIZE_BOUNDS.len() - 1);
        self.sizes[bucket].fetch_add(1, Ordering::Relaxed);
    }
}

impl Auditor {
    /// Opens a new chain for this writer, with its signed genesis checkpoint, and starts the
    /// writer task.
    pub async fn start(
        db: Db,
        settings: &AuditSettings,
        signer: CheckpointSigner,
        busy_timeout: Duration,
    ) -> Result<(Self, AuditorHandle), StoreError> {
        let chain_id = Uuid::now_v7().to_string();
        let writer = hostname();
        let now = now_us();
        let genesis = signer
            .sign(CheckpointStatement {
                chain: chain_id.clone(),
                seq: 0,
                hash: GENESIS_HASH.to_string(),
                time_us: now,
                kind: CheckpointKind::Genesis,
            })
            .map_err(|e| StoreError::Corrupt(format!("audit checkpoint: {e}")))?;
        let sql = "INSERT INTO audit_chains (chain_id, writer, created_us) VALUES ($1, $2, $3)";
        macro_rules! open_chain {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query(sql)
                    .bind(&chain_id)
                    .bind(&writer)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                insert_checkpoint!(&mut *tx, &genesis);
                tx.commit().await?;
            }};
        }
        match &db {
            Db::Sqlite(p, turn) => {
                let _turn = turn.take().await?;
                open_chain!(p)
            }
            Db::Postgres(pg) => {
                let mut conn = pg.acquire().await?;
                open_chain!(conn)
            }
        }
        let counters = Arc::new(Counters::default());
        if let Some((path, turn)) = sqlite_file(&db) {
            let depth = Arc::new(AtomicU64::new(0));
            let (tx, rx) = std::sync::mpsc::sync_channel(settings.queue_capacity);
            let conn = sqlite_writer::open(&path, busy_timeout)
                .map_err(|e| StoreError::Corrupt(format!("audit writer connection: {e}")))?;
            let writer = SqliteWriter {
                max_batch: settings.max_batch.max(1),
                vouching: Vouching::new(chain_id.clone(), signer, settings, counters.clone()),
                counters: counters.clone(),
                depth: depth.clone(),
                turn,
            };
            let thread = std::thread::Builder::new()
                .name("sluis-audit".into())
                .spawn(move || writer.run(conn, &path, rx))
                .map_err(|e| StoreError::Corrupt(format!("audit writer thread: {e}")))?;
            tracing::info!(chain = %chain_id, "audit writer started (own thread and connection)");
            return Ok((
                Self {
                    queue: Queue::Thread {
                        tx: tx.clone(),
                        depth,
                        capacity: settings.queue_capacity,
                    },
                    chain_id: chain_id.into(),
                    counters,
                },
                AuditorHandle(HandleKind::Thread { tx, thread }),
            ));
        }
        let (queue, rx) = mpsc::channel(settings.queue_capacity);
        let (stop, stop_rx) = watch::channel(false);
        let target = match db {
            Db::Postgres(pg) => Target::Own {
                options: pg.pool().connect_options(),
                timeout: busy_timeout,
                conn: None,
            },
            Db::Sqlite(pool, turn) => Target::Pool(pool, turn),
        };
        let state = WriterState {
            target,
            head: Some((0, GENESIS_HASH.to_string())),
            max_batch: settings.max_batch,
            vouching: Vouching::new(chain_id.clone(), signer, settings, counters.clone()),
            counters: counters.clone(),
        };
        let task = tokio::spawn(state.run(rx, stop_rx));
        tracing::info!(chain = %chain_id, "audit writer started");
        Ok((
            Self {
                queue: Queue::Task(queue),
                chain_id: chain_id.into(),
                counters,
            },
            AuditorHandle(HandleKind::Task { stop, task }),
        ))
    }

    /// Appends one entry and returns once it is committed. Fails fast when the queue is full.
    pub async fn record(&self, entry: AuditEntry) -> Result<(), AuditError> {
        self.submit(entry).await
    }

    /// Queues one entry now (failing fast when the queue is full); the future resolves once the
    /// entry is committed. It holds neither the entry nor a borrow of the auditor, so a request
    /// future that awaits it stays small.
    pub fn submit(
        &self,
        entry: AuditEntry,
    ) -> impl Future<Output = Result<(), AuditError>> + use<> {
        let (done, wait) = oneshot::channel();
        let queued = match &self.queue {
            Queue::Task(q) => q.try_send(Pending { entry, done }).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AuditError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => AuditError::Closed,
            }),
            Queue::Thread { tx, depth, .. } => {
                depth.fetch_add(1, Ordering::Relaxed);
                tx.try_send(Msg::Record(Pending { entry, done }))
                    .map_err(|e| {
                        depth.fetch_sub(1, Ordering::Relaxed);
                        match e {
                            std::sync::mpsc::TrySendError::Full(_) => AuditError::QueueFull,
                            std::sync::mpsc::TrySendError::Disconnected(_) => AuditError::Closed,
                        }
                    })
            }
        };
        async move {
            queued?;
            wait.await.map_err(|_| AuditError::Closed)?
        }
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Records waiting for a batch, for metrics.
    pub fn queue_depth(&self) -> usize {
        match &self.queue {
            Queue::Task(q) => q.max_capacity() - q.capacity(),
            Queue::Thread {
                depth, capacity, ..
            } => (depth.load(Ordering::Relaxed) as usize).min(*capacity),
        }
    }

    /// Batch and record counters, for metrics.
    pub fn stats(&self) -> AuditStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut batch_sizes = [(0, 0); 7];
        for (i, slot) in batch_sizes.iter_mut().enumerate() {
            *slot = (BATCH_SIZE_BOUNDS[i], load(&c.sizes[i]));
        }
        AuditStats {
            batches_committed: load(&c.batches),
            records_committed: load(&c.records),
            batches_failed: load(&c.failed_batches),
            records_failed: load(&c.failed_records),
            checkpoints_written: load(&c.checkpoints),
            batch_sizes,
        }
    }
}

impl AuditorHandle {
    /// Refuses new entries, commits everything already queued, closes the chain with a signed
    /// shutdown checkpoint, and ends the writer.
    pub async fn shutdown(self) {
        match self.0 {
            HandleKind::Task { stop, task } => {
                let _ = stop.send(true);
                if let Err(e) = task.await {
                    tracing::error!(error = %e, "audit writer ended abnormally");
                }
            }
            HandleKind::Thread { tx, thread } => {
                // The servers have drained: the thread commits what is left and the shutdown
                // checkpoint, then ends.
                let joined = tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Msg::Stop);
                    thread.join()
                })
                .await;
                if !matches!(joined, Ok(Ok(()))) {
                    tracing::error!("audit writer ended abnormally");
                }
            }
        }
    }
}

/// The database file behind a SQLite pool; `None` for PostgreSQL and for an in-memory
/// database, which a second connection could not share.
fn sqlite_file(db: &Db) -> Option<(std::path::PathBuf, WriteTurn)> {
    let Db::Sqlite(pool, turn) = db else {
        return None;
    };
    let path = pool.connect_options().get_filename().to_path_buf();
    let name = path.to_string_lossy();
    // sqlx names an in-memory database `file:sqlx-in-memory-N` (a URI, not a path).
    let in_memory = name.is_empty() || name.starts_with(":memory:") || name.starts_with("file:");
    (!in_memory).then(|| (path, turn.clone()))
}

/// Where the writer task commits.
///
/// On PostgreSQL the task keeps a connection of its own rather than taking one from the pool
/// for every batch: it skips the pool's round trip on every release (sqlx pings a returned
/// connection) and never waits behind other users for a connection. The connection is opened
/// by this task, on the runtime that outlives the HTTP servers, so the batches of requests
/// still draining at shutdown and the closing checkpoint are written (the pool's connections
/// are kept off the workers' runtimes for the same reason: `store::home`).
enum Target {
    /// An in-memory SQLite database, which only the pool's connections can see.
    Pool(SqlitePool, WriteTurn),
    Own {
        options: Arc<PgConnectOptions>,
        /// The longest wait to (re)connect.
        timeout: Duration,
        /// `None` until the first batch and after a failed one: the next batch reconnects.
        conn: Option<PgConnection>,
    },
}

impl Target {
    /// Writes records and checkpoints atomically. After a failure the connection is dropped
    /// (it may be broken, or inside a failed transaction) and the next call opens another.
    async fn insert(
        &mut self,
        records: &[AuditRecord],
        checkpoints: &[Checkpoint],
    ) -> Result<(), sqlx::Error> {
        match self {
            Self::Pool(pool, turn) => {
                let _turn = turn.take().await?;
                insert_sqlite(pool, records, checkpoints).await
            }
            Self::Own { .. } => {
                let conn = self.connection().await?;
                let result = insert_pg(conn, records, checkpoints).await;
                if result.is_err() {
                    self.drop_connection();
                }
                result
            }
        }
    }

    /// The sequence number and hash of the chain's last stored record.
    async fn head(&mut self, chain_id: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
        let sql =
            "SELECT seq, hash FROM audit_records WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1";
        match self {
            Self::Pool(p, _) => sqlx::query_as(sql).bind(chain_id).fetch_optional(&*p).await,
            Self::Own { .. } => {
                let conn = self.connection().await?;
                let result = sqlx::query_as(sql)
                    .bind(chain_id)
                    .fetch_optional(&mut *conn)
                    .await;
                if result.is_err() {
                    self.drop_connection();
                }
                result
            }
        }
    }

    async fn connection(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        let Self::Own {
            options,
            timeout,
            conn,
        } = self
        else {
            unreachable!("only called for a connection of the writer's own")
        };
        if conn.is_none() {
            // Cancelling a connect that has not finished leaves nothing behind.
            let opened = tokio::time::timeout(*timeout, options.connect())
                .await
                .map_err(|_| {
                    sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "audit writer: no connection within the database timeout",
                    ))
                })??;
            *conn = Some(opened);
        }
        Ok(conn.as_mut().expect("connected above"))
    }

    fn drop_connection(&mut self) {
        if let Self::Own { conn, .. } = self {
            *conn = None;
        }
    }

    /// Ends the session politely (the server logs no broken connection).
    async fn close(self) {
        if let Self::Own {
            conn: Some(conn), ..
        } = self
        {
            let _ = conn.close().await;
        }
    }
}

struct WriterState {
    target: Target,
    /// Sequence number and hash of the last committed record; `None` after a failed batch,
    /// when the database may or may not hold it, until it is read back.
    head: Option<(i64, String)>,
    max_batch: usize,
    vouching: Vouching,
    counters: Arc<Counters>,
}

impl WriterState {
    async fn run(mut self, mut rx: mpsc::Receiver<Pending>, mut stop: watch::Receiver<bool>) {
        let mut entries: Vec<AuditEntry> = Vec::with_capacity(self.max_batch);
        let mut waiting: Vec<oneshot::Sender<Result<(), AuditError>>> =
            Vec::with_capacity(self.max_batch);
        let mut stopping = false;
        loop {
            let first = if stopping {
                rx.recv().await
            } else {
                // An idle writer still vouches for its tail once the interval has passed.
                let due = self.vouching.idle_deadline().map(Instant::from_std);
                tokio::select! {
                    m = rx.recv() => m,
                    _ = stop.changed() => {
                        // Close the queue so that nothing new arrives, then drain what is there.
                        rx.close();
                        stopping = true;
                        continue;
                    }
                    () = sleep_until(due) => {
                        self.checkpoint_alone(CheckpointKind::Interval).await;
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            entries.push(first.entry);
            waiting.push(first.done);
            while entries.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(p) => {
                        entries.push(p.entry);
                        waiting.push(p.done);
                    }
                    Err(_) => break,
                }
            }
            let n = entries.len();
            let result = self.commit(&mut entries).await;
            match &result {
                Ok(()) => self.counters.committed(n),
                Err(e) => {
                    self.counters.failed(n);
                    tracing::error!(error = %e, records = n, "audit batch not committed");
                }
            }
            for done in waiting.drain(..) {
                let _ = done.send(result.clone());
            }
        }
        self.checkpoint_alone(CheckpointKind::Shutdown).await;
        tracing::info!(chain = %self.vouching.chain_id, "audit writer stopped");
        self.target.close().await;
    }

    /// Chains and commits the batch (emptying `entries`), with a checkpoint when one is due.
    async fn commit(&mut self, entries: &mut Vec<AuditEntry>) -> Result<(), AuditError> {
        // Taken out first: whatever fails below, these entries have been answered with an error
        // and must never be written by a later batch.
        let batch = std::mem::take(entries);
        let head = match self.head.take() {
            Some(h) => h,
            None => self.read_head().await?,
        };
        let n = batch.len() as u64;
        let (records, head) = self.vouching.chain(batch, head);
        let checkpoint = self.vouching.due(n, &head);
        // No future-level timeout here: cancelling a statement mid-flight can leave the
        // connection unusable. SQLite bounds the wait itself (busy_timeout, the write turn). A
        // PostgreSQL statement has no time limit: while one hangs, the queue fills and further
        // requests are refused (503) rather than served unrecorded.
        match self.target.insert(&records, checkpoint.as_slice()).await {
            Ok(()) => {
                self.head = Some(head);
                self.vouching.committed(n, checkpoint.is_some());
                Ok(())
            }
            // A failed COMMIT may still have landed: the head is read back from the database
            // before the next batch rather than assumed.
            Err(e) => {
                self.vouching.committed(n, false);
                Err(AuditError::Unavailable(e.to_string()))
            }
        }
    }

    /// A checkpoint of the current head in a transaction of its own (idle interval, shutdown).
    async fn checkpoint_alone(&mut self, kind: CheckpointKind) {
        self.vouching.attempting();
        let head = match self.head.take() {
            Some(h) => h,
            None => match self.read_head().await {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, kind = kind.as_str(), "audit checkpoint not written");
                    return;
                }
            },
        };
        let checkpoint = self.vouching.sign(&head, kind);
        self.head = Some(head);
        let Some(checkpoint) = checkpoint else { return };
        match self
            .target
            .insert(&[], std::slice::from_ref(&checkpoint))
            .await
        {
            Ok(()) => self.vouching.vouched(),
            Err(e) => {
                tracing::error!(error = %e, kind = kind.as_str(), "audit checkpoint not written");
            }
        }
    }

    async fn read_head(&mut self) -> Result<(i64, String), AuditError> {
        let row = self
            .target
            .head(&self.vouching.chain_id)
            .await
            .map_err(|e| AuditError::Unavailable(e.to_string()))?;
        Ok(row.unwrap_or_else(|| (0, GENESIS_HASH.to_string())))
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

const INSERT: &str = "INSERT INTO audit_records (transaction_id, chain_id, seq, time_us, party_id, \
    product, action, purpose, decision, reasons, policy_id, policy_version, status, method, path, \
    trace_id, span_id, prev_hash, hash) ";

/// The multi-row INSERT of `records` (with their transaction ids as text).
macro_rules! insert_statement {
    ($db:ty, $records:expr, $ids:expr) => {{
        let mut q = QueryBuilder::<$db>::new(INSERT);
        // Borrowed binds: no per-field copies of the record's strings.
        q.push_values($records.iter().zip($ids), |mut b, (r, id)| {
            let e = &r.entry;
            b.push_bind(id.as_str())
                .push_bind(r.chain.as_str())
                .push_bind(r.seq)
                .push_bind(e.time_us)
                .push_bind(e.party_id.as_deref())
                .push_bind(e.product.as_deref())
                .push_bind(e.action.as_str())
                .push_bind(e.purpose.as_deref())
                .push_bind(e.decision.as_str())
                .push_bind(r.reasons_json())
                .push_bind(e.policy_id.as_deref())
                .push_bind(e.policy_version.as_deref())
                .push_bind(i32::from(e.status))
                .push_bind(e.method.as_str())
                .push_bind(e.path.as_str())
                .push_bind(e.trace_id.as_deref())
                .push_bind(e.span_id.as_deref())
                .push_bind(r.prev_hash.as_str())
                .push_bind(r.hash.as_str());
        });
        q
    }};
}

macro_rules! insert_one_statement {
    ($pool:expr, $db:ty, $records:expr) => {{
        let ids: Vec<String> = $records
            .iter()
            .map(|r| r.entry.transaction_id.hyphenated().to_string())
            .collect();
        let mut q = insert_statement!($db, $records, &ids);
        q.build().execute($pool).await.map(|_| ())
    }};
}

macro_rules! insert_in_transaction {
    ($pool:expr, $db:ty, $records:expr, $checkpoints:expr) => {{
        let mut tx = $pool.begin().await?;
        let mut txids = Vec::with_capacity($records.len());
        for r in $records {
            txids.push(r.entry.transaction_id.hyphenated().to_string());
        }
        for (chunk, ids) in $records
            .chunks(ROWS_PER_STATEMENT)
            .zip(txids.chunks(ROWS_PER_STATEMENT))
        {
            let mut q = insert_statement!($db, chunk, ids);
            q.build().execute(&mut *tx).await?;
        }
        for cp in $checkpoints {
            insert_checkpoint!(&mut *tx, cp);
        }
        tx.commit().await
    }};
}

/// Writes records and checkpoints atomically on an executor (a pool or a connection).
macro_rules! insert_batch {
    ($executor:expr, $db:ty, $records:expr, $checkpoints:expr) => {{
        let (records, checkpoints): (&[AuditRecord], &[Checkpoint]) = ($records, $checkpoints);
        if records.is_empty() && checkpoints.is_empty() {
            Ok(())
        } else if checkpoints.is_empty() && records.len() <= ROWS_PER_STATEMENT {
            // The common batch is one multi-row INSERT: a single statement is atomic on its
            // own, so it runs in autocommit — one round trip instead of BEGIN, INSERT, COMMIT.
            insert_one_statement!($executor, $db, records)
        } else {
            insert_in_transaction!($executor, $db, records, checkpoints)
        }
    }};
}

/// Writes records and checkpoints atomically through a SQLite pool; the caller holds the turn.
async fn insert_sqlite(
    pool: &SqlitePool,
    records: &[AuditRecord],
    checkpoints: &[Checkpoint],
) -> Result<(), sqlx::Error> {
    insert_batch!(pool, sqlx::Sqlite, records, checkpoints)
}

/// Writes records and checkpoints atomically on the writer's own PostgreSQL connection.
async fn insert_pg(
    conn: &mut PgConnection,
    records: &[AuditRecord],
    checkpoints: &[Checkpoint],
) -> Result<(), sqlx::Error> {
    insert_batch!(&mut *conn, sqlx::Postgres, records, checkpoints)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sluis".to_string())
}

#[cfg(test)]
mod tests {
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            transaction_id: Uuid::now_v7(),
            ..crate::audit::record::sample_entry()
        }
    }

    /// Records one entry through whichever writer the database gets, and counts what landed.
    async fn round_trip(url: &str) -> i64 {
        let db = Db::connect(url, 2, Duration::from_secs(2)).await.unwrap();
        db.migrate().await.unwrap();
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let signer = CheckpointSigner::from_pem(&key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let settings = AuditSettings::default();
        let (auditor, handle) =
            Auditor::start(db.clone(), &settings, signer, Duration::from_secs(2))
                .await
                .unwrap();
        auditor.record(entry()).await.unwrap();
        handle.shutdown().await;
        let Db::Sqlite(pool, _) = &db else {
            unreachable!()
        };
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_records")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_sqlite_file_gets_the_writer_thread_and_memory_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let db = Db::connect(&file, 1, Duration::from_secs(1)).await.unwrap();
        assert!(
            sqlite_file(&db).is_some(),
            "a file gets its own writer connection"
        );
        let mem = Db::connect("sqlite::memory:", 1, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(
            sqlite_file(&mem).is_none(),
            "a second connection could not see it"
        );
        assert_eq!(round_trip(&file).await, 1);
        assert_eq!(round_trip("sqlite::memory:").await, 1);
    }
}
