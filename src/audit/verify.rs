//! `sluis audit verify`: walks every chain record by record and checks it against its signed
//! checkpoints. What it guarantees, per chain:
//! - every record from the chain's signed start (genesis, or the latest prune checkpoint) to its
//!   last record is present, in order, unmodified, and linked to its predecessor;
//! - every checkpoint's signature verifies with the connector key, and the record it names is
//!   there with that hash: a tail cut off at or before a checkpoint is detected;
//! - a chain closed cleanly (shutdown checkpoint) has nothing after its close.
//!
//! What it cannot see: records removed from the tail of a chain that was not closed (a crash, or
//! a writer still running) after its last checkpoint; records appended after that checkpoint by
//! someone who knows the (unkeyed) hash function; a whole chain deleted with its checkpoints.
//! Checkpoints every N records / T seconds bound the first two to that window.

use std::collections::BTreeMap;

use super::checkpoint::{CheckpointKind, CheckpointStatement, CheckpointVerifier};
use super::record::{GENESIS_HASH, record_hash};
use super::stored::{SELECT_COLUMNS, StoredRecord};
use crate::store::{Db, StoreError};

/// Records read per round trip while walking a chain.
const WALK_PAGE: i64 = 5000;

/// The first thing found wrong: which record and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampering {
    pub chain: String,
    pub seq: i64,
    /// `None` when the record is missing.
    pub transaction_id: Option<String>,
    pub what: String,
}

impl std::fmt::Display for Tampering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chain {} seq {} transaction {}: {}",
            self.chain,
            self.seq,
            self.transaction_id.as_deref().unwrap_or("(missing)"),
            self.what
        )
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub chains: u64,
    pub records: u64,
    pub checkpoints: u64,
    pub closed_chains: u64,
    /// Chains not closed cleanly with records after their last checkpoint:
    /// (chain, last vouched seq, last seq). Intact as far as can be seen, but see the module doc.
    pub open_tails: Vec<(String, i64, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit log tampered: {0}")]
    Tampered(Tampering),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for VerifyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Sqlx(e))
    }
}

#[derive(sqlx::FromRow)]
struct CheckpointRow {
    chain_id: String,
    seq: i64,
    kind: String,
    hash: String,
    time_us: i64,
    statement: String,
}

fn tampered(chain: &str, seq: i64, txid: Option<&str>, what: impl Into<String>) -> VerifyError {
    VerifyError::Tampered(Tampering {
        chain: chain.to_string(),
        seq,
        transaction_id: txid.map(str::to_string),
        what: what.into(),
    })
}

pub async fn verify(db: &Db, key: &CheckpointVerifier) -> Result<VerifyReport, VerifyError> {
    let chains_sql = "SELECT chain_id FROM audit_chains \
        UNION SELECT chain_id FROM audit_checkpoints \
        UNION SELECT DISTINCT chain_id FROM audit_records ORDER BY 1";
    let chains: Vec<(String,)> = match db {
        Db::Sqlite(p, _) => sqlx::query_as(chains_sql).fetch_all(p).await?,
        Db::Postgres(pg) => {
            sqlx::query_as(chains_sql)
                .fetch_all(&mut *pg.acquire().await?)
                .await?
        }
    };
    let mut report = VerifyReport::default();
    for (chain,) in chains {
        verify_chain(db, key, &chain, &mut report).await?;
        report.chains += 1;
    }
    Ok(report)
}

