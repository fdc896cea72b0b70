//! Shared by the audit tests: running `sluis audit ...`, editing the database behind the
//! server's back, and building records the way a forger with the (public) hash function would.

use std::path::{Path, PathBuf};
use std::process::Command;

use sluis::audit::record_hash;
use sqlx::{Connection, Executor};

use crate::helpers::*;

/// A config for the audit commands: the test database and the test server's signing key.
pub fn audit_config(db: &TestDb) -> PathBuf {
    let path = db.dir().join("audit.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{}\"\n[auth]\nsigning_key = \"{}\"\n",
            db.url,
            db.dir().join("connector.key").display()
        ),
    )
    .expect("write audit config");
    path
}

/// Runs `sluis audit <args>`; returns exit code, stdout, stderr.
pub fn sluis_audit(args: &[&str], config: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(sluis_bin())
        .arg("audit")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("SLUIS_LOG", "error")
        .output()
        .expect("run sluis audit");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sluis audit verify`, expecting "intact"; returns stdout.
pub fn assert_verifies(config: &Path) -> String {
    let (code, out, err) = sluis_audit(&["verify"], config);
    assert_eq!(code, Some(0), "verify: {out}{err}");
    assert!(out.starts_with("audit log intact: "), "{out}");
    out
}

/// `sluis audit verify`, expecting tampering; returns the verdict line.
pub fn assert_tampered(config: &Path) -> String {
    let (code, out, err) = sluis_audit(&["verify"], config);
    assert_eq!(code, Some(1), "verify should fail: {out}{err}");
    assert!(out.starts_with("TAMPERED: "), "{out}");
    out
}

/// Runs SQL statements on the test database, behind the server's back.
pub async fn exec(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
        c.execute(sql).await.expect("sql runs");
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.expect("postgres");
        c.execute(sql).await.expect("sql runs");
    }
}

fn quote(v: Option<&str>) -> String {
    v.map_or("NULL".into(), |s| format!("'{}'", s.replace('\'', "''")))
}

/// Puts a record (back) into the table, exactly as given.
pub async fn insert_record(url: &str, r: &StoredRecord) {
    exec(url, &insert_record_sql(r)).await;
}

/// The INSERT that puts `r` into the table, exactly as given.
pub fn insert_record_sql(r: &StoredRecord) -> String {
    format!(
        "INSERT INTO audit_records (transaction_id, chain_id, seq, time_us, party_id, product, \
         action, purpose, decision, reasons, policy_id, policy_version, status, method, path, \
         trace_id, span_id, prev_hash, hash) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, \
         {}, {}, {}, {}, {}, {}, {}, {})",
        quote(Some(&r.transaction_id)),
        quote(Some(&r.chain_id)),
        r.seq,
        r.time_us,
        quote(r.party_id.as_deref()),
        quote(r.product.as_deref()),
        quote(Some(&r.action)),
        quote(r.purpose.as_deref()),
        quote(Some(&r.decision)),
        quote(Some(&r.reasons)),
        quote(r.policy_id.as_deref()),
        quote(r.policy_version.as_deref()),
        r.status,
        quote(Some(&r.method)),
        quote(Some(&r.path)),
        quote(r.trace_id.as_deref()),
        quote(r.span_id.as_deref()),
        quote(Some(&r.prev_hash)),
        quote(Some(&r.hash)),
    )
}

/// The record re-hashed after `prev_hash`, as a forger would do after editing it.
pub fn rehashed(r: &StoredRecord, prev_hash: &str) -> StoredRecord {
    let entry = r.entry().expect("a stored record reads back as its entry");
    StoredRecord {
        prev_hash: prev_hash.to_string(),
        hash: record_hash(&entry, &r.chain_id, r.seq, prev_hash),
        ..r.clone()
    }
}

/// (chain, seq, kind) of every checkpoint.
pub async fn checkpoints(url: &str) -> Vec<(String, i64, String)> {
    let sql = "SELECT chain_id, seq, kind FROM audit_checkpoints ORDER BY chain_id, seq, kind";
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
        sqlx::query_as(sql).fetch_all(&mut c).await.expect("read")
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.expect("postgres");
        sqlx::query_as(sql).fetch_all(&mut c).await.expect("read")
    }
}

/// Inserts `n` synthetic records (not a valid chain: for query and export volume only) in a
/// chain of their own, with one bulk statement.
pub async fn bulk_records(url: &str, chain: &str, party: &str, n: i64, start_us: i64) {
    let rows = if url.starts_with("sqlite:") {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO audit_records SELECT \
             printf('00000000-0000-4000-8000-%012d', i), '{chain}', i, {start_us} + i, '{party}', \
             'bulk', 'read', NULL, 'permit', '[]', NULL, NULL, 200, 'GET', '/products/bulk', \
             NULL, NULL, 'x', 'y' FROM n"
        )
    } else {
        format!(
            "INSERT INTO audit_records SELECT \
             '00000000-0000-4000-8000-' || lpad(i::text, 12, '0'), '{chain}', i, {start_us} + i, \
             '{party}', 'bulk', 'read', NULL, 'permit', '[]', NULL, NULL, 200, 'GET', \
             '/products/bulk', NULL, NULL, 'x', 'y' FROM generate_series(1, {n}) AS i"
        )
    };
    exec(
        url,
        &format!(
            "INSERT INTO audit_chains (chain_id, writer, created_us) VALUES ('{chain}', 'bulk', 0)"
        ),
    )
    .await;
    exec(url, &rows).await;
}
