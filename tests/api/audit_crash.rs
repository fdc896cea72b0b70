//! Crash safety: the real binary killed with SIGKILL under concurrent load. Every transaction id
//! a client received a 2xx for is in the log after the restart, and every chain still verifies.

use std::time::Duration;

use crate::audit_support::*;
use crate::both_databases;
use crate::helpers::*;

both_databases!(sigkill_under_load_loses_no_acknowledged_record);

async fn sigkill_under_load_loses_no_acknowledged_record(backend: Backend) {
    let db = TestDb::new(backend).await;
    let products = format!(
        "[audit]\ncheckpoint_records = 50\n\
         [[products]]\nid = \"stadsmuur\"\naccess = \"open\"\nsource = {{ kind = \"file\", path = \"{}\" }}\n",
        demo_file("stadsmuur.geojson").display()
    );
    let process = spawn_process(&db, &products).await;
    let client = reqwest::Client::new();
    let url = format!("{}/products/stadsmuur", process.public);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let mut acknowledged = Vec::new();
            loop {
                match client.get(&url).send().await {
                    // The 2xx status line is the acknowledgement, whatever happens to the body.
                    Ok(res) if res.status().is_success() => acknowledged.push(txid(&res)),
                    Ok(res) => panic!("unexpected status {}", res.status()),
                    Err(_) => return acknowledged,
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    process.signal(libc::SIGKILL);
    let mut acknowledged = Vec::new();
    while let Some(r) = tasks.join_next().await {
        acknowledged.extend(r.expect("client task"));
    }
    let (code, _) = process.wait();
    assert_eq!(code, None, "killed by a signal");
    assert!(acknowledged.len() > 100, "load ran: {}", acknowledged.len());

    // Restart on the same database: a new chain; the old one stays as it was left.
    let process = spawn_process(&db, &products).await;
    let res = client
        .get(format!("{}/products/stadsmuur", process.public))
        .send()
        .await
        .expect("served after restart");
    assert_eq!(res.status(), 200);
    let stored: std::collections::HashSet<String> = audit_records(&db.url)
        .await
        .into_iter()
        .map(|r| r.transaction_id)
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert!(stored.contains(&txid(&res)));

    process.signal(libc::SIGTERM);
    let (code, err) = process.wait();
    assert_eq!(code, Some(0), "{err}");
    let out = assert_verifies(&audit_config(&db));
    assert!(out.contains("in 2 chains"), "{out}");
    assert!(
        out.contains("(1 chains closed cleanly)"),
        "the restarted chain was not closed by SIGTERM: {out}\nconnector's stderr:\n{err}"
    );
    db.drop_db().await;
}
