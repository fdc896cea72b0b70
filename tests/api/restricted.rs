//! Restricted products end to end: access token, the product's ODRL policy evaluated on every
//! request with the declared purpose, obligations carried out, reasons on denial, hot reload of
//! the policy, and the AuthZEN decision point over the same policies.

use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};

use crate::auth_support::*;
use crate::both_databases;
use crate::helpers::*;

both_databases!(
    policy_decides_every_request,
    policy_edits_apply_on_the_next_request,
    authzen_decision_point_answers_over_loaded_policies,
);

const GEMEENTEN: &str = "urn:sluis:group:gemeenten";
const ERFGOED: &str = "urn:sluis:purpose:erfgoedbeheer";
const COMMERCIEEL: &str = "urn:sluis:purpose:commercieel";

fn demo_policies() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

async fn restricted_app(backend: Backend, pki: &Pki, policies: std::path::PathBuf) -> TestApp {
    let trust = pki.dir.path().join("trust");
    spawn_app_with(backend, |s, _| {
        s.auth.trust_anchors = trust;
        s.admin.policies_dir = Some(policies);
    })
    .await
}

async fn token_for(app: &TestApp, pki: &Pki) -> String {
    let a = rs256(
        &rs256_header(&[&pki.leaf, &pki.root]),
        &claims(Utc::now()),
        &keys().leaf,
    );
    let res = app.token_request(CLIENT_ID, &a).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn fetch(app: &TestApp, token: &str, purpose: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .get(format!("{}/products/oorlogsschade", app.public))
        .bearer_auth(token);
    if let Some(p) = purpose {
        req = req.header("Sluis-Purpose", p);
    }
    req.send().await.unwrap()
}

async fn denial(res: reqwest::Response) -> (String, Vec<String>) {
    assert_eq!(res.status(), 403);
    let id = txid(&res);
    let body = res.text().await.unwrap();
    assert!(!body.contains("FeatureCollection"));
    let p: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(p["code"], "POLICY_DENIED");
    let reasons = p["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    (id, reasons)
}

async fn policy_decides_every_request(backend: Backend) {
    let pki = pki();
    let app = restricted_app(backend, &pki, demo_policies()).await;
    app.register(CLIENT_ID, &[GEMEENTEN], None).await;
    let token = token_for(&app, &pki).await;

    // Permitted: a municipality reading for heritage management, with attribution.
    let res = fetch(&app, &token, Some(ERFGOED)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["link"],
        "<https://creativecommons.org/licenses/by/4.0/>; rel=\"license\""
    );
    assert!(
        res.headers()["sluis-attribution"]
            .to_str()
            .unwrap()
            .contains("Gemeente Nijmegen")
    );
    let id = txid(&res);
    assert_eq!(res.bytes().await.unwrap().len(), 682159);
    let rec = audit_record(&app.db.url, &id).await;
    assert_eq!(rec.decision, "permit");
    assert_eq!(rec.party_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(rec.purpose.as_deref(), Some(ERFGOED));
    assert_eq!(rec.policy_id.as_deref(), Some("oorlogsschade"));
    assert_eq!(
        rec.policy_version.as_ref().map(String::len),
        Some(64),
        "the policy's hash is recorded"
    );
    assert!(
        rec.reasons
            .contains("permitted_by urn:sluis:policy:oorlogsschade:permission:gemeenten-lezen"),
        "{}",
        rec.reasons
    );

    // Commercial use is prohibited, and the answer says why.
    let (id, reasons) = denial(fetch(&app, &token, Some(COMMERCIEEL)).await).await;
    assert_eq!(reasons[0], "prohibited");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("prohibition:commercieel")),
        "{reasons:?}"
    );
    let rec = audit_record(&app.db.url, &id).await;
    assert_eq!(
        (rec.decision.as_str(), rec.purpose.as_deref()),
        ("deny", Some(COMMERCIEEL))
    );
    assert!(rec.reasons.contains("prohibited"));

    // No purpose declared: the policy cannot be evaluated, so it denies, saying so.
    let (_, reasons) = denial(fetch(&app, &token, None).await).await;
    assert_eq!(reasons[0], "undecidable");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("context.purpose missing"))
    );

    // A purpose the permission does not list.
    let (_, reasons) = denial(fetch(&app, &token, Some("urn:sluis:purpose:marketing")).await).await;
    assert_eq!(reasons[0], "no_permission");

    // Outside the group: the same purpose is not enough.
    app.admin(
        Method::PATCH,
        &format!("/admin/consumers/{CLIENT_ID}"),
        Some(json!({"groups": ["urn:sluis:group:bedrijven"]})),
    )
    .await;
    let (_, reasons) = denial(fetch(&app, &token, Some(ERFGOED)).await).await;
    assert_eq!(reasons[0], "no_permission");
    assert_chains_intact(&audit_records(&app.db.url).await);
    app.finish().await;
}

