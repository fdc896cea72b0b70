//! Fail closed: when the audit record cannot be written, nothing is served — tried for real by
//! locking the SQLite file and by refusing connections to the PostgreSQL database.

use sqlx::{Connection, Executor};

use crate::both_databases;
use crate::helpers::*;

both_databases!(database_loss_means_503_and_no_data);

/// Makes the database unavailable; the returned guard keeps it so until `restore`.
enum Outage {
    SqliteLocked(sqlx::SqliteConnection),
    PostgresRefusing(String),
}

async fn take_database_away(db: &TestDb) -> Outage {
    match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            c.execute("BEGIN EXCLUSIVE").await.unwrap();
            Outage::SqliteLocked(c)
        }
        Backend::Postgres => {
            let name = db.pg_name().unwrap().to_string();
            let mut c = sqlx::PgConnection::connect(&postgres_admin_url())
                .await
                .unwrap();
            c.execute(format!(r#"ALTER DATABASE "{name}" ALLOW_CONNECTIONS false"#).as_str())
                .await
                .unwrap();
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            )
            .bind(&name)
            .execute(&mut c)
            .await
            .unwrap();
            Outage::PostgresRefusing(name)
        }
    }
}

async fn restore(outage: Outage) {
    match outage {
        Outage::SqliteLocked(mut c) => {
            c.execute("ROLLBACK").await.unwrap();
        }
        Outage::PostgresRefusing(name) => {
            let mut c = sqlx::PgConnection::connect(&postgres_admin_url())
                .await
                .unwrap();
            c.execute(format!(r#"ALTER DATABASE "{name}" ALLOW_CONNECTIONS true"#).as_str())
                .await
                .unwrap();
        }
    }
}

async fn database_loss_means_503_and_no_data(backend: Backend) {
    let pki = crate::auth_support::pki();
    let trust = pki.dir.path().join("trust");
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let app = spawn_app_with(backend, |s, _| {
        s.database.timeout_ms = 500;
        s.auth.trust_anchors = trust;
        s.admin.policies_dir = Some(policies);
    })
    .await;
    let ok = app.get("/products/stadsmuur").await;
    assert_eq!(ok.status(), 200);
    // A consumer with a valid token for the restricted product, before the outage.
    use crate::auth_support::{CLIENT_ID, claims, keys, rs256, rs256_header};
    app.register(CLIENT_ID, &["urn:sluis:group:gemeenten"], None)
        .await;
    let assertion = rs256(
        &rs256_header(&[&pki.leaf, &pki.root]),
        &claims(chrono::Utc::now()),
        &keys().leaf,
    );
    let token: serde_json::Value = app
        .token_request(CLIENT_ID, &assertion)
        .await
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let restricted = || {
        app.client
            .get(format!("{}/products/oorlogsschade", app.public))
            .bearer_auth(&token)
            .header("Sluis-Purpose", "urn:sluis:purpose:erfgoedbeheer")
            .send()
    };
    assert_eq!(restricted().await.unwrap().status(), 200);

    let outage = take_database_away(&app.db).await;
    let mut refused = Vec::new();
    for path in ["/products/stadsmuur", "/products/bestaat-niet"] {
        let res = app.get(path).await;
        assert_eq!(
            res.status(),
            503,
            "{path} while the audit log is unavailable"
        );
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let refused_id = txid(&res);
        refused.push(refused_id.clone());
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("FeatureCollection"),
            "no data without an audit record"
        );
        assert!(
            !body.to_lowercase().contains("sqlite") && !body.contains("postgres"),
            "no internals: {body}"
        );
        let p: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(p["code"], "TRANSACTION_LOG_WRITE_ERROR");
        let ready = app
            .client
            .get(format!("{}/health/ready", app.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 503, "not ready without a database");
        assert!(
            uuid::Uuid::parse_str(&refused_id).is_ok(),
            "a refusal carries an id for the logs"
        );
    }
    // The restricted product: permitted by its policy, still not served unaudited.
    // (503 either way: the consumer lookup or the audit record needs the database.)
    let res = restricted().await.unwrap();
    assert_eq!(
        res.status(),
        503,
        "restricted product while the database is unavailable"
    );
    let body = res.text().await.unwrap();
    assert!(
        !body.contains("FeatureCollection"),
        "no data without an audit record"
    );
    restore(outage).await;

    // Service resumes by itself, and the chain continues without a gap.
    let mut status = 0;
    for _ in 0..40 {
        status = app.get("/products/stadsmuur").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "serving resumes when the database is back");
    let records = audit_records(&app.db.url).await;
    assert!(
        records.iter().all(|r| !refused.contains(&r.transaction_id)),
        "a request refused for want of its audit record has no record: {:?}",
        records
            .iter()
            .filter(|r| refused.contains(&r.transaction_id))
            .collect::<Vec<_>>()
    );
    assert_chains_intact(&records);
    app.finish().await;
}
