//! Group commit: requests enqueue their entry and wait; one task takes whatever queued while the
//! previous commit ran, chains it, and writes it in one transaction. No fixed batching window: the
//! next batch starts as soon as the last commit returns.

use std::sync::Arc;

use sqlx::QueryBuilder;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::record::{AuditEntry, AuditRecord, GENESIS_HASH};
use super::{AuditError, now_us};
use crate::store::{Db, StoreError};

/// Rows per INSERT statement: 19 binds each stays below SQLite's 32766-variable limit.
const ROWS_PER_STATEMENT: usize = 256;

struct Pending {
    entry: AuditEntry,
    done: oneshot::Sender<Result<(), AuditError>>,
}

/// The request path's handle on the audit log. Cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    queue: mpsc::Sender<Pending>,
    chain_id: Arc<str>,
}

/// Owned by the process that started the writer: stops it after the servers have drained.
pub struct AuditorHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Auditor {
    /// Opens a new chain for this writer and starts the writer task.
    pub async fn start(
        db: Db,
        queue_capacity: usize,
        max_batch: usize,
    ) -> Result<(Self, AuditorHandle), StoreError> {
        let chain_id = Uuid::now_v7().to_string();
        let writer = hostname();
        let sql = "INSERT INTO audit_chains (chain_id, writer, created_us) VALUES ($1, $2, $3)";
        match &db {
            Db::Sqlite(p) => {
                sqlx::query(sql)
                    .bind(&chain_id)
                    .bind(&writer)
                    .bind(now_us())
                    .execute(p)
                    .await?;
            }
            Db::Postgres(p) => {
                sqlx::query(sql)
                    .bind(&chain_id)
                    .bind(&writer)
                    .bind(now_us())
                    .execute(p)
                    .await?;
            }
        }
        let (queue, rx) = mpsc::channel(queue_capacity);
        let (stop, stop_rx) = watch::channel(false);
        let state = WriterState {
            db,
            chain_id: chain_id.clone(),
            head: Some((0, GENESIS_HASH.to_string())),
            max_batch,
        };
        let task = tokio::spawn(state.run(rx, stop_rx));
        tracing::info!(chain = %chain_id, "audit writer started");
        Ok((
            Self {
                queue,
                chain_id: chain_id.into(),
            },
            AuditorHandle { stop, task },
        ))
    }

    /// Appends one entry and returns once it is committed. Fails fast when the queue is full.
    pub async fn record(&self, entry: AuditEntry) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .try_send(Pending { entry, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AuditError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => AuditError::Closed,
            })?;
        wait.await.map_err(|_| AuditError::Closed)?
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Records waiting for a batch, for metrics.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

impl AuditorHandle {
    /// Refuses new entries, commits everything already queued, and ends the writer.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "audit writer ended abnormally");
        }
    }
}

struct WriterState {
    db: Db,
    chain_id: String,
    /// Sequence number and hash of the last committed record; `None` after a failed batch,
    /// when the database may or may not hold it, until it is read back.
    head: Option<(i64, String)>,
    max_batch: usize,
}

impl WriterState {
    async fn run(mut self, mut rx: mpsc::Receiver<Pending>, mut stop: watch::Receiver<bool>) {
        let mut batch: Vec<Pending> = Vec::with_capacity(self.max_batch);
        let mut stopping = false;
        loop {
            let first = if stopping {
                rx.recv().await
            } else {
                tokio::select! {
                    m = rx.recv() => m,
                    _ = stop.changed() => {
                        // Close the queue so that nothing new arrives, then drain what is there.
                        rx.close();
                        stopping = true;
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            batch.push(first);
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let result = self.commit(&batch).await;
            if let Err(e) = &result {
                tracing::error!(error = %e, records = batch.len(), "audit batch not committed");
            }
            for p in batch.drain(..) {
                let _ = p.done.send(result.clone());
            }
        }
        tracing::info!(chain = %self.chain_id, "audit writer stopped");
    }

    async fn commit(&mut self, batch: &[Pending]) -> Result<(), AuditError> {
        let head = match self.head.take() {
            Some(h) => h,
            None => self.read_head().await?,
        };
        let mut records = Vec::with_capacity(batch.len());
        let (mut seq, mut prev) = head;
        for p in batch {
            seq += 1;
            let r = AuditRecord::chain(p.entry.clone(), &self.chain_id, seq, &prev);
            prev.clone_from(&r.hash);
            records.push(r);
        }
        // No future-level timeout here: cancelling a statement mid-flight can leave a pooled
        // connection unusable. The database bounds the wait itself (SQLite busy_timeout,
        // PostgreSQL statement_timeout, the pool's acquire timeout).
        match insert(&self.db, &records).await {
            Ok(()) => {
                self.head = Some((seq, prev));
                Ok(())
            }
            // A failed COMMIT may still have landed: the head is read back from the database
            // before the next batch rather than assumed.
            Err(e) => Err(AuditError::Unavailable(e.to_string())),
        }
    }

    async fn read_head(&self) -> Result<(i64, String), AuditError> {
        let sql =
            "SELECT seq, hash FROM audit_records WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1";
        let row: Option<(i64, String)> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(sql)
                    .bind(&self.chain_id)
                    .fetch_optional(p)
                    .await
            }
            Db::Postgres(p) => {
                sqlx::query_as(sql)
                    .bind(&self.chain_id)
                    .fetch_optional(p)
                    .await
            }
        }
        .map_err(|e| AuditError::Unavailable(e.to_string()))?;
        Ok(row.unwrap_or_else(|| (0, GENESIS_HASH.to_string())))
    }
}

const INSERT: &str = "INSERT INTO audit_records (transaction_id, chain_id, seq, time_us, party_id, \
    product, action, purpose, decision, reasons, policy_id, policy_version, status, method, path, \
    trace_id, span_id, prev_hash, hash) ";

macro_rules! insert_in_transaction {
    ($pool:expr, $db:ty, $records:expr) => {{
        let mut tx = $pool.begin().await?;
        for chunk in $records.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<$db>::new(INSERT);
            q.push_values(chunk, |mut b, r| {
                let e = &r.entry;
                b.push_bind(e.transaction_id.to_string())
                    .push_bind(r.chain.clone())
                    .push_bind(r.seq)
                    .push_bind(e.time_us)
                    .push_bind(e.party_id.clone())
                    .push_bind(e.product.clone())
                    .push_bind(e.action.clone())
                    .push_bind(e.purpose.clone())
                    .push_bind(e.decision.as_str())
                    .push_bind(r.reasons_json())
                    .push_bind(e.policy_id.clone())
                    .push_bind(e.policy_version.clone())
                    .push_bind(i32::from(e.status))
                    .push_bind(e.method.clone())
                    .push_bind(e.path.clone())
                    .push_bind(e.trace_id.clone())
                    .push_bind(e.span_id.clone())
                    .push_bind(r.prev_hash.clone())
                    .push_bind(r.hash.clone());
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await
    }};
}

async fn insert(db: &Db, records: &[AuditRecord]) -> Result<(), sqlx::Error> {
    match db {
        Db::Sqlite(p) => insert_in_transaction!(p, sqlx::Sqlite, records),
        Db::Postgres(p) => insert_in_transaction!(p, sqlx::Postgres, records),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sluis".to_string())
}
