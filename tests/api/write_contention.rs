//! Writes beside a busy audit log: while open requests keep the audit writer committing batch
//! after batch, token requests (an assertion id stored for replay protection), admin changes and
//! the readiness check still get their write through, within a database timeout far shorter than
//! SQLite's lock retries used to need under that load (they waited up to seconds, and timed out).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::Utc;
use reqwest::Method;
use serde_json::json;

use crate::auth_support::*;
use crate::both_databases;
use crate::helpers::*;

both_databases!(writes_get_through_beside_a_busy_audit_log);

async fn writes_get_through_beside_a_busy_audit_log(backend: Backend) {
    let pki = pki();
    let trust = pki.dir.path().join("trust");
    let app = spawn_app_with(backend, |s, _| {
        s.auth.trust_anchors = trust;
        s.database.timeout_ms = 250;
    })
    .await;
    app.register(CLIENT_ID, &["urn:sluis:group:gemeenten"], None)
        .await;

    // The load: open requests from 32 clients at once, each one an audit record.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..32 {
        let (client, url) = (
            app.client.clone(),
            format!("{}/products/stadsmuur", app.public),
        );
        let (stop, served) = (stop.clone(), served.clone());
        load.push(tokio::spawn(async move {
            let mut refused = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // A pooled connection the server closed after its keep-alive, reused at that
                // moment, fails on the client's side; the next request opens a new one.
                let Ok(res) = client.get(&url).send().await else {
                    continue;
                };
                if res.status() == 200 {
                    res.bytes().await.expect("body");
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    let status = res.status();
                    refused.push(format!("{status} {}", res.text().await.unwrap_or_default()));
                }
            }
            refused
        }));
    }
    while served.load(Ordering::Relaxed) < 500 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let mut failures = Vec::new();
    for round in 0..40 {
        let assertion = rs256(
            &rs256_header(&[&pki.leaf, &pki.root]),
            &claims(Utc::now()),
            &keys().leaf,
        );
        let res = app.token_request(CLIENT_ID, &assertion).await;
        if res.status() != 200 {
            failures.push(format!(
                "token {round}: {} {}",
                res.status(),
                res.text().await.unwrap_or_default()
            ));
        }
        if round % 4 == 0 {
            let res = app
                .admin(
                    Method::PATCH,
                    &format!("/admin/consumers/{CLIENT_ID}"),
                    Some(json!({"name": format!("Consumer, change {round}")})),
                )
                .await;
            if res.status() != 200 {
                failures.push(format!("admin change {round}: {}", res.status()));
            }
            let res = app
                .client
                .get(format!("{}/health/ready", app.admin))
                .send()
                .await
                .expect("readiness");
            if res.status() != 200 {
                failures.push(format!(
                    "readiness {round}: {}",
                    res.text().await.unwrap_or_default()
                ));
            }
        }
    }
    let during = served.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut refused = Vec::new();
    for task in load {
        refused.extend(task.await.expect("load task"));
    }
    assert!(
        failures.is_empty(),
        "writes that did not get through: {failures:#?}"
    );
    assert!(refused.is_empty(), "open requests refused: {refused:#?}");
    assert!(
        during > 1000,
        "the load kept the audit log busy ({during} requests)"
    );
    app.finish().await;
}
