//! Credentials on the wire: the iSHARE token endpoint, access tokens on the data path, the admin
//! API's own authentication, and suspension across replicas. Every attack is tried for real
//! against the running server and must be refused with a 4xx problem and a stable code.

use chrono::{Duration as TimeDelta, Utc};
use openssl::hash::MessageDigest;
use reqwest::Method;
use serde_json::{Value, json};
use sluis::auth::{AccessTokenIssuer, CertThumbprint, PartyId};

use crate::auth_support::*;
use crate::both_databases;
use crate::helpers::*;

both_databases!(
    token_endpoint_issues_once_and_refuses_every_attack,
    data_path_refuses_bad_tokens,
    admin_api_needs_its_token_and_validates_input,
    suspension_holds_on_the_next_request,
);

const GROUP: &str = "urn:sluis:group:gemeenten";

/// An app that trusts the test PKI's root, with CLIENT_ID registered.
async fn app_with_pki(backend: Backend, pki: &Pki) -> TestApp {
    let trust = pki.dir.path().join("trust");
    let app = spawn_app_with(backend, |s, _| s.auth.trust_anchors = trust).await;
    app.register(CLIENT_ID, &[GROUP], None).await;
    app
}

fn valid_assertion(pki: &Pki) -> String {
    rs256(
        &rs256_header(&[&pki.leaf, &pki.root]),
        &claims(Utc::now()),
        &keys().leaf,
    )
}

/// The refusal contract: 4xx, problem+json, the expected code, OAuth members, no token.
async fn assert_refused(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{code}"
    );
    let body = res.text().await.unwrap();
    assert!(!body.contains("access_token"), "no token issued: {body}");
    let p: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(p["code"], code, "{body}");
    p
}

