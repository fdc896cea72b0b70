//! Graceful shutdown: SIGTERM lets in-flight requests finish and flushes the audit queue, so every
//! response a client received has its record.

use std::time::Duration;

use crate::both_databases;
use crate::helpers::*;

both_databases!(sigterm_drains_and_loses_no_audit_record);

async fn sigterm_drains_and_loses_no_audit_record(backend: Backend) {
    let db = TestDb::new(backend).await;
    let products = format!(
        "[[products]]\nid = \"oorlogsschade\"\naccess = \"open\"\nsource = {{ kind = \"file\", path = \"{}\" }}\n",
        demo_file("wo2_oorlogsschade.geojson").display()
    );
    let process = spawn_process(&db, &products).await;
    let client = reqwest::Client::new();
    let url = format!("{}/products/oorlogsschade", process.public);

    // Clients keep requesting until the server goes away.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let mut served = Vec::new();
            loop {
                match client.get(&url).send().await {
                    Ok(res) if res.status() == 200 => {
                        let id = txid(&res);
                        // A body cut short is not a served response.
                        if res.bytes().await.is_ok_and(|b| b.len() == 682159) {
                            served.push(id);
                        }
                    }
                    Ok(res) => panic!(
                        "unexpected status {}: {}",
                        res.status(),
                        res.text().await.unwrap_or_default()
                    ),
                    Err(_) => return served,
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    process.signal(libc::SIGTERM);
    let (code, stderr) = tokio::task::spawn_blocking(move || process.wait())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "clean exit after SIGTERM; stderr: {stderr}");

    let mut served = Vec::new();
    while let Some(r) = tasks.join_next().await {
        served.extend(r.unwrap());
    }
    assert!(
        served.len() > 10,
        "load was running when SIGTERM came ({} served)",
        served.len()
    );
    let records = audit_records(&db.url).await;
    let stored: std::collections::HashSet<_> =
        records.iter().map(|r| r.transaction_id.as_str()).collect();
    for id in &served {
        assert!(
            stored.contains(id.as_str()),
            "served transaction {id} has no audit record"
        );
    }
    assert_chains_intact(&records);
    db.drop_db().await;
}
