//! The `consumers` table: registration, lookup, listing and changes. On PostgreSQL every change
//! is announced with NOTIFY in the same transaction, so other replicas drop their cached copy the
//! moment it commits.

use super::{Db, StoreError};
use crate::consumer::{Consumer, ConsumerStatus};

/// The channel on which consumer changes are announced (payload: the party id).
pub const CHANGES_CHANNEL: &str = "sluis_consumers";

#[derive(sqlx::FromRow)]
struct Row {
    party_id: String,
    name: String,
    certificate: Option<String>,
    groups: String,
    attributes: String,
    status: String,
    created_us: i64,
    updated_us: i64,
}

impl Row {
    fn into_consumer(self) -> Result<Consumer, StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("consumer {}: {what}", self.party_id));
        Ok(Consumer {
            party_id: crate::auth::PartyId::parse(&self.party_id)
                .map_err(|_| corrupt("party id"))?,
            groups: serde_json::from_str(&self.groups).map_err(|_| corrupt("groups"))?,
            attributes: serde_json::from_str(&self.attributes)
                .map_err(|_| corrupt("attributes"))?,
            status: ConsumerStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            name: self.name,
            certificate: self.certificate,
            created_us: self.created_us,
            updated_us: self.updated_us,
        })
    }
}

const COLUMNS: &str =
    "party_id, name, certificate, groups, attributes, status, created_us, updated_us";

/// Inserts a new consumer; `Ok(false)` when the party id is already registered.
pub async fn insert(db: &Db, c: &Consumer) -> Result<bool, StoreError> {
    let sql = "INSERT INTO consumers (party_id, name, certificate, groups, status, created_us, updated_us, attributes) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (party_id) DO NOTHING";
    let groups = serde_json::to_string(&c.groups).unwrap_or_else(|_| "[]".into());
    let attributes = serde_json::to_string(&c.attributes).unwrap_or_else(|_| "{}".into());
    let n = on_pool_write!(db, p => sqlx::query(sql)
        .bind(c.party_id.as_str())
        .bind(&c.name)
        .bind(&c.certificate)
        .bind(&groups)
        .bind(c.status.as_str())
        .bind(c.created_us)
        .bind(c.updated_us)
        .bind(&attributes)
        .execute(p)
        .await?
        .rows_affected());
    Ok(n == 1)
}

pub async fn get(db: &Db, party_id: &str) -> Result<Option<Consumer>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM consumers WHERE party_id = $1");
    let row: Option<Row> =
        on_pool!(db, p => sqlx::query_as(&sql).bind(party_id).fetch_optional(p).await?);
    row.map(Row::into_consumer).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<Consumer>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM consumers ORDER BY party_id");
    let rows: Vec<Row> = on_pool!(db, p => sqlx::query_as(&sql).fetch_all(p).await?);
    rows.into_iter().map(Row::into_consumer).collect()
}

/// Replaces the mutable fields of an existing consumer; `Ok(false)` when it does not exist.
pub async fn update(db: &Db, c: &Consumer) -> Result<bool, StoreError> {
    let sql = "UPDATE consumers SET name = $2, certificate = $3, groups = $4, status = $5, \
               updated_us = $6, attributes = $7 WHERE party_id = $1";
    let groups = serde_json::to_string(&c.groups).unwrap_or_else(|_| "[]".into());
    let attributes = serde_json::to_string(&c.attributes).unwrap_or_else(|_| "{}".into());
    match db {
        Db::Sqlite(p, turn) => {
            let _turn = turn.take().await?;
            let n = sqlx::query(sql)
                .bind(c.party_id.as_str())
                .bind(&c.name)
                .bind(&c.certificate)
                .bind(&groups)
                .bind(c.status.as_str())
                .bind(c.updated_us)
                .bind(&attributes)
                .execute(p)
                .await?
                .rows_affected();
            Ok(n == 1)
        }
        Db::Postgres(pg) => {
            use sqlx::Connection as _;
            let mut conn = pg.acquire().await?;
            let mut tx = conn.begin().await?;
            let n = sqlx::query(sql)
                .bind(c.party_id.as_str())
                .bind(&c.name)
                .bind(&c.certificate)
                .bind(&groups)
                .bind(c.status.as_str())
                .bind(c.updated_us)
                .bind(&attributes)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Delivered to every listening replica when (and only if) the change commits.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGES_CHANNEL)
                .bind(c.party_id.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        }
    }
}
