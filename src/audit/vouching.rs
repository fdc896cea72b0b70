//! What both audit writers share: placing a batch in the chain, and deciding when the chain's
//! next signed checkpoint is due and signing it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::checkpoint::{Checkpoint, CheckpointKind, CheckpointSigner, CheckpointStatement};
use super::now_us;
use super::record::{AuditEntry, AuditRecord};
use super::writer::Counters;
use crate::config::AuditSettings;

pub(super) struct Vouching {
    pub(super) chain_id: String,
    signer: CheckpointSigner,
    every_records: u64,
    every: Duration,
    /// Records committed since the last checkpoint.
    unvouched: u64,
    last: Instant,
    counters: Arc<Counters>,
}

impl Vouching {
    pub(super) fn new(
        chain_id: String,
        signer: CheckpointSigner,
        settings: &AuditSettings,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            chain_id,
            signer,
            every_records: settings.checkpoint_records.max(1),
            every: Duration::from_millis(settings.checkpoint_interval_ms.max(1)),
            unvouched: 0,
            last: Instant::now(),
            counters,
        }
    }

    /// The batch placed after `head`, and the new head (not yet committed).
    pub(super) fn chain(
        &self,
        batch: Vec<AuditEntry>,
        head: (i64, String),
    ) -> (Vec<AuditRecord>, (i64, String)) {
        let (mut seq, mut prev) = head;
        let mut records = Vec::with_capacity(batch.len());
        for entry in batch {
            seq += 1;
            let r = AuditRecord::chain(entry, &self.chain_id, seq, &prev);
            prev.clone_from(&r.hash);
            records.push(r);
        }
        (records, (seq, prev))
    }

    /// The checkpoint to commit with `n` more records ending at `head`, if one is due.
    pub(super) fn due(&self, n: u64, head: &(i64, String)) -> Option<Checkpoint> {
        let due = self.unvouched + n >= self.every_records || self.last.elapsed() >= self.every;
        due.then(|| self.sign(head, CheckpointKind::Batch))
            .flatten()
    }

    /// When an idle writer should vouch for its tail on its own; `None` when nothing waits.
    pub(super) fn idle_deadline(&self) -> Option<Instant> {
        (self.unvouched > 0).then(|| self.last + self.every)
    }

    /// A checkpoint of `head`, signed. A checkpoint that cannot be signed delays the proof, not
    /// the request: the records are still chained, and the next checkpoint covers them.
    pub(super) fn sign(&self, head: &(i64, String), kind: CheckpointKind) -> Option<Checkpoint> {
        let statement = CheckpointStatement {
            chain: self.chain_id.clone(),
            seq: head.0,
            hash: head.1.clone(),
            time_us: now_us(),
            kind,
        };
        self.signer
            .sign(statement)
            .map_err(|e| tracing::error!(error = %e, "audit checkpoint not signed"))
            .ok()
    }

    /// `n` records were committed (or may have been), with a checkpoint or without.
    pub(super) fn committed(&mut self, n: u64, with_checkpoint: bool) {
        if with_checkpoint {
            self.vouched();
        } else {
            self.unvouched += n;
        }
    }

    /// A checkpoint is about to be attempted on its own: whatever happens, the next attempt
    /// waits another interval rather than spinning.
    pub(super) fn attempting(&mut self) {
        self.last = Instant::now();
    }

    pub(super) fn vouched(&mut self) {
        self.unvouched = 0;
        self.last = Instant::now();
        self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
    }
}
