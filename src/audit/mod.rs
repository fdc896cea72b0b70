//! The audit log: every request leaves a record, committed durably before any data is sent.
//! Records are batched by a single writer per server instance (group commit); each request waits
//! for its own batch to commit. A request whose record cannot be written is refused (fail closed).
//! Each writer appends to its own hash chain and signs checkpoints of it with the connector key;
//! `verify` walks every chain, `query` reads (there is no API to change or delete a record), and
//! `prune` is the one controlled way records leave (retention).

mod checkpoint;
pub mod cli;
pub mod prune;
pub mod query;
mod record;
mod sqlite_writer;
mod stored;
pub mod verify;
mod vouching;
mod wal_backfill;
mod wal_vfs;
mod writer;

pub use checkpoint::{
    BadCheckpoint, Checkpoint, CheckpointKeyError, CheckpointKind, CheckpointSigner,
    CheckpointStatement, CheckpointVerifier,
};
pub use record::{AuditEntry, AuditRecord, Decision, GENESIS_HASH, record_hash};
pub use stored::{RecordView, StoredRecord, rfc3339};
pub use writer::{AuditStats, Auditor, AuditorHandle, BATCH_SIZE_BOUNDS};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// More records are waiting than the queue holds; the request is refused, nothing dropped.
    #[error("audit queue is full")]
    QueueFull,
    #[error("audit log is unavailable: {0}")]
    Unavailable(String),
    #[error("audit log is shutting down")]
    Closed,
}

/// Microseconds since the Unix epoch, the time unit of the audit log.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
