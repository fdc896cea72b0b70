//! The audit record: its contents, its chain, and group commit under concurrency.

use crate::both_databases;
use crate::helpers::*;

both_databases!(
    record_holds_what_happened,
    concurrent_requests_share_batches_and_chain
);

async fn record_holds_what_happened(backend: Backend) {
    let app = spawn_app(backend).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let before = chrono::Utc::now().timestamp_micros();
    let res = app
        .client
        .get(format!("{}/products/stadsmuur?x=1", app.public))
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = txid(&res);
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "transaction id is a UUID"
    );
    let rec = audit_record(&app.db.url, &id).await;
    assert!(rec.time_us >= before && rec.time_us <= chrono::Utc::now().timestamp_micros());
    assert_eq!(rec.party_id, None, "open products are served anonymously");
    assert_eq!(rec.action, "read");
    assert_eq!(rec.method, "GET");
    assert_eq!(rec.path, "/products/stadsmuur");
    assert_eq!(rec.decision, "permit");
    assert_eq!(rec.reasons, "[]");
    assert_eq!(rec.status, 200);
    assert_eq!(
        rec.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let span = rec.span_id.clone().unwrap();
    assert_eq!(span.len(), 16);
    assert_ne!(
        span, "00f067aa0ba902b7",
        "our own span, child of the caller's"
    );
    assert_eq!(rec.seq, 1);
    assert_eq!(rec.prev_hash, sluis::audit::GENESIS_HASH);
    assert_eq!(rec.hash.len(), 64);

    let second = app.get("/products/wijken").await;
    let rec2 = audit_record(&app.db.url, &txid(&second)).await;
    assert_eq!(rec2.chain_id, rec.chain_id);
    assert_eq!(rec2.seq, 2);
    assert_eq!(rec2.prev_hash, rec.hash);
    assert_ne!(
        rec2.trace_id, rec.trace_id,
        "a request without traceparent starts a trace"
    );
    assert_chains_intact(&audit_records(&app.db.url).await);
    app.finish().await;
}

async fn concurrent_requests_share_batches_and_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    let n = 300;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let client = app.client.clone();
        let url = format!(
            "{}/products/{}",
            app.public,
            if i % 3 == 0 { "nope" } else { "stadsmuur" }
        );
        tasks.spawn(async move {
            let res = client.get(url).send().await.unwrap();
            (res.status().as_u16(), txid(&res))
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(r) = tasks.join_next().await {
        let (status, id) = r.unwrap();
        assert!(status == 200 || status == 404);
        assert!(ids.insert(id), "transaction ids are unique");
    }
    let records = audit_records(&app.db.url).await;
    assert_eq!(records.len(), n, "one record per request");
    for r in &records {
        assert!(ids.contains(&r.transaction_id));
    }
    assert_chains_intact(&records);
    app.finish().await;
}
