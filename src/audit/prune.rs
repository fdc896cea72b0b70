//! Retention: removes old records and leaves, per chain, a signed prune checkpoint naming the
//! last removed record's seq and hash, so that the remaining records still verify from there.
//! Only a prefix of each chain is removed (the longest run of records older than the cutoff):
//! a chain with a hole in its middle could not be told from a tampered one.

use super::checkpoint::{CheckpointKind, CheckpointSigner, CheckpointStatement};
use super::now_us;
use super::writer::INSERT_CHECKPOINT;
use crate::store::{Db, StoreError};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    pub records_removed: u64,
    pub chains_pruned: u64,
}

/// Removes, from every chain but `except_chain`, the records before `before_us`.
pub async fn prune(
    db: &Db,
    signer: &CheckpointSigner,
    before_us: i64,
    except_chain: &str,
) -> Result<PruneReport, StoreError> {
    let chains: Vec<(String,)> = {
        let sql = "SELECT chain_id FROM audit_chains WHERE chain_id <> $1 ORDER BY chain_id";
        match db {
            Db::Sqlite(p, _) => sqlx::query_as(sql).bind(except_chain).fetch_all(p).await?,
            Db::Postgres(pg) => {
                sqlx::query_as(sql)
                    .bind(except_chain)
                    .fetch_all(&mut *pg.acquire().await?)
                    .await?
            }
        }
    };
    let mut report = PruneReport::default();
    for (chain,) in chains {
        let removed = prune_chain(db, signer, &chain, before_us).await?;
        if removed > 0 {
            report.records_removed += removed;
            report.chains_pruned += 1;
        }
    }
    Ok(report)
}

async fn prune_chain(
    db: &Db,
    signer: &CheckpointSigner,
    chain: &str,
    before_us: i64,
) -> Result<u64, StoreError> {
    // The cut: just before the chain's first record at or after the cutoff, else its end.
    let bounds = "SELECT MIN(seq), MAX(seq), \
        (SELECT MIN(seq) FROM audit_records WHERE chain_id = $1 AND time_us >= $2) \
        FROM audit_records WHERE chain_id = $1";
    let (first, last, first_kept): (Option<i64>, Option<i64>, Option<i64>) = match db {
        Db::Sqlite(p, _) => {
            sqlx::query_as(bounds)
                .bind(chain)
                .bind(before_us)
                .fetch_one(p)
                .await?
        }
        Db::Postgres(pg) => {
            sqlx::query_as(bounds)
                .bind(chain)
                .bind(before_us)
                .fetch_one(&mut *pg.acquire().await?)
                .await?
        }
    };
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(0);
    };
    let cut = first_kept.map_or(last, |s| s - 1);
    if cut < first {
        return Ok(0);
    }
    let hash_sql = "SELECT hash FROM audit_records WHERE chain_id = $1 AND seq = $2";
    let hash: Option<(String,)> = match db {
        Db::Sqlite(p, _) => {
            sqlx::query_as(hash_sql)
                .bind(chain)
                .bind(cut)
                .fetch_optional(p)
                .await?
        }
        Db::Postgres(pg) => {
            sqlx::query_as(hash_sql)
                .bind(chain)
                .bind(cut)
                .fetch_optional(&mut *pg.acquire().await?)
                .await?
        }
    };
    // A gap where the cut falls is damage that prune must not paper over with a signature.
    let Some((hash,)) = hash else {
        return Err(StoreError::Corrupt(format!(
            "chain {chain}: record {cut} is missing; run `sluis audit verify`"
        )));
    };
    let cp = signer
        .sign(CheckpointStatement {
            chain: chain.to_string(),
            seq: cut,
            hash,
            time_us: now_us(),
            kind: CheckpointKind::Prune,
        })
        .map_err(|e| StoreError::Corrupt(format!("audit checkpoint: {e}")))?;
    macro_rules! cut_chain {
        ($pool:expr) => {{
            let mut tx = $pool.begin().await?;
            sqlx::query(INSERT_CHECKPOINT)
                .bind(&cp.statement.chain)
                .bind(cp.statement.seq)
                .bind(cp.statement.kind.as_str())
                .bind(&cp.statement.hash)
                .bind(cp.statement.time_us)
                .bind(&cp.jws)
                .execute(&mut *tx)
                .await?;
            let removed = sqlx::query("DELETE FROM audit_records WHERE chain_id = $1 AND seq <= $2")
                .bind(chain)
                .bind(cut)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Checkpoints of removed records vouch for nothing any more; the close stays.
            sqlx::query(
                "DELETE FROM audit_checkpoints WHERE chain_id = $1 AND seq < $2 AND kind <> 'shutdown'",
            )
            .bind(chain)
            .bind(cut)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            removed
        }};
    }
    Ok(match db {
        Db::Sqlite(p, turn) => {
            let _turn = turn.take().await?;
            cut_chain!(p)
        }
        Db::Postgres(pg) => {
            use sqlx::Connection as _;
            let mut conn = pg.acquire().await?;
            cut_chain!(conn)
        }
    })
}
