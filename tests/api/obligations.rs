//! Obligations carried out in the stream, through the running server: rows filtered to the
//! consumer's own districts, fields dropped and pseudonymised — for GeoJSON from a file, CSV from
//! a file, and rows from a PostgreSQL query (filtered in SQL, values bound as parameters).

use chrono::Utc;
use serde_json::{Value, json};
use sluis::catalog::Access;
use sluis::config::{ProductSettings, SourceSettings};
use sqlx::{Connection, Executor};

use crate::auth_support::*;
use crate::both_databases;
use crate::helpers::*;

both_databases!(obligations_shape_what_is_served);

fn duty(action: &str, refinement: Value) -> Value {
    json!({"action": {"rdf:value": {"@id": action}, "refinement": refinement}})
}

fn policy(uid: &str, target: Option<&str>, duties: Vec<Value>) -> Value {
    let mut permission = json!({
        "uid": format!("{uid}:permission"),
        "assignee": {"uid": "urn:sluis:group:gemeenten", "@type": "PartyCollection"},
        "action": "read",
        "duty": duties,
    });
    if let Some(t) = target {
        permission["target"] = json!(t);
    }
    json!({"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "uid": uid,
           "profile": "https://w3id.org/sluis/odrl#", "permission": [permission]})
}

fn restricted(id: &str, policy: &str, source: SourceSettings) -> ProductSettings {
    ProductSettings {
        access: Access::Restricted,
        policy: Some(policy.into()),
        source,
        ..file_product(id, demo_file("stadsmuur.geojson"))
    }
}

const CSV: &str = "ID,BOOMSOORT,WIJKCODE,STRAATNAAM\n\
    1,Quercus robur,WK026801,Hertogstraat\n\
    2,\"Tilia, europaea\",WK026802,Bisschop Hamerstraat\n\
    3,Platanus,WK026803,\"Sint Annastraat \"\"zuid\"\"\"\n\
    4,Fagus,WK026801,Van Welderenstraat\n";

/// A source database with a tree table, readable by a read-only role.
async fn tree_database() -> (String, String) {
    let admin = postgres_admin_url();
    let name = format!("sluis_bomen_{}", uuid::Uuid::new_v4().simple());
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    c.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0.to_string();
    let mut db = sqlx::PgConnection::connect(&format!("{base}/{name}"))
        .await
        .unwrap();
    db.execute(
        "CREATE TABLE bomen (id int, boomsoort text, wijkcode text, straatnaam text, lon float8, lat float8);
         INSERT INTO bomen VALUES (1, 'Quercus robur', 'WK026801', 'Hertogstraat', 5.86, 51.84),
                                  (2, 'Tilia', 'WK026802', 'Bisschop Hamerstraat', 5.85, 51.85),
                                  (3, 'Platanus', 'WK026803', 'Sint Annastraat', 5.84, 51.83);",
    )
    .await
    .unwrap();
    (format!("{base}/{name}"), name)
}

