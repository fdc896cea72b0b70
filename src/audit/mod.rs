//! The audit log: every request leaves a record, committed durably before any data is sent.
//! Records are batched by a single writer per server instance (group commit); each request waits
//! for its own batch to commit. A request whose record cannot be written is refused (fail closed).

mod record;
mod writer;

pub use record::{AuditEntry, AuditRecord, Decision, GENESIS_HASH, record_hash};
pub use writer::{Auditor, AuditorHandle};

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