async fn policy_edits_apply_on_the_next_request(backend: Backend) {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oorlogsschade.json");
    let original = std::fs::read_to_string(demo_policies().join("oorlogsschade.json")).unwrap();
    std::fs::write(&file, &original).unwrap();
    let app = restricted_app(backend, &pki, dir.path().to_path_buf()).await;
    app.register(CLIENT_ID, &[GEMEENTEN], None).await;
    let token = token_for(&app, &pki).await;
    let onderwijs = "urn:sluis:purpose:onderwijs";
    denial(fetch(&app, &token, Some(onderwijs)).await).await;

    // Widen the permission on disk: the next request is decided by the new version.
    let widened = original.replace(
        r#"{ "@id": "urn:sluis:purpose:erfgoedbeheer" }"#,
        r#"{ "@id": "urn:sluis:purpose:erfgoedbeheer" }, { "@id": "urn:sluis:purpose:onderwijs" }"#,
    );
    assert_ne!(widened, original);
    std::fs::write(&file, &widened).unwrap();
    let status = poll_status(&app, &token, onderwijs, 200).await;
    assert_eq!(
        status, 200,
        "the edited policy is in force without a restart"
    );

    // A broken edit keeps the last valid version, and readiness reports it.
    std::fs::write(&file, widened.replace("\"isAnyOf\"", "\"isSortOf\"")).unwrap();
    let mut errors = Value::Null;
    for _ in 0..50 {
        let r: Value = app
            .client
            .get(format!("{}/health/ready", app.admin))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        errors = r["checks"]["policies"]["errors"].clone();
        if errors.as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = errors[0].as_str().expect("the failed reload is reported");
    assert!(
        line.contains("oorlogsschade.json") && line.contains("isSortOf"),
        "{line}"
    );
    assert_eq!(
        fetch(&app, &token, Some(onderwijs)).await.status(),
        200,
        "last valid version still applies"
    );
    assert_eq!(
        denial(fetch(&app, &token, Some(COMMERCIEEL)).await).await.1[0],
        "prohibited"
    );

    // Restoring the original takes the purpose away again.
    std::fs::write(&file, &original).unwrap();
    assert_eq!(poll_status(&app, &token, onderwijs, 403).await, 403);
    app.finish().await;
}

async fn poll_status(app: &TestApp, token: &str, purpose: &str, want: u16) -> u16 {
    let mut status = 0;
    for _ in 0..50 {
        status = fetch(app, token, Some(purpose)).await.status().as_u16();
        if status == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    status
}

async fn authzen_decision_point_answers_over_loaded_policies(backend: Backend) {
    let pki = pki();
    let app = restricted_app(backend, &pki, demo_policies()).await;
    let request = |purpose: &str, resource: &str| {
        json!({
            "subject": {"type": "party", "id": "did:ishare:EU.NL.NTRNL-00000002", "properties": {"partOf": [GEMEENTEN]}},
            "action": {"name": "read"},
            "resource": {"type": "product", "id": resource},
            "context": {"time": "2026-12-04T10:00:00+01:00", "purpose": purpose}
        })
    };
    let eval = |body: Value| app.admin(Method::POST, "/access/v1/evaluation", Some(body));
    let v: Value = eval(request(ERFGOED, "oorlogsschade"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["decision"], true, "{v}");
    assert_eq!(v["context"]["obligations"][0]["type"], "attribution");
    let v: Value = eval(request(COMMERCIEEL, "urn:sluis:product:oorlogsschade"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["decision"], false);
    assert_eq!(v["context"]["reason"], "prohibited");
    let v: Value = eval(request(ERFGOED, "stadsmuur"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["decision"].as_bool(), v["context"]["reason"].as_str()),
        (Some(true), Some("open_product"))
    );
    let v: Value = eval(request(ERFGOED, "bestaat-niet"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["decision"], false);

    let batch = json!({
        "subject": {"type": "party", "id": "x", "properties": {"partOf": [GEMEENTEN]}},
        "action": {"name": "read"},
        "resource": {"type": "product", "id": "oorlogsschade"},
        "context": {"time": "2026-12-04T10:00:00Z", "purpose": ERFGOED},
        "evaluations": [{}, {"context": {"time": "2026-12-04T10:00:00Z", "purpose": COMMERCIEEL}}, {"action": {"name": "sell"}}]
    });
    let v: Value = app
        .admin(Method::POST, "/access/v1/evaluations", Some(batch))
        .await
        .json()
        .await
        .unwrap();
    let decisions: Vec<_> = v["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_bool())
        .collect();
    assert_eq!(decisions, vec![Some(true), Some(false), Some(false)]);

    let res = app
        .admin(
            Method::POST,
            "/access/v1/evaluation",
            Some(json!({"resource": {"id": "oorlogsschade"}, "subject": 3})),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = app
        .client
        .post(format!("{}/access/v1/evaluation", app.admin))
        .json(&request(ERFGOED, "oorlogsschade"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "the decision point needs the admin token"
    );
    app.finish().await;
}
