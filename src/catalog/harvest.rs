//! The harvested datasets as stored: one row per product harvested from the portal, with the
//! portal's record, kept after withdrawal (marked) so that a restart serves the last good catalog
//! even when the portal is down, and so that the `sluis catalog sync` command and every server see
//! the same state. Each write is conditional, so of two writers only one reports the change.

use crate::store::{Db, on_pool, on_pool_write};

use super::ckan::Package;

#[derive(Debug, Clone)]
pub struct HarvestedRow {
    pub product_id: String,
    pub ckan_id: String,
    pub modified: String,
    pub package: Package,
}

const SELECT_ACTIVE: &str = "SELECT product_id, ckan_id, modified, record FROM harvested_datasets \
    WHERE withdrawn_us IS NULL ORDER BY product_id";

/// Inserts a new row or revives a withdrawn one; an active row is left alone.
const UPSERT: &str = "INSERT INTO harvested_datasets \
    (product_id, ckan_id, ckan_name, modified, record, harvested_us, withdrawn_us) \
    VALUES ($1, $2, $3, $4, $5, $6, NULL) \
    ON CONFLICT (product_id) DO UPDATE SET ckan_id = excluded.ckan_id, \
    ckan_name = excluded.ckan_name, modified = excluded.modified, record = excluded.record, \
    harvested_us = excluded.harvested_us, withdrawn_us = NULL \
    WHERE harvested_datasets.withdrawn_us IS NOT NULL";

const UPDATE: &str = "UPDATE harvested_datasets SET ckan_id = $2, ckan_name = $3, modified = $4, \
    record = $5, harvested_us = $6 WHERE product_id = $1 AND withdrawn_us IS NULL AND modified <> $4";

const WITHDRAW: &str = "UPDATE harvested_datasets SET withdrawn_us = $2 \
    WHERE product_id = $1 AND withdrawn_us IS NULL";

pub async fn active(db: &Db) -> Result<Vec<HarvestedRow>, sqlx::Error> {
    let rows: Vec<(String, String, String, String)> =
        on_pool!(db, p => sqlx::query_as(SELECT_ACTIVE).fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .filter_map(|(product_id, ckan_id, modified, record)| {
            match serde_json::from_str::<Package>(&record) {
                Ok(package) => Some(HarvestedRow {
                    product_id,
                    ckan_id,
                    modified,
                    package,
                }),
                Err(e) => {
                    tracing::error!(product = %product_id, error = %e, "stored harvest record unreadable; skipped");
                    None
                }
            }
        })
        .collect())
}

/// True when this call created (or revived) the product.
pub async fn create(db: &Db, row: &HarvestedRow, now_us: i64) -> Result<bool, sqlx::Error> {
    write(db, UPSERT, row, now_us).await
}

/// True when this call changed the stored record.
pub async fn update(db: &Db, row: &HarvestedRow, now_us: i64) -> Result<bool, sqlx::Error> {
    write(db, UPDATE, row, now_us).await
}

async fn write(db: &Db, sql: &str, row: &HarvestedRow, now_us: i64) -> Result<bool, sqlx::Error> {
    let record = serde_json::to_string(&row.package).unwrap_or_else(|_| "{}".into());
    let done = on_pool_write!(db, p => sqlx::query(sql)
        .bind(&row.product_id)
        .bind(&row.ckan_id)
        .bind(&row.package.name)
        .bind(&row.modified)
        .bind(&record)
        .bind(now_us)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// True when this call withdrew the product.
pub async fn withdraw(db: &Db, product_id: &str, now_us: i64) -> Result<bool, sqlx::Error> {
    let done = on_pool_write!(db, p => sqlx::query(WITHDRAW)
        .bind(product_id)
        .bind(now_us)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done > 0)
}
