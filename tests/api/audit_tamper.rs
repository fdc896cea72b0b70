//! Tamper evidence: every kind of edit to the stored log, made directly in the database, is found
//! by `sluis audit verify`, which names the first bad record; undoing the edit makes it pass again.

use crate::audit_support::*;
use crate::both_databases;
use crate::helpers::*;

both_databases!(
    verify_detects_every_kind_of_tampering,
    checkpoints_are_written_by_count_interval_and_shutdown,
    verify_cannot_run_without_the_key
);

/// 12 records, checkpoints at seq 5 and 10 (every 5 records) and the close at 12.
async fn closed_chain(backend: Backend) -> (TestDb, Vec<StoredRecord>) {
    let app = spawn_app_with(backend, |s, _| {
        s.audit.checkpoint_records = 5;
        s.audit.checkpoint_interval_ms = 3_600_000;
    })
    .await;
    for _ in 0..12 {
        // One at a time: one record per batch, so the checkpoints fall on known seqs.
        assert_eq!(app.get("/products/stadsmuur").await.status(), 200);
    }
    let db = app.stop().await;
    let records = audit_records(&db.url).await;
    assert_eq!(records.len(), 12);
    (db, records)
}

fn verdict_names(out: &str, r: &StoredRecord) {
    let who = format!(
        "chain {} seq {} transaction {}:",
        r.chain_id, r.seq, r.transaction_id
    );
    assert!(out.contains(&who), "expected `{who}` in: {out}");
}

async fn verify_detects_every_kind_of_tampering(backend: Backend) {
    let (db, recs) = closed_chain(backend).await;
    let url = db.url.clone();
    let config = audit_config(&db);
    let chain = recs[0].chain_id.clone();
    let out = assert_verifies(&config);
    assert!(out.contains("12 records in 1 chains"), "{out}");

    // 1. A field changed.
    exec(
        &url,
        &format!("UPDATE audit_records SET status = 500 WHERE chain_id = '{chain}' AND seq = 7"),
    )
    .await;
    let out = assert_tampered(&config);
    verdict_names(&out, &recs[6]);
    assert!(out.contains("content does not match its hash"), "{out}");
    exec(
        &url,
        &format!("UPDATE audit_records SET status = 200 WHERE chain_id = '{chain}' AND seq = 7"),
    )
    .await;
    assert_verifies(&config);

    // 2. A middle record deleted: the record after the gap is named.
    exec(
        &url,
        &format!("DELETE FROM audit_records WHERE chain_id = '{chain}' AND seq = 7"),
    )
    .await;
    let out = assert_tampered(&config);
    verdict_names(&out, &recs[7]);
    assert!(out.contains("sequence gap: seq 7 to 7 missing"), "{out}");
    insert_record(&url, &recs[6]).await;
    assert_verifies(&config);

    // 3a. A forged record appended, correctly hashed: the chain was closed at seq 12.
    let mut forged = recs[11].clone();
    forged.transaction_id = uuid::Uuid::now_v7().to_string();
    forged.seq = 13;
    let forged = rehashed(&forged, &recs[11].hash);
    insert_record(&url, &forged).await;
    let out = assert_tampered(&config);
    verdict_names(&out, &forged);
    assert!(
        out.contains("follows the chain's signed close at seq 12"),
        "{out}"
    );
    exec(
        &url,
        &format!(
            "DELETE FROM audit_records WHERE transaction_id = '{}'",
            forged.transaction_id
        ),
    )
    .await;
    assert_verifies(&config);

    // 3b. A forged chain, correctly hashed, but not opened by a key holder.
    exec(
        &url,
        "INSERT INTO audit_chains (chain_id, writer, created_us) VALUES ('forged', 'x', 0)",
    )
    .await;
    let mut fake = recs[0].clone();
    fake.chain_id = "forged".into();
    fake.transaction_id = uuid::Uuid::now_v7().to_string();
    let fake = rehashed(&fake, sluis::audit::GENESIS_HASH);
    insert_record(&url, &fake).await;
    let out = assert_tampered(&config);
    assert!(out.contains("chain forged seq 0"), "{out}");
    assert!(out.contains("no signed start"), "{out}");
    exec(&url, "DELETE FROM audit_records WHERE chain_id = 'forged'; DELETE FROM audit_chains WHERE chain_id = 'forged'").await;
    assert_verifies(&config);

    // 3c. A forged chain that was never registered: no row in audit_chains. PostgreSQL has no
    // foreign key to refuse it, and SQLite's is no obstacle to whoever edits the file.
    let mut stray = recs[0].clone();
    stray.chain_id = "stray".into();
    stray.transaction_id = uuid::Uuid::now_v7().to_string();
    let stray = rehashed(&stray, sluis::audit::GENESIS_HASH);
    let unguarded = if url.starts_with("sqlite:") {
        "PRAGMA foreign_keys = OFF; "
    } else {
        ""
    };
    exec(&url, &format!("{unguarded}{}", insert_record_sql(&stray))).await;
    let out = assert_tampered(&config);
    assert!(out.contains("chain stray seq 0"), "{out}");
    assert!(out.contains("no signed start"), "{out}");
    exec(&url, "DELETE FROM audit_records WHERE chain_id = 'stray'").await;
    assert_verifies(&config);

    // 4. Two records' seq swapped.
    let swap = format!(
        "UPDATE audit_records SET seq = -1 WHERE chain_id = '{chain}' AND seq = 7; \
         UPDATE audit_records SET seq = 7 WHERE chain_id = '{chain}' AND seq = 8; \
         UPDATE audit_records SET seq = 8 WHERE chain_id = '{chain}' AND seq = -1"
    );
    exec(&url, &swap).await;
    let out = assert_tampered(&config);
    assert!(
        out.contains(&format!(
            "chain {chain} seq 7 transaction {}:",
            recs[7].transaction_id
        )),
        "the record now at seq 7 is named: {out}"
    );
    exec(&url, &swap).await;
    assert_verifies(&config);

    // 5. The tail deleted after a checkpoint: checkpoints at 10 and 12 vouch for it.
    exec(
        &url,
        &format!("DELETE FROM audit_records WHERE chain_id = '{chain}' AND seq >= 9"),
    )
    .await;
    let out = assert_tampered(&config);
    assert!(
        out.contains(&format!("chain {chain} seq 9 transaction (missing):")),
        "{out}"
    );
    assert!(out.contains("tail removed"), "{out}");
    for r in &recs[8..] {
        insert_record(&url, r).await;
    }
    assert_verifies(&config);

    // 6. A rewrite of the chain from seq 7 on, every hash recomputed: the signed checkpoint at
    //    seq 10 no longer matches.
    let mut prev = recs[5].hash.clone();
    exec(
        &url,
        &format!("DELETE FROM audit_records WHERE chain_id = '{chain}' AND seq >= 7"),
    )
    .await;
    for r in &recs[6..] {
        let mut edited = r.clone();
        edited.status = 500;
        let edited = rehashed(&edited, &prev);
        prev.clone_from(&edited.hash);
        insert_record(&url, &edited).await;
    }
    let out = assert_tampered(&config);
    verdict_names(&out, &recs[9]);
    assert!(out.contains("differs from the signed checkpoint"), "{out}");
    exec(
        &url,
        &format!("DELETE FROM audit_records WHERE chain_id = '{chain}' AND seq >= 7"),
    )
    .await;
    for r in &recs[6..] {
        insert_record(&url, r).await;
    }
    assert_verifies(&config);

    // 7. A checkpoint edited to vouch for something else: its signature no longer covers it.
    exec(
        &url,
        &format!(
            "UPDATE audit_checkpoints SET hash = '{}' WHERE chain_id = '{chain}' AND seq = 10",
            recs[8].hash
        ),
    )
    .await;
    let out = assert_tampered(&config);
    assert!(out.contains(&format!("chain {chain} seq 10")), "{out}");
    assert!(out.contains("differs from what was signed"), "{out}");
    exec(
        &url,
        &format!(
            "UPDATE audit_checkpoints SET hash = '{}' WHERE chain_id = '{chain}' AND seq = 10",
            recs[9].hash
        ),
    )
    .await;
    assert_verifies(&config);
    db.drop_db().await;
}

