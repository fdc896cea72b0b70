//! Open products: streamed from the source with the right media type, unknown ones refused, the
//! restricted demo product closed until credentials exist. Each answer is audited.

use crate::both_databases;
use crate::helpers::*;

both_databases!(
    open_product_is_served_byte_for_byte,
    media_type_comes_from_config_or_extension,
    unknown_product_is_a_404_problem,
    restricted_product_needs_a_token,
    health_reports_the_database,
);

async fn open_product_is_served_byte_for_byte(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/products/stadsmuur").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/geo+json");
    assert!(res.headers().get("set-cookie").is_none());
    let id = txid(&res);
    let body = res.bytes().await.unwrap();
    assert_eq!(
        body.as_ref(),
        std::fs::read(demo_file("stadsmuur.geojson")).unwrap()
    );
    let rec = audit_record(&app.db.url, &id).await;
    assert_eq!(rec.product.as_deref(), Some("stadsmuur"));
    assert_eq!(rec.decision, "permit");
    assert_eq!(rec.status, 200);
    app.finish().await;
}

async fn media_type_comes_from_config_or_extension(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bomen.csv");
    std::fs::write(&csv, "ID,BOOMSOORT\n1,Quercus robur\n").unwrap();
    let data = dir.path().join("data.bin");
    std::fs::write(&data, "{\"a\":1}").unwrap();
    let app = spawn_app_with(backend, |s, _| {
        s.products.push(file_product("bomen", csv.clone()));
        let mut p = file_product("json-from-config", data.clone());
        p.source = sluis::config::SourceSettings::File {
            path: data.clone(),
            media_type: Some("application/json".into()),
        };
        s.products.push(p);
    })
    .await;
    let res = app.get("/products/bomen").await;
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(res.text().await.unwrap(), "ID,BOOMSOORT\n1,Quercus robur\n");
    let res = app.get("/products/json-from-config").await;
    assert_eq!(res.headers()["content-type"], "application/json");
    let res = app.get("/products/wijken").await;
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        v["features"].as_array().map(Vec::len),
        Some(9),
        "the nine wijken"
    );
    app.finish().await;
}

async fn unknown_product_is_a_404_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/products/bestaat-niet").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let id = txid(&res);
    let p: serde_json::Value = res.json().await.unwrap();
    assert_eq!(p["code"], "PRODUCT_NOT_FOUND");
    assert_eq!(p["status"], 404);
    assert!(p["type"].is_string() && p["title"].is_string() && p["detail"].is_string());
    let rec = audit_record(&app.db.url, &id).await;
    assert_eq!(rec.decision, "deny");
    assert_eq!(rec.status, 404);
    assert_eq!(rec.reasons, r#"["PRODUCT_NOT_FOUND"]"#);

    let res = app.get("/elders").await;
    assert_eq!(res.status(), 404);
    let p: serde_json::Value = res.json().await.unwrap();
    assert_eq!(p["code"], "NOT_FOUND");

    let res = app
        .client
        .delete(format!("{}/products/stadsmuur", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let p: serde_json::Value = res.json().await.unwrap();
    assert_eq!(p["code"], "METHOD_NOT_ALLOWED");
    app.finish().await;
}

async fn restricted_product_needs_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/products/oorlogsschade").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let id = txid(&res);
    let body = res.text().await.unwrap();
    assert!(!body.contains("FeatureCollection"), "no data in a refusal");
    let p: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(p["code"], "ACCESS_TOKEN_MISSING");
    let rec = audit_record(&app.db.url, &id).await;
    assert_eq!(rec.decision, "deny");
    assert_eq!(rec.product.as_deref(), Some("oorlogsschade"));
    assert_eq!(rec.policy_id.as_deref(), Some("oorlogsschade.json"));
    app.finish().await;
}

async fn health_reports_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app
        .client
        .get(format!("{}/health/live", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let ready = app
        .client
        .get(format!("{}/health/ready", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let v: serde_json::Value = ready.json().await.unwrap();
    let kind = if backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(v["checks"]["database"]["kind"], kind);
    // The admin listener does not serve data.
    let res = app
        .client
        .get(format!("{}/products/stadsmuur", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.finish().await;
}
