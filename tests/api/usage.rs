//! Usage counts (`count` constraints): at most N uses per consumer per day, exact under concurrent
//! requests, and across two replicas sharing one PostgreSQL.

use chrono::Utc;
use serde_json::Value;

use crate::auth_support::*;
use crate::both_databases;
use crate::helpers::*;

both_databases!(count_limit_holds_exactly_under_concurrency);

const LIMIT: usize = 3;

async fn count_limit_holds_exactly_under_concurrency(backend: Backend) {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/oorlogsschade.json"),
    )
    .unwrap();
    let mut policy: Value = serde_json::from_str(&demo).unwrap();
    policy["permission"][0]["constraint"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"leftOperand": "count", "operator": "lt", "rightOperand": LIMIT, "unit": "P1D"}));
    std::fs::write(
        dir.path().join("oorlogsschade.json"),
        serde_json::to_vec(&policy).unwrap(),
    )
    .unwrap();
    let trust = pki.dir.path().join("trust");
    let policies = dir.path().to_path_buf();
    let a = spawn_app_with(backend, |s, _| {
        s.auth.trust_anchors = trust.clone();
        s.admin.policies_dir = Some(policies.clone());
    })
    .await;
    let b = match backend {
        Backend::Postgres => Some(
            spawn_replica(&a, |s| {
                s.auth.trust_anchors = trust.clone();
                s.admin.policies_dir = Some(policies.clone());
            })
            .await,
        ),
        Backend::Sqlite => None,
    };
    a.register(CLIENT_ID, &["urn:sluis:group:gemeenten"], None)
        .await;
    let assertion = rs256(
        &rs256_header(&[&pki.leaf, &pki.root]),
        &claims(Utc::now()),
        &keys().leaf,
    );
    let token: Value = a
        .token_request(CLIENT_ID, &assertion)
        .await
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let bases: Vec<String> = std::iter::once(&a)
        .chain(b.as_ref())
        .map(|s| s.public.clone())
        .collect();

    // Refused requests do not use up the allowance.
    for _ in 0..2 {
        let res = a
            .client
            .get(format!("{}/products/oorlogsschade", a.public))
            .bearer_auth(&token)
            .header("Sluis-Purpose", "urn:sluis:purpose:commercieel")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let url = format!("{}/products/oorlogsschade", bases[i % bases.len()]);
        let (client, token) = (a.client.clone(), token.clone());
        tasks.spawn(async move {
            let res = client
                .get(url)
                .bearer_auth(token)
                .header("Sluis-Purpose", "urn:sluis:purpose:erfgoedbeheer")
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            (status, body)
        });
    }
    let mut permitted = 0;
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            200 => permitted += 1,
            403 => assert!(body.contains("count"), "refused for the count: {body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        permitted,
        LIMIT,
        "exactly {LIMIT} uses per day, across {} server(s)",
        bases.len()
    );
    if let Some(b) = b {
        b.stop().await;
    }
    a.finish().await;
}