async fn verify_chain(
    db: &Db,
    key: &CheckpointVerifier,
    chain: &str,
    report: &mut VerifyReport,
) -> Result<(), VerifyError> {
    let sql = "SELECT chain_id, seq, kind, hash, time_us, statement FROM audit_checkpoints \
        WHERE chain_id = $1 ORDER BY seq, kind";
    let rows: Vec<CheckpointRow> = match db {
        Db::Sqlite(p, _) => sqlx::query_as(sql).bind(chain).fetch_all(p).await?,
        Db::Postgres(pg) => {
            sqlx::query_as(sql)
                .bind(chain)
                .fetch_all(&mut *pg.acquire().await?)
                .await?
        }
    };
    let mut statements = Vec::with_capacity(rows.len());
    for row in rows {
        let st = key.verify(&row.statement).map_err(|e| {
            tampered(
                chain,
                row.seq,
                None,
                format!("{} checkpoint: {e}", row.kind),
            )
        })?;
        let expected = CheckpointStatement {
            chain: row.chain_id.clone(),
            seq: row.seq,
            hash: row.hash.clone(),
            time_us: row.time_us,
            kind: st.kind,
        };
        if st != expected || st.kind.as_str() != row.kind {
            return Err(tampered(
                chain,
                row.seq,
                None,
                format!(
                    "{} checkpoint: its row differs from what was signed",
                    row.kind
                ),
            ));
        }
        statements.push(st);
    }
    report.checkpoints += statements.len() as u64;

    // Where the chain starts: the latest retention cut, else its genesis.
    let start = statements
        .iter()
        .filter(|s| s.kind == CheckpointKind::Prune)
        .max_by_key(|s| s.seq)
        .or_else(|| {
            statements
                .iter()
                .find(|s| s.kind == CheckpointKind::Genesis && s.seq == 0 && s.hash == GENESIS_HASH)
        })
        .map(|s| (s.seq, s.hash.clone()));
    let Some((start_seq, start_hash)) = start else {
        return Err(tampered(
            chain,
            0,
            None,
            "the chain has no signed start (genesis or prune checkpoint): it was not opened by a writer holding the connector key",
        ));
    };
    let closed_at = statements
        .iter()
        .filter(|s| s.kind == CheckpointKind::Shutdown)
        .map(|s| s.seq)
        .min();
    // Checkpoints after the start vouch for the record at their seq.
    let vouched: BTreeMap<i64, &str> = statements
        .iter()
        .filter(|s| s.seq > start_seq && s.kind != CheckpointKind::Genesis)
        .map(|s| (s.seq, s.hash.as_str()))
        .collect();
    for s in statements.iter().filter(|s| s.seq > start_seq) {
        if let Some(&h) = vouched.get(&s.seq) {
            if h != s.hash {
                return Err(tampered(
                    chain,
                    s.seq,
                    None,
                    "two signed checkpoints disagree about this record",
                ));
            }
        }
    }

    let (mut last_seq, mut last_hash) = (start_seq, start_hash);
    let mut after = i64::MIN;
    loop {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM audit_records WHERE chain_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT {WALK_PAGE}"
        );
        let page: Vec<StoredRecord> = match db {
            Db::Sqlite(p, _) => {
                sqlx::query_as(&sql)
                    .bind(chain)
                    .bind(after)
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(pg) => {
                sqlx::query_as(&sql)
                    .bind(chain)
                    .bind(after)
                    .fetch_all(&mut *pg.acquire().await?)
                    .await?
            }
        };
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            check_record(chain, r, last_seq, &last_hash, closed_at, &vouched)?;
            last_seq = r.seq;
            last_hash.clone_from(&r.hash);
            report.records += 1;
        }
        if (page.len() as i64) < WALK_PAGE {
            break;
        }
    }
    if let Some((&seq, _)) = vouched.range(last_seq + 1..).next_back() {
        return Err(tampered(
            chain,
            last_seq + 1,
            None,
            format!(
                "missing: the chain ends at seq {last_seq}, but a signed checkpoint vouches for records up to seq {seq} (tail removed)"
            ),
        ));
    }
    if closed_at.is_some() {
        report.closed_chains += 1;
    } else {
        let vouched_to = vouched.keys().next_back().copied().unwrap_or(start_seq);
        if last_seq > vouched_to {
            report
                .open_tails
                .push((chain.to_string(), vouched_to, last_seq));
        }
    }
    Ok(())
}

fn check_record(
    chain: &str,
    r: &StoredRecord,
    prev_seq: i64,
    prev_hash: &str,
    closed_at: Option<i64>,
    vouched: &BTreeMap<i64, &str>,
) -> Result<(), VerifyError> {
    let bad = |what: String| tampered(chain, r.seq, Some(&r.transaction_id), what);
    if r.seq <= prev_seq {
        return Err(bad(format!(
            "precedes the chain's signed start at seq {prev_seq} (inserted, or left behind by a prune)"
        )));
    }
    if r.seq != prev_seq + 1 {
        return Err(bad(format!(
            "sequence gap: seq {} to {} missing (records deleted)",
            prev_seq + 1,
            r.seq - 1
        )));
    }
    if let Some(closed) = closed_at {
        if r.seq > closed {
            return Err(bad(format!(
                "follows the chain's signed close at seq {closed} (inserted)"
            )));
        }
    }
    let entry = r.entry().map_err(|why| bad(format!("{why} (edited)")))?;
    if record_hash(&entry, chain, r.seq, &r.prev_hash) != r.hash {
        return Err(bad(
            "content does not match its hash (a field, the seq or the chain was edited)".into(),
        ));
    }
    if r.prev_hash != prev_hash {
        return Err(bad(format!(
            "prev_hash does not link to seq {prev_seq} (a record was replaced, inserted or reordered)"
        )));
    }
    if let Some(&h) = vouched.get(&r.seq) {
        if h != r.hash {
            return Err(bad(
                "differs from the signed checkpoint for this seq (the chain was rewritten)".into(),
            ));
        }
    }
    Ok(())
}