async fn get_token(app: &TestApp, pki: &Pki) -> String {
    let res = app.token_request(CLIENT_ID, &valid_assertion(pki)).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

async fn token_endpoint_issues_once_and_refuses_every_attack(backend: Backend) {
    let pki = pki();
    let app = app_with_pki(backend, &pki).await;
    let k = keys();
    let chain = [&pki.leaf, &pki.root];

    let assertion = valid_assertion(&pki);
    let res = app.token_request(CLIENT_ID, &assertion).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let id = txid(&res);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert!(
        v["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    let rec = audit_record(&app.db.url, &id).await;
    assert_eq!(
        (rec.action.as_str(), rec.decision.as_str()),
        ("token", "permit")
    );
    assert_eq!(rec.party_id.as_deref(), Some(CLIENT_ID));

    // The same assertion twice: a replay.
    let p = assert_refused(
        app.token_request(CLIENT_ID, &assertion).await,
        401,
        "ASSERTION_REPLAYED",
    )
    .await;
    assert_eq!(p["error"], "invalid_client");
    assert!(p["error_description"].is_string());

    let now = Utc::now();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(now);
        f(&mut c);
        c
    };
    let header = rs256_header(&chain);
    let other_root = make_cert(&CertSpec::ca("Untrusted Root"), &k.other_root, None);
    let untrusted_leaf = make_cert(
        &CertSpec::leaf("consumer", CLIENT_ID),
        &k.leaf,
        Some((&other_root, &k.other_root)),
    );
    let other_party_leaf = make_cert(
        &CertSpec::leaf("other", OTHER_PARTY),
        &k.other_leaf,
        Some((&pki.root, &k.root)),
    );
    let valid = valid_assertion(&pki);
    let sig_start = valid.rfind('.').unwrap() + 1;
    let mut tampered = valid.clone();
    let flipped = if &valid[sig_start..sig_start + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(sig_start..sig_start + 1, flipped);

    let attacks: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            jws(
                &json!({"alg": "none", "typ": "JWT", "x5c": x5c(&chain)}),
                &claims(now),
                Sig::Empty,
            ),
            "ASSERTION_ALG_NOT_ALLOWED",
        ),
        (
            "HS256 keyed with the public key",
            jws(
                &json!({"alg": "HS256", "typ": "JWT", "x5c": x5c(&chain)}),
                &claims(now),
                Sig::Hmac256(&pki.leaf.public_key().unwrap().public_key_to_pem().unwrap()),
            ),
            "ASSERTION_ALG_NOT_ALLOWED",
        ),
        (
            "wrong aud",
            rs256(
                &header,
                &with(&|c| c["aud"] = json!("did:ishare:EU.NL.NTRNL-99999999")),
                &k.leaf,
            ),
            "ASSERTION_WRONG_AUDIENCE",
        ),
        (
            "expired",
            rs256(
                &header,
                &with(&|c| {
                    c["iat"] = json!((now - TimeDelta::seconds(120)).timestamp());
                    c["exp"] = json!((now - TimeDelta::seconds(90)).timestamp());
                }),
                &k.leaf,
            ),
            "ASSERTION_EXPIRED",
        ),
        (
            "iat in the future",
            rs256(
                &header,
                &with(&|c| {
                    c["iat"] = json!((now + TimeDelta::seconds(60)).timestamp());
                    c["exp"] = json!((now + TimeDelta::seconds(90)).timestamp());
                }),
                &k.leaf,
            ),
            "ASSERTION_IAT_IN_FUTURE",
        ),
        (
            "lifetime over 30 s",
            rs256(
                &header,
                &with(&|c| c["exp"] = json!(now.timestamp() + 60)),
                &k.leaf,
            ),
            "ASSERTION_LIFETIME_TOO_LONG",
        ),
        (
            "chain to an untrusted root",
            rs256(
                &rs256_header(&[&untrusted_leaf, &other_root]),
                &claims(now),
                &k.leaf,
            ),
            "ASSERTION_CHAIN_UNTRUSTED",
        ),
        (
            "valid chain, leaf of another party",
            rs256(
                &rs256_header(&[&other_party_leaf, &pki.root]),
                &claims(now),
                &k.other_leaf,
            ),
            "ASSERTION_CERT_MISMATCH",
        ),
        ("tampered signature", tampered, "ASSERTION_BAD_SIGNATURE"),
        (
            "missing jti",
            rs256(
                &header,
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
                &k.leaf,
            ),
            "ASSERTION_MISSING_CLAIM",
        ),
        (
            "missing iss",
            rs256(
                &header,
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("iss");
                }),
                &k.leaf,
            ),
            "ASSERTION_MISSING_CLAIM",
        ),
        (
            "missing exp",
            rs256(
                &header,
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                &k.leaf,
            ),
            "ASSERTION_MISSING_CLAIM",
        ),
        (
            "iss is another party",
            rs256(&header, &with(&|c| c["iss"] = json!(OTHER_PARTY)), &k.leaf),
            "ASSERTION_WRONG_ISSUER",
        ),
        (
            "oversized",
            format!("{}.{}.{}", "e".repeat(20_000), "e".repeat(20_000), "e"),
            "ASSERTION_TOO_LARGE",
        ),
    ];
    for (name, assertion, code) in &attacks {
        let status = if *code == "ASSERTION_TOO_LARGE" {
            400
        } else {
            401
        };
        let res = app.token_request(CLIENT_ID, assertion).await;
        let p = assert_refused(res, status, code).await;
        assert!(p["error"].is_string(), "{name}: OAuth error member");
    }

    // Parties that may not have tokens, with otherwise valid assertions.
    let other_assertion = rs256(
        &rs256_header(&[&other_party_leaf, &pki.root]),
        &json!({"iss": OTHER_PARTY, "sub": OTHER_PARTY, "aud": OUR_ID, "jti": uuid::Uuid::new_v4().to_string(),
                "iat": now.timestamp(), "exp": now.timestamp() + 30}),
        &k.other_leaf,
    );
    assert_refused(
        app.token_request(OTHER_PARTY, &other_assertion).await,
        401,
        "CONSUMER_UNKNOWN",
    )
    .await;
    app.set_status(CLIENT_ID, "suspended").await;
    assert_refused(
        app.token_request(CLIENT_ID, &valid_assertion(&pki)).await,
        401,
        "CONSUMER_SUSPENDED",
    )
    .await;
    app.set_status(CLIENT_ID, "active").await;

    // A registered certificate pins the leaf: a different valid leaf for the same party fails.
    let second_leaf = make_cert(
        &CertSpec::leaf("consumer-2", CLIENT_ID),
        &k.other_leaf,
        Some((&pki.root, &k.root)),
    );
    let res = app
        .admin(
            Method::PATCH,
            &format!("/admin/consumers/{CLIENT_ID}"),
            Some(json!({"certificate": cert_pem(&pki.leaf)})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let impostor = rs256(
        &rs256_header(&[&second_leaf, &pki.root]),
        &claims(Utc::now()),
        &k.other_leaf,
    );
    assert_refused(
        app.token_request(CLIENT_ID, &impostor).await,
        401,
        "ASSERTION_CERT_MISMATCH",
    )
    .await;
    assert_eq!(
        app.token_request(CLIENT_ID, &valid_assertion(&pki))
            .await
            .status(),
        200,
        "the registered leaf still works"
    );

    // Malformed requests.
    let form = |pairs: &[(&str, &str)]| {
        app.client
            .post(format!("{}/connect/token", app.public))
            .form(pairs)
            .send()
    };
    let p = assert_refused(
        form(&[("grant_type", "password")]).await.unwrap(),
        400,
        "TOKEN_GRANT_TYPE_UNSUPPORTED",
    )
    .await;
    assert_eq!(p["error"], "unsupported_grant_type");
    let p = assert_refused(
        form(&[("grant_type", "client_credentials")]).await.unwrap(),
        400,
        "TOKEN_REQUEST_INVALID",
    )
    .await;
    assert_eq!(p["error"], "invalid_request");
    let res = app
        .client
        .post(format!("{}/connect/token", app.public))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_refused(res, 400, "TOKEN_REQUEST_INVALID").await;
    let huge = "x".repeat(100_000);
    assert_refused(
        form(&[("client_assertion", &huge)]).await.unwrap(),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // Every refusal is in the audit log as a denial.
    let records = audit_records(&app.db.url).await;
    let denied = records
        .iter()
        .filter(|r| r.action == "token" && r.decision == "deny")
        .count();
    assert!(
        denied >= attacks.len() + 6,
        "{denied} denied token requests recorded"
    );
    assert_chains_intact(&records);
    app.finish().await;
}

/// A token signed by `key` with the given claims, shaped like ours (typ at+jwt).
fn forged_access_token(key_pem: &str, claims: &Value) -> String {
    let key = openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes()).unwrap();
    jws(
        &json!({"alg": "RS256", "typ": "at+jwt"}),
        claims,
        Sig::Rsa(MessageDigest::sha256(), &key),
    )
}

async fn data_path_refuses_bad_tokens(backend: Backend) {
    let pki = pki();
    let app = app_with_pki(backend, &pki).await;
    let connector_key = std::fs::read_to_string(app.db.dir().join("connector.key")).unwrap();
    let issuer = AccessTokenIssuer::new(
        &connector_key,
        our_id(),
        std::time::Duration::from_secs(3600),
    )
    .unwrap();
    let client = PartyId::parse(CLIENT_ID).unwrap();
    let get = |token: Option<String>| {
        let mut req = app
            .client
            .get(format!("{}/products/oorlogsschade", app.public));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };

    // A valid token passes authentication (the policy decides what follows).
    let good = get_token(&app, &pki).await;
    let res = get(Some(good.clone())).await.unwrap();
    assert_ne!(res.status(), 401);
    let rec = audit_record(&app.db.url, &txid(&res)).await;
    assert_eq!(
        rec.party_id.as_deref(),
        Some(CLIENT_ID),
        "the consumer is in the record"
    );

    let now = Utc::now().timestamp();
    let claims = |iss: &str, aud: &str, iat: i64, exp: i64| json!({"iss": iss, "sub": CLIENT_ID, "aud": aud, "iat": iat, "exp": exp, "jti": uuid::Uuid::new_v4().to_string()});
    let other_key = key_pem(&keys().other_root);
    let bound = issuer
        .issue(
            &client,
            Some(&CertThumbprint::of_der(&pki.leaf.to_der().unwrap())),
        )
        .unwrap()
        .access_token;
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("no token", None, 401, "ACCESS_TOKEN_MISSING"),
        (
            "not a JWT",
            Some("garbage".into()),
            401,
            "ACCESS_TOKEN_INVALID",
        ),
        (
            "expired",
            Some(
                issuer
                    .issue_at(&client, None, Utc::now() - TimeDelta::hours(2))
                    .unwrap()
                    .access_token,
            ),
            401,
            "ACCESS_TOKEN_EXPIRED",
        ),
        (
            "signed by another key",
            Some(forged_access_token(
                &other_key,
                &claims(OUR_ID, OUR_ID, now, now + 600),
            )),
            401,
            "ACCESS_TOKEN_INVALID",
        ),
        (
            "for another audience",
            Some(forged_access_token(
                &connector_key,
                &claims(OUR_ID, "did:ishare:EU.NL.NTRNL-99999999", now, now + 600),
            )),
            401,
            "ACCESS_TOKEN_WRONG_AUDIENCE",
        ),
        (
            "alg none",
            Some(jws(
                &json!({"alg": "none", "typ": "at+jwt"}),
                &claims(OUR_ID, OUR_ID, now, now + 600),
                Sig::Empty,
            )),
            401,
            "ACCESS_TOKEN_INVALID",
        ),
        (
            "cert-bound, used without the certificate",
            Some(bound),
            401,
            "ACCESS_TOKEN_CERT_BINDING",
        ),
    ];
    for (name, token, status, code) in cases {
        let res = get(token).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{name}");
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{name}"
        );
        let id = txid(&res);
        let body = res.text().await.unwrap();
        assert!(!body.contains("FeatureCollection"), "{name}: no data");
        let p: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(p["code"], code, "{name}");
        let rec = audit_record(&app.db.url, &id).await;
        assert_eq!(rec.decision, "deny", "{name}");
        assert_eq!(rec.reasons, format!("[\"{code}\"]"), "{name}");
    }

    // The token of a suspended consumer stops working on the next request.
    app.set_status(CLIENT_ID, "suspended").await;
    let res = get(Some(good.clone())).await.unwrap();
    assert_eq!(res.status(), 403);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "CONSUMER_SUSPENDED");
    app.finish().await;
}

