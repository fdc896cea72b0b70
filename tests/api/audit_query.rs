//! Reading the audit log: the admin's filtered, keyset-paged queries and streaming export, and a
//! consumer's view of its own records on the public listener.

use chrono::Utc;
use reqwest::Method;
use serde_json::Value;

use crate::audit_support::*;
use crate::auth_support::*;
use crate::both_databases;
use crate::helpers::*;

both_databases!(
    admin_queries_filter_and_page_newest_first,
    admin_query_parameters_are_validated,
    export_streams_ndjson_and_csv,
    consumers_see_only_their_own_records,
    pages_agree_with_a_full_sort,
);

/// 6 permitted reads, 4 unknown products, 3 restricted without a token; their ids in order.
async fn some_traffic(app: &TestApp) -> Vec<String> {
    let (s, n, o) = (
        "/products/stadsmuur",
        "/products/nope",
        "/products/oorlogsschade",
    );
    let mut ids = Vec::new();
    for path in [s, s, n, s, n, s, o, s, n, o, s, n, o] {
        ids.push(txid(&app.get(path).await));
    }
    ids
}

async fn admin_get(app: &TestApp, path_and_query: &str) -> (u16, Value) {
    let res = app.admin(Method::GET, path_and_query, None).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn ids_of(v: &Value) -> Vec<String> {
    v["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["transaction_id"].as_str().expect("id").to_string())
        .collect()
}

async fn admin_queries_filter_and_page_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = some_traffic(&app).await;
    let stored = audit_records(&app.db.url).await;
    let count = |f: &dyn Fn(&StoredRecord) -> bool| stored.iter().filter(|r| f(r)).count();

    // Walk every page of 5: all 13 records, each once, newest first.
    let mut seen = Vec::new();
    let mut next = String::new();
    let mut pages = 0;
    loop {
        let q = if next.is_empty() {
            "/admin/audit?limit=5".to_string()
        } else {
            format!("/admin/audit?limit=5&after={next}")
        };
        let (status, body) = admin_get(&app, &q).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(ids_of(&body));
        pages += 1;
        match body["next"].as_str() {
            Some(n) => next = n.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(
        seen, newest_first,
        "keyset pages: every record once, newest first"
    );

    // The record's fields, by the contract's names.
    let (_, one) = admin_get(&app, &format!("/admin/audit/{}", ids[0])).await;
    for field in [
        "transaction_id",
        "time",
        "party_id",
        "product",
        "action",
        "purpose",
        "decision",
        "reasons",
        "policy_id",
        "policy_version",
        "status",
        "trace_id",
        "span_id",
        "chain",
        "seq",
        "prev_hash",
        "hash",
    ] {
        assert!(one.get(field).is_some(), "field {field} in {one}");
    }
    assert_eq!(one["transaction_id"], ids[0].as_str());
    assert_eq!(one["product"], "stadsmuur");
    assert_eq!(one["decision"], "permit");
    assert!(one["reasons"].is_array());
    assert!(chrono::DateTime::parse_from_rfc3339(one["time"].as_str().unwrap()).is_ok());
    assert_eq!(one["seq"], 1);

    // Filters.
    let (_, b) = admin_get(&app, "/admin/audit?product=stadsmuur").await;
    assert_eq!(
        ids_of(&b).len(),
        count(&|r| r.product.as_deref() == Some("stadsmuur"))
    );
    assert!(
        b["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["product"] == "stadsmuur")
    );
    let (_, b) = admin_get(&app, "/admin/audit?decision=deny").await;
    assert_eq!(ids_of(&b).len(), 7);
    assert!(
        b["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["decision"] == "deny")
    );
    let (_, b) = admin_get(&app, "/admin/audit?product=oorlogsschade&decision=deny").await;
    assert_eq!(ids_of(&b).len(), 3);
    let (_, b) = admin_get(&app, "/admin/audit?party_id=admin&action=x").await;
    assert_eq!(
        b["code"], "BAD_REQUEST",
        "unknown parameters are refused: {b}"
    );
    let (_, b) = admin_get(&app, "/admin/audit?party_id=admin").await;
    assert!(!ids_of(&b).is_empty(), "the admin's own reads are audited");
    assert!(
        b["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["party_id"] == "admin")
    );

    // An unknown transaction (recorded as a denied read from here on).
    let res = app
        .admin(
            Method::GET,
            &format!("/admin/audit/{}", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(res.status(), 404);

    // Time range: since inclusive, until exclusive.
    let time_of = |i: usize| {
        let r = stored.iter().find(|r| r.transaction_id == ids[i]).unwrap();
        sluis::audit::rfc3339(r.time_us)
    };
    let q = format!(
        "/admin/audit?since={}&until={}",
        urlencode(&time_of(3)),
        urlencode(&time_of(8))
    );
    let (status, b) = admin_get(&app, &q).await;
    assert_eq!(status, 200, "{b}");
    let mut expected: Vec<String> = ids[3..8].to_vec();
    expected.reverse();
    assert_eq!(ids_of(&b), expected);

    // Unauthenticated: refused.
    let res = app
        .client
        .get(format!("{}/admin/audit", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    app.finish().await;
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}

async fn admin_query_parameters_are_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    for (q, names) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("decision=maybe", "decision"),
        ("since=yesterday", "since"),
        ("until=2025-13-01T00:00:00Z", "until"),
        (
            "since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z",
            "since",
        ),
        ("after=not-a-cursor", "after"),
        ("format=csv", "format"),
        ("colour=red", "colour"),
        ("product=", "product"),
    ] {
        let res = app
            .admin(Method::GET, &format!("/admin/audit?{q}"), None)
            .await;
        assert_eq!(res.status(), 400, "{q}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "BAD_REQUEST", "{q}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(names), "{q}: {p}");
    }
    let res = app
        .admin(Method::GET, "/admin/audit/export?format=xml", None)
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .admin(Method::GET, "/admin/audit/export?limit=5", None)
        .await;
    assert_eq!(res.status(), 400);
    app.finish().await;
}

async fn export_streams_ndjson_and_csv(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = some_traffic(&app).await;
    // A purpose a spreadsheet would run as a formula.
    let res = app
        .client
        .get(format!("{}/products/oorlogsschade", app.public))
        .header("Sluis-Purpose", "=HYPERLINK(\"http://evil\")")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Enough older records that the export pages internally (1000 per round trip).
    let start = audit_records(&app.db.url).await[0].time_us - 10_000_000;
    bulk_records(&app.db.url, "bulk", "EU.EORI.NL000000001", 2500, start).await;
    let until = urlencode(&sluis::audit::rfc3339(sluis::audit::now_us()));

    let res = app
        .admin(
            Method::GET,
            &format!("/admin/audit/export?until={until}"),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = res.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect();
    assert_eq!(lines.len(), 2500 + 14);
    let times: Vec<&str> = lines.iter().map(|l| l["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    let exported: Vec<&str> = lines[2500..13 + 2500]
        .iter()
        .map(|l| l["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(exported, ids.iter().map(String::as_str).collect::<Vec<_>>());

    let res = app
        .admin(
            Method::GET,
            &format!("/admin/audit/export?format=csv&product=oorlogsschade&until={until}"),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = res.text().await.unwrap();
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(rows[0].starts_with("transaction_id,time,party_id,product,action,purpose,decision,"));
    assert_eq!(
        rows.len(),
        1 + 4,
        "header and the four oorlogsschade records"
    );
    assert!(
        rows[4].contains(",\"'=HYPERLINK(\"\"http://evil\"\")\","),
        "formula defused and quoted: {}",
        rows[4]
    );
    app.finish().await;
}

async fn consumers_see_only_their_own_records(backend: Backend) {
    let pki = pki();
    let trust = pki.dir.path().join("trust");
    let app = spawn_app_with(backend, |s, _| s.auth.trust_anchors = trust).await;
    app.register(CLIENT_ID, &["urn:sluis:group:gemeenten"], None)
        .await;
    bulk_records(&app.db.url, "bulk", OTHER_PARTY, 50, sluis::audit::now_us()).await;

    let assertion = rs256(
        &rs256_header(&[&pki.leaf, &pki.root]),
        &claims(Utc::now()),
        &keys().leaf,
    );
    let res = app.token_request(CLIENT_ID, &assertion).await;
    assert_eq!(res.status(), 200);
    let token_tx = txid(&res);
    let token: Value = res.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let res = app
        .client
        .get(format!("{}/products/oorlogsschade", app.public))
        .bearer_auth(&token)
        .header("Sluis-Purpose", "urn:sluis:purpose:beleidsonderzoek")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let data_tx = txid(&res);
    assert_eq!(app.get("/products/stadsmuur").await.status(), 200);

    let own = |q: &'static str| {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}/audit{q}", app.public),
            token.clone(),
        );
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let res = own("").await;
    assert_eq!(res.status(), 200);
    let read_tx = txid(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(ids_of(&body), vec![data_tx.clone(), token_tx.clone()]);
    assert!(body["next"].is_null());
    assert!(
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["party_id"] == CLIENT_ID),
        "{body}"
    );

    // Paging and filters work as on the admin side; the party is the token's, not a parameter.
    let body: Value = own("?limit=1").await.json().await.unwrap();
    assert_eq!(ids_of(&body).len(), 1);
    assert!(body["next"].is_string());
    let body: Value = own("?product=oorlogsschade").await.json().await.unwrap();
    assert_eq!(ids_of(&body), vec![data_tx.clone()]);
    let res = own("?party_id=EU.EORI.NL999999999").await;
    assert_eq!(res.status(), 400);

    // The read itself is audited, as the consumer's.
    let rec = audit_record(&app.db.url, &read_tx).await;
    assert_eq!(rec.party_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(rec.action, "audit.read");

    // No token, no records.
    let res = app.get("/audit").await;
    assert_eq!(res.status(), 401);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "ACCESS_TOKEN_MISSING");
    app.finish().await;
}

/// Keyset pages against a plain sort of every record: two writers (two chains) commit records
/// in batches whose times are out of order, some seconds away from the rest of their batch and
/// some equal to the microsecond (the transaction id then orders them), and every filter's
/// pages, walked in both orders and several sizes, must list exactly the sorted, filtered
/// records, each once.
async fn pages_agree_with_a_full_sort(backend: Backend) {
    use sluis::audit::query::{self, AuditFilter, Order};
    use sluis::audit::{AuditEntry, Auditor, CheckpointSigner, Decision};
    use std::time::Duration;

    let test_db = TestDb::new(backend).await;
    let db = sluis::store::Db::connect(&test_db.url, 4, Duration::from_secs(5))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let pem = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap())
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    let settings = sluis::config::AuditSettings::default();
    let mut writers = Vec::new();
    for _ in 0..2 {
        let signer = CheckpointSigner::from_pem(&pem).expect("key");
        writers.push(
            Auditor::start(db.clone(), &settings, signer, Duration::from_secs(5))
                .await
                .expect("writer"),
        );
    }
    // A fixed pseudo-random sequence (xorshift), so a failure can be replayed.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let base = 1_800_000_000_000_000i64;
    let parties = [
        None,
        Some("EU.EORI.NL000000001"),
        Some("EU.EORI.NL000000002"),
    ];
    let products = ["bomen", "wijken", "parkeerzones"];
    for burst in 0..12i64 {
        let mut waits = Vec::new();
        for i in 0..40i64 {
            // Mostly within 5 ms of the burst's time; one in four seconds before or after it.
            let jitter = match next(8) {
                0 => -3_000_000 - next(2_000_000) as i64,
                1 => 2_500_000 + next(1_000_000) as i64,
                _ => next(5_000) as i64,
            };
            // Some records share a time to the microsecond: the transaction id orders them.
            let time_us = base + burst * 10_000_000 + if i % 9 == 0 { 0 } else { jitter };
            let entry = AuditEntry {
                transaction_id: uuid::Uuid::now_v7(),
                time_us,
                party_id: parties[next(3) as usize].map(str::to_string),
                product: Some(products[next(3) as usize].to_string()),
                action: "read".into(),
                purpose: None,
                decision: if next(5) == 0 {
                    Decision::Deny
                } else {
                    Decision::Permit
                },
                reasons: vec![],
                policy_id: None,
                policy_version: None,
                status: 200,
                method: "GET".into(),
                path: "/products/x".into(),
                trace_id: None,
                span_id: None,
            };
            waits.push(writers[(i % 2) as usize].0.submit(entry));
        }
        for w in waits {
            w.await.expect("committed");
        }
    }
    let all = audit_records(&test_db.url).await;
    assert_eq!(all.len(), 480);

    let window = (base + 20_000_000, base + 70_000_000);
    let filters = [
        AuditFilter::default(),
        AuditFilter {
            party_id: Some(parties[1].unwrap().into()),
            ..Default::default()
        },
        AuditFilter {
            product: Some("wijken".into()),
            decision: Some(Decision::Permit),
            ..Default::default()
        },
        AuditFilter {
            decision: Some(Decision::Deny),
            ..Default::default()
        },
        AuditFilter {
            party_id: Some(parties[2].unwrap().into()),
            product: Some("bomen".into()),
            since_us: Some(window.0),
            until_us: Some(window.1),
            ..Default::default()
        },
        AuditFilter {
            since_us: Some(window.0),
            until_us: Some(window.1),
            ..Default::default()
        },
    ];
    for f in &filters {
        let mut expected: Vec<&StoredRecord> = all
            .iter()
            .filter(|r| {
                f.party_id
                    .as_ref()
                    .is_none_or(|p| r.party_id.as_ref() == Some(p))
            })
            .filter(|r| {
                f.product
                    .as_ref()
                    .is_none_or(|p| r.product.as_ref() == Some(p))
            })
            .filter(|r| f.decision.is_none_or(|d| r.decision == d.as_str()))
            .filter(|r| f.since_us.is_none_or(|t| r.time_us >= t))
            .filter(|r| f.until_us.is_none_or(|t| r.time_us < t))
            .collect();
        expected
            .sort_by(|a, b| (a.time_us, &a.transaction_id).cmp(&(b.time_us, &b.transaction_id)));
        assert!(expected.len() > 10, "{f:?} selects too little to test");
        for order in [Order::OldestFirst, Order::NewestFirst] {
            let want: Vec<&str> = match order {
                Order::OldestFirst => expected.iter().map(|r| r.transaction_id.as_str()).collect(),
                Order::NewestFirst => expected
                    .iter()
                    .rev()
                    .map(|r| r.transaction_id.as_str())
                    .collect(),
            };
            for size in [1, 7, 100, 1000] {
                let mut got = Vec::new();
                let mut after = None;
                loop {
                    let page = query::page(&db, f, order, after, size).await.expect("page");
                    assert!(page.records.len() <= size as usize);
                    got.extend(page.records.iter().map(|r| r.transaction_id.clone()));
                    match page.next {
                        Some(c) => after = Some(c),
                        None => break,
                    }
                }
                assert_eq!(got, want, "{f:?}, {order:?}, pages of {size}");
            }
        }
    }
    for (_, handle) in writers {
        handle.shutdown().await;
    }
    test_db.drop_db().await;
}
