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
