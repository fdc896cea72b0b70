//! The `usage_counters` table: uses per consumer, product and counting window. A request reserves
//! its use with one atomic increment before the policy is asked (so concurrent requests on any
//! replica see distinct counts), and gives it back when it is not served.

use super::{Db, StoreError};

/// One counter: whose uses of what, in which window.
#[derive(Debug, Clone)]
pub struct CounterKey<'a> {
    pub party_id: &'a str,
    pub target: &'a str,
    pub window_key: &'a str,
    pub window_start: i64,
}

/// Counts one more use and returns how many uses there were before it.
pub async fn reserve(db: &Db, k: &CounterKey<'_>) -> Result<u64, StoreError> {
    let sql = "INSERT INTO usage_counters (party_id, target, window_key, window_start, uses) \
               VALUES ($1, $2, $3, $4, 1) \
               ON CONFLICT (party_id, target, window_key, window_start) \
               DO UPDATE SET uses = usage_counters.uses + 1 RETURNING uses";
    let uses: i64 = on_pool_write!(db, p => {
        sqlx::query_scalar(sql)
            .bind(k.party_id)
            .bind(k.target)
            .bind(k.window_key)
            .bind(k.window_start)
            .fetch_one(p)
            .await?
    });
    Ok(u64::try_from(uses - 1).unwrap_or(0))
}

/// Gives back a use reserved by a request that was not served.
pub async fn release(db: &Db, k: &CounterKey<'_>) -> Result<(), StoreError> {
    let sql = "UPDATE usage_counters SET uses = uses - 1 WHERE party_id = $1 AND target = $2 \
               AND window_key = $3 AND window_start = $4 AND uses > 0";
    on_pool_write!(db, p => {
        sqlx::query(sql)
            .bind(k.party_id)
            .bind(k.target)
            .bind(k.window_key)
            .bind(k.window_start)
            .execute(p)
            .await?;
    });
    Ok(())
}
