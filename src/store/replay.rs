//! The `assertion_jti` table: every client-assertion id is accepted once. The primary key makes
//! the check atomic across replicas; rows are removed once the assertion has expired anyway.

use super::{Db, StoreError};

/// Records `jti` for `party_id`; `Ok(false)` when it was seen before (a replay).
pub async fn remember(
    db: &Db,
    party_id: &str,
    jti: &str,
    expires_us: i64,
    now_us: i64,
) -> Result<bool, StoreError> {
    let insert = "INSERT INTO assertion_jti (party_id, jti, expires_us) VALUES ($1, $2, $3) \
                  ON CONFLICT (party_id, jti) DO NOTHING";
    let purge = "DELETE FROM assertion_jti WHERE expires_us < $1";
    // One transaction: one commit (one flush) for both.
    let n = on_pool_write!(db, p => {
        let mut tx = p.begin().await?;
        sqlx::query(purge).bind(now_us).execute(&mut *tx).await?;
        let n = sqlx::query(insert)
            .bind(party_id)
            .bind(jti)
            .bind(expires_us)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        n
    });
    Ok(n == 1)
}