async fn checkpoints_are_written_by_count_interval_and_shutdown(backend: Backend) {
    let app = spawn_app_with(backend, |s, _| {
        s.audit.checkpoint_records = 1_000_000;
        s.audit.checkpoint_interval_ms = 300;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.get("/products/wijken").await.status(), 200);
    }
    // Idle: the interval checkpoint vouches for the three records without another request.
    let mut waited = 0;
    loop {
        let cps = checkpoints(&app.db.url).await;
        if cps
            .iter()
            .any(|(_, seq, kind)| kind == "interval" && *seq == 3)
        {
            assert!(
                cps.iter()
                    .any(|(_, seq, kind)| kind == "genesis" && *seq == 0)
            );
            break;
        }
        assert!(waited < 50, "no interval checkpoint: {cps:?}");
        waited += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let db = app.stop().await;
    let cps = checkpoints(&db.url).await;
    assert!(
        cps.iter()
            .any(|(_, seq, kind)| kind == "shutdown" && *seq == 3),
        "a clean stop closes the chain: {cps:?}"
    );
    let out = assert_verifies(&audit_config(&db));
    assert!(out.contains("3 records in 1 chains"), "{out}");
    assert!(out.contains("(1 chains closed cleanly)"), "{out}");
    db.drop_db().await;
}

async fn verify_cannot_run_without_the_key(backend: Backend) {
    let (db, _) = closed_chain(backend).await;
    let config = audit_config(&db);
    let (code, _, err) = sluis_audit(&["verify", "--key", "/nonexistent/key.pem"], &config);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("sluis: checkpoint key: /nonexistent/key.pem"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    // Another key: every checkpoint is refused.
    let other = db.dir().join("other.key");
    sluis::auth::ensure_connector_key(&other).expect("key");
    let (code, out, _) = sluis_audit(
        &["verify", "--key", other.to_str().expect("utf-8 path")],
        &config,
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("signature does not verify"), "{out}");
    db.drop_db().await;
}