async fn obligations_shape_what_is_served(backend: Backend) {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let own_rows = duty(
        "sluis:filterRows",
        json!([{"leftOperand": "sluis:rowProperty", "operator": "eq", "rightOperand": "WIJKCODE"},
               {"leftOperand": "sluis:rowValue", "operator": "isAnyOf", "rightOperandReference": "sluis:subject.wijkcodes"}]),
    );
    let drop_street = duty(
        "sluis:dropFields",
        json!([{"leftOperand": "sluis:field", "operator": "eq", "rightOperand": "STRAATNAAM"}]),
    );
    std::fs::write(
        dir.path().join("oorlogsschade.json"),
        policy(
            "urn:sluis:policy:os",
            Some("urn:sluis:product:oorlogsschade"),
            vec![
                duty(
                    "sluis:filterRows",
                    json!([{"leftOperand": "sluis:rowProperty", "operator": "eq", "rightOperand": "CATEGORIE"},
                           {"leftOperand": "sluis:rowValue", "operator": "isAnyOf", "rightOperand": ["Bombardement 22 feb"]}]),
                ),
                duty("sluis:pseudonymiseFields", json!([{"leftOperand": "sluis:field", "operator": "eq", "rightOperand": "ID"}])),
            ],
        )
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bomen.json"),
        policy(
            "urn:sluis:policy:bomen",
            None,
            vec![own_rows.clone(), drop_street.clone()],
        )
        .to_string(),
    )
    .unwrap();
    let csv = dir.path().join("bomen.csv");
    std::fs::write(&csv, CSV).unwrap();
    // The database source uses lower-case columns.
    std::fs::write(
        dir.path().join("bomen-db.json"),
        policy(
            "urn:sluis:policy:bomen-db",
            None,
            vec![
                duty("sluis:filterRows", json!([{"leftOperand": "sluis:rowProperty", "operator": "eq", "rightOperand": "wijkcode"},
                    {"leftOperand": "sluis:rowValue", "operator": "isAnyOf", "rightOperandReference": "sluis:subject.wijkcodes"}])),
                duty("sluis:dropFields", json!([{"leftOperand": "sluis:field", "operator": "eq", "rightOperand": "straatnaam"}])),
            ],
        )
        .to_string(),
    )
    .unwrap();
    let (source_url, source_db) = tree_database().await;

    let trust = pki.dir.path().join("trust");
    let policies = dir.path().to_path_buf();
    let app = spawn_app_with(backend, |s, _| {
        s.auth.trust_anchors = trust;
        s.admin.policies_dir = Some(policies);
        s.products.push(restricted("bomen", "bomen.json", SourceSettings::File { path: csv.clone(), media_type: None }));
        let db_source: SourceSettings = toml::from_str::<toml::Value>(&format!(
            "kind = \"postgres\"\nurl = \"{source_url}\"\nquery = \"SELECT id, boomsoort, wijkcode, straatnaam FROM bomen\"\nformat = \"json\"\n"
        ))
        .unwrap()
        .try_into()
        .unwrap();
        s.products.push(restricted("bomen-db", "bomen-db.json", db_source));
    })
    .await;
    let res = app
        .admin(
            reqwest::Method::POST,
            "/admin/consumers",
            Some(json!({"party_id": CLIENT_ID, "name": "Gemeente Nijmegen", "groups": ["urn:sluis:group:gemeenten"],
                        "attributes": {"wijkcodes": ["WK026801", "WK026803"]}})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let a = rs256(
        &rs256_header(&[&pki.leaf, &pki.root]),
        &claims(Utc::now()),
        &keys().leaf,
    );
    let token: Value = app.token_request(CLIENT_ID, &a).await.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let get = |product: &str| {
        app.client
            .get(format!("{}/products/{product}", app.public))
            .bearer_auth(&token)
            .send()
    };

    // GeoJSON: only one category, IDs replaced by stable pseudonyms, counts that would lie gone.
    let res = get("oorlogsschade").await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("content-length").is_none(),
        "a transformed body has no known length"
    );
    let id = txid(&res);
    let v: Value = res.json().await.unwrap();
    let features = v["features"].as_array().unwrap();
    assert_eq!(features.len(), 575);
    assert!(
        features
            .iter()
            .all(|f| f["properties"]["CATEGORIE"] == "Bombardement 22 feb")
    );
    let ids: std::collections::HashSet<_> = features
        .iter()
        .map(|f| f["properties"]["ID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 575, "pseudonyms stay distinct");
    assert!(
        ids.iter()
            .all(|p| p.len() == 32 && p.chars().all(|c| c.is_ascii_hexdigit()))
    );
    assert!(v.get("totalFeatures").is_none() && v.get("numberMatched").is_none());
    let again: Value = get("oorlogsschade").await.unwrap().json().await.unwrap();
    assert_eq!(
        again["features"][0]["properties"]["ID"], features[0]["properties"]["ID"],
        "stable for this consumer"
    );
    let rec = audit_record(&app.db.url, &id).await;
    assert!(
        rec.reasons.contains("filterRows") && rec.reasons.contains("pseudonymiseFields"),
        "{}",
        rec.reasons
    );

    // CSV: the consumer's own districts only, without street names.
    let res = get("bomen").await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert_eq!(
        text,
        "ID,BOOMSOORT,WIJKCODE\n1,Quercus robur,WK026801\n3,Platanus,WK026803\n4,Fagus,WK026801\n"
    );

    // PostgreSQL: filtered in the query, dropped in the stream.
    let res = get("bomen-db").await.unwrap();
    assert_eq!(res.status(), 200);
    let rows: Value = res.json().await.unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.get("straatnaam").is_none() && r["wijkcode"] != "WK026802")
    );

    // Another consumer's districts: other rows, and its own pseudonyms.
    app.admin(
        reqwest::Method::PATCH,
        &format!("/admin/consumers/{CLIENT_ID}"),
        Some(json!({"attributes": {"wijkcodes": ["WK026802"]}})),
    )
    .await;
    let text = get("bomen").await.unwrap().text().await.unwrap();
    assert_eq!(
        text,
        "ID,BOOMSOORT,WIJKCODE\n2,\"Tilia, europaea\",WK026802\n"
    );
    app.finish().await;
    let mut c = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    let _ = c
        .execute(format!(r#"DROP DATABASE IF EXISTS "{source_db}" WITH (FORCE)"#).as_str())
        .await;
}