async fn admin_api_needs_its_token_and_validates_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = format!("{}/admin/consumers", app.admin);
    for auth in [
        None,
        Some("wrong"),
        Some(&ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]),
    ] {
        let mut req = app.client.get(&url);
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "ADMIN_TOKEN_INVALID");
    }
    // The admin token is no access token, and the admin API is not on the public listener.
    let res = app
        .client
        .get(format!("{}/admin/consumers", app.public))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let register = |body: Value| app.admin(Method::POST, "/admin/consumers", Some(body));
    for (body, what) in [
        (
            json!({"party_id": "gemeente-arnhem", "name": "Arnhem"}),
            "party_id",
        ),
        (json!({"party_id": CLIENT_ID, "name": ""}), "name"),
        (
            json!({"party_id": CLIENT_ID, "name": "A", "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
            "certificate",
        ),
        (
            json!({"party_id": CLIENT_ID, "name": "A", "groups": ["gemeenten"]}),
            "groups",
        ),
        (
            json!({"party_id": CLIENT_ID, "name": "A", "rol": "admin"}),
            "rol",
        ),
    ] {
        let res = register(body).await;
        assert_eq!(res.status(), 400, "{what}");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "INVALID_CONSUMER");
        assert!(p["detail"].as_str().unwrap().contains(what), "{what}: {p}");
    }
    let oin = "00000001234567890000";
    let res =
        register(json!({"party_id": oin, "name": "Gemeente Nijmegen", "groups": [GROUP]})).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["location"], format!("/admin/consumers/{oin}"));
    let res = register(json!({"party_id": oin, "name": "again"})).await;
    assert_eq!(res.status(), 409);
    let res = app
        .admin(Method::GET, "/admin/consumers/EU.EORI.NL000000000", None)
        .await;
    assert_eq!(res.status(), 404);
    let res = app
        .admin(Method::GET, &format!("/admin/consumers/{oin}"), None)
        .await;
    let c: Value = res.json().await.unwrap();
    assert_eq!(
        (c["status"].as_str(), c["groups"][0].as_str()),
        (Some("active"), Some(GROUP))
    );
    let res = app
        .admin(
            Method::PATCH,
            &format!("/admin/consumers/{oin}"),
            Some(json!({"status": "gone"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    app.set_status(oin, "suspended").await;
    let list: Value = app
        .admin(Method::GET, "/admin/consumers", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["consumers"][0]["status"], "suspended");

    // Who did what: every admin call is in the audit log, refusals included.
    let records = audit_records(&app.db.url).await;
    let change = records
        .iter()
        .find(|r| r.action == "consumer.change" && r.status == 200)
        .expect("change recorded");
    assert_eq!(change.party_id.as_deref(), Some("admin"));
    assert!(
        change.reasons.contains("status=suspended"),
        "{}",
        change.reasons
    );
    assert!(
        records
            .iter()
            .any(|r| r.action == "consumer.register" && r.status == 201)
    );
    assert!(records.iter().any(|r| r.path == "/admin/consumers"
        && r.status == 401
        && r.reasons.contains("ADMIN_TOKEN_INVALID")));
    app.finish().await;
}

async fn suspension_holds_on_the_next_request(backend: Backend) {
    let pki = pki();
    let a = app_with_pki(backend, &pki).await;
    let token = get_token(&a, &pki).await;
    // On PostgreSQL a second replica shares the database; SQLite runs one instance.
    let b = match backend {
        Backend::Postgres => {
            Some(spawn_replica(&a, |s| s.auth.trust_anchors = pki.dir.path().join("trust")).await)
        }
        Backend::Sqlite => None,
    };
    let suspended_now = |s: &TestApp| {
        let req = s
            .client
            .get(format!("{}/products/oorlogsschade", s.public))
            .bearer_auth(&token)
            .send();
        async move {
            let p: Value = req.await.unwrap().json().await.unwrap();
            p["code"] == "CONSUMER_SUSPENDED"
        }
    };
    let mut worst = std::time::Duration::ZERO;
    for round in 0..10 {
        let suspended = round % 2 == 0;
        a.set_status(CLIENT_ID, if suspended { "suspended" } else { "active" })
            .await;
        let changed = std::time::Instant::now();
        // The replica that took the change: the very next request.
        assert_eq!(
            suspended_now(&a).await,
            suspended,
            "round {round} on the replica that changed it"
        );
        // Another replica hears of it through LISTEN/NOTIFY, within milliseconds.
        if let Some(b) = &b {
            while suspended_now(b).await != suspended {
                assert!(
                    changed.elapsed() < std::time::Duration::from_secs(1),
                    "round {round}: the other replica did not follow"
                );
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            worst = worst.max(changed.elapsed());
        }
    }
    if b.is_some() {
        eprintln!("suspension reached the other replica within {worst:?} (worst of 10 changes)");
    }
    if let Some(b) = b {
        b.stop().await;
    }
    a.finish().await;
}
