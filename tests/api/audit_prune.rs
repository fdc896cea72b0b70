//! Retention: `sluis audit prune --before` removes old records, leaves signed prune checkpoints
//! so that the remainder still verifies, and is itself audited. Removing what a prune
//! checkpoint vouches for is still detected.

use crate::audit_support::*;
use crate::both_databases;
use crate::helpers::*;

both_databases!(prune_leaves_a_verifiable_remainder_and_is_audited);

async fn prune_leaves_a_verifiable_remainder_and_is_audited(backend: Backend) {
    let app = spawn_app_with(backend, |s, _| s.audit.checkpoint_records = 4).await;
    let mut old = Vec::new();
    for _ in 0..20 {
        old.push(txid(&app.get("/products/stadsmuur").await));
    }
    let db = app.stop().await;
    // A second run: another chain, all of it newer than the cutoff.
    let settings = test_settings(&db);
    let app = start(db, settings).await;
    let mut new = Vec::new();
    for _ in 0..5 {
        new.push(txid(&app.get("/products/wijken").await));
    }
    let db = app.stop().await;
    let config = audit_config(&db);
    let before = audit_records(&db.url).await;
    let first = before.iter().find(|r| r.transaction_id == old[0]).unwrap();
    let chain = first.chain_id.clone();
    let cut = before.iter().find(|r| r.transaction_id == old[10]).unwrap();
    let cutoff = sluis::audit::rfc3339(cut.time_us);

    for bad in ["last tuesday", "2999-01-01"] {
        let (code, _, err) = sluis_audit(&["prune", "--before", bad], &config);
        assert_eq!(code, Some(2), "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(
        audit_records(&db.url).await.len(),
        25,
        "nothing removed by a refused prune"
    );

    let (code, out, err) = sluis_audit(&["prune", "--before", &cutoff], &config);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("pruned 10 records from 1 chains"), "{out}");
    let after = audit_records(&db.url).await;
    let ids: std::collections::HashSet<&str> =
        after.iter().map(|r| r.transaction_id.as_str()).collect();
    assert!(
        old[..10].iter().all(|id| !ids.contains(id.as_str())),
        "old records removed"
    );
    assert!(
        old[10..]
            .iter()
            .chain(&new)
            .all(|id| ids.contains(id.as_str())),
        "the rest kept"
    );
    let prune = after
        .iter()
        .find(|r| r.action == "audit.prune")
        .expect("the prune is audited");
    assert_eq!(prune.reasons, format!("[\"before={cutoff}\"]"));
    let out = assert_verifies(&config);
    assert!(
        out.contains("16 records in 3 chains"),
        "10 + 5 + the prune's own: {out}"
    );

    // What the prune checkpoint vouches for is still guarded: the first kept record...
    let first_kept = after
        .iter()
        .find(|r| r.transaction_id == old[10])
        .unwrap()
        .clone();
    assert_eq!(first_kept.seq, 11);
    exec(
        &db.url,
        &format!("DELETE FROM audit_records WHERE chain_id = '{chain}' AND seq = 11"),
    )
    .await;
    let out = assert_tampered(&config);
    assert!(out.contains(&format!("chain {chain} seq 12")), "{out}");
    assert!(out.contains("sequence gap: seq 11 to 11 missing"), "{out}");
    insert_record(&db.url, &first_kept).await;
    assert_verifies(&config);

    // ...and without its prune checkpoint the chain has no signed start at all.
    exec(
        &db.url,
        &format!("DELETE FROM audit_checkpoints WHERE chain_id = '{chain}' AND kind = 'prune'"),
    )
    .await;
    let out = assert_tampered(&config);
    assert!(out.contains("no signed start"), "{out}");
    db.drop_db().await;
}
