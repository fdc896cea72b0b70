//! The PostgreSQL source against a real server (SLUIS_TEST_POSTGRES_URL, an admin URL; scripts/test
//! sets it): a fresh database per test with a tree table shaped like Nijmegen's GRN_BOMEN and a
//! read-only role, streamed as GeoJSON, JSON and CSV, filtered in SQL, and attacked.

mod transform_support;

use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use serde_json::Value;
use sluis::source::transform::{self, RowFilter, Transformer};
use sluis::source::{
    Geometry, PostgresOptions, PostgresSource, RowFormat, SourceBody, SourceError,
};
use sqlx::{Connection, Executor, PgConnection};
use transform_support::*;

const TREES: i64 = 2000;

struct TestDb {
    admin: String,
    name: String,
    role: String,
    /// Connects as the read-only role.
    reader_url: String,
    /// Connects as the table's owner (may write): to show the transaction alone stops writes.
    owner_url: String,
}

fn with_path(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{db}")
}

fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}")
}

impl TestDb {
    async fn new() -> TestDb {
        let admin = std::env::var("SLUIS_TEST_POSTGRES_URL").expect(
            "SLUIS_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts a PostgreSQL",
        );
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("sluis_transform_{}", &id[..12]);
        let role = format!("sluis_reader_{}", &id[..12]);
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("admin connection");
        conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap();
        conn.execute(format!(r#"CREATE ROLE "{role}" LOGIN PASSWORD 'reader-pw'"#).as_str())
            .await
            .unwrap();
        let owner_url = with_path(&admin, &name);
        let mut db = PgConnection::connect(&owner_url).await.unwrap();
        // Nijmegen's tree register has these columns (upper case, as the WFS names them); the
        // geometry is longitude/latitude here because this server has no PostGIS.
        db.execute(
            r#"CREATE TABLE bomen (
                "ID" integer PRIMARY KEY,
                "BOOMSOORT" text NOT NULL,
                "PLANTJAAR" integer,
                "WIJKNAAM" text,
                "WIJKCODE" text NOT NULL,
                "STRAATNAAM" text,
                "HOOGTE_EXACT" numeric(5,2),
                "DATUM_BIJGEWERKT" timestamptz,
                "GEZOND" boolean,
                "EXTRA" jsonb,
                lon double precision,
                lat double precision
            )"#,
        )
        .await
        .unwrap();
        db.execute(
            format!(
                r#"INSERT INTO bomen
                SELECT i,
                       (ARRAY['Quercus robur','Tilia × europaea','Platanus × hispanica'])[1 + i % 3],
                       CASE WHEN i % 50 = 0 THEN NULL ELSE 1900 + i % 124 END,
                       (ARRAY['Nijmegen-Centrum','Nijmegen-Oost','Dukenburg'])[1 + i % 3],
                       'WK02680' || (1 + i % 3),
                       CASE WHEN i = 7 THEN 'Hertogstraat, hoek "Oost"' ELSE '’s-Gravensweg ' || i END,
                       (i % 3000) / 100.0 + 0.5,
                       timestamptz '2024-03-01 12:00:00+01' + i * interval '1 hour',
                       i % 2 = 0,
                       jsonb_build_object('bron', 'BOR', 'n', i),
                       5.80 + i * 0.0001,
                       51.80 + i * 0.00005
                FROM generate_series(1, {TREES}) AS i"#
            )
            .as_str(),
        )
        .await
        .unwrap();
        db.execute(
            format!(
                r#"GRANT CONNECT ON DATABASE "{name}" TO "{role}";
                   GRANT USAGE ON SCHEMA public TO "{role}";
                   GRANT SELECT ON bomen TO "{role}";"#
            )
            .as_str(),
        )
        .await
        .unwrap();
        let reader_url = with_path(&with_user(&admin, &role, "reader-pw"), &name);
        TestDb {
            admin,
            name,
            role,
            reader_url,
            owner_url,
        }
    }

    fn source(&self, query: &str, format: RowFormat) -> PostgresSource {
        self.source_as(&self.reader_url, query, format, Duration::from_secs(10))
    }

    fn source_as(
        &self,
        url: &str,
        query: &str,
        format: RowFormat,
        statement_timeout: Duration,
    ) -> PostgresSource {
        PostgresSource::new(PostgresOptions {
            url: url.to_string(),
            query: query.to_string(),
            format,
            geometry: Geometry::LonLat {
                lon: "lon".into(),
                lat: "lat".into(),
            },
            statement_timeout,
            max_connections: 2,
        })
        .unwrap()
    }

    async fn count(&self) -> i64 {
        let mut db = PgConnection::connect(&self.owner_url).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM bomen")
            .fetch_one(&mut db)
            .await
            .unwrap()
    }

    async fn drop(self) {
        let mut conn = PgConnection::connect(&self.admin).await.unwrap();
        let _ = conn
            .execute(format!(r#"DROP DATABASE "{}" WITH (FORCE)"#, self.name).as_str())
            .await;
        let _ = conn
            .execute(format!(r#"DROP ROLE "{}""#, self.role).as_str())
            .await;
    }
}

const QUERY: &str = r#"SELECT "ID", "BOOMSOORT", "PLANTJAAR", "WIJKNAAM", "WIJKCODE", "STRAATNAAM",
    "HOOGTE_EXACT", "DATUM_BIJGEWERKT", "GEZOND", "EXTRA", lon, lat FROM bomen ORDER BY "ID";"#;

fn wijk(values: &[&str]) -> Vec<RowFilter> {
    vec![RowFilter {
        property: "WIJKCODE".into(),
        allowed: values.iter().map(|v| v.to_string()).collect(),
    }]
}

async fn body(b: SourceBody) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = b.stream;
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.expect("a chunk"));
    }
    out
}

#[tokio::test]
async fn geojson_with_a_row_filter_applied_in_sql() {
    let db = TestDb::new().await;
    let src = db.source(QUERY, RowFormat::GeoJson);
    let opened = src.open(&wijk(&["WK026802"])).await.unwrap();
    assert_eq!(opened.media_type, "application/geo+json");
    let doc: Value = serde_json::from_slice(&body(opened).await).unwrap();
    assert_eq!(doc["type"], "FeatureCollection");
    let features = doc["features"].as_array().unwrap();
    // i % 3 == 1 gives WK026802.
    assert_eq!(
        features.len() as i64,
        (1..=TREES).filter(|i| i % 3 == 1).count() as i64
    );
    let f = &features[0];
    assert_eq!(f["type"], "Feature");
    assert_eq!(f["geometry"]["type"], "Point");
    assert_eq!(f["geometry"]["coordinates"][0].as_f64(), Some(5.8001));
    let p = &f["properties"];
    assert_eq!(p["ID"], 1);
    assert_eq!(p["WIJKCODE"], "WK026802");
    assert_eq!(p["BOOMSOORT"], "Tilia × europaea");
    assert_eq!(p["PLANTJAAR"], 1901);
    assert_eq!(p["GEZOND"], false);
    assert_eq!(p["EXTRA"], serde_json::json!({"bron": "BOR", "n": 1}));
    // timestamptz in UTC, RFC 3339.
    assert_eq!(p["DATUM_BIJGEWERKT"], "2024-03-01T12:00:00+00:00");
    assert!(
        features
            .iter()
            .all(|f| f["properties"]["WIJKCODE"] == "WK026802")
    );
    db.drop().await;
}

#[tokio::test]
async fn json_keeps_column_order_and_exact_numerics() {
    let db = TestDb::new().await;
    let src = db.source(QUERY, RowFormat::Json);
    let raw = body(src.open(&[]).await.unwrap()).await;
    let text = String::from_utf8(raw).unwrap();
    assert!(
        text.starts_with(r#"[{"ID":1,"BOOMSOORT":"Tilia × europaea","PLANTJAAR":1901,"#),
        "{}",
        &text[..200]
    );
    // numeric(5,2) keeps its scale: all its digits, as PostgreSQL prints them.
    assert!(text.contains(r#""HOOGTE_EXACT":0.51,"#));
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(rows.len() as i64, TREES);
    assert_eq!(rows[49]["PLANTJAAR"], Value::Null);
    db.drop().await;
}

#[tokio::test]
async fn csv_quotes_what_needs_quoting_and_reads_back() {
    let db = TestDb::new().await;
    let src = db.source(QUERY, RowFormat::Csv);
    let raw = body(src.open(&wijk(&["WK026801", "WK026802"])).await.unwrap()).await;
    let text = String::from_utf8(raw.clone()).unwrap();
    assert!(text.starts_with(
        "ID,BOOMSOORT,PLANTJAAR,WIJKNAAM,WIJKCODE,STRAATNAAM,HOOGTE_EXACT,DATUM_BIJGEWERKT,GEZOND,EXTRA,lon,lat\r\n"
    ));
    assert!(text.contains("\r\n7,Tilia × europaea,1907,Nijmegen-Oost,WK026802,\"Hertogstraat, hoek \"\"Oost\"\"\",0.57,"));
    assert!(
        text.contains(r#","{""n"": 1, ""bron"": ""BOR""}","#),
        "jsonb as its JSON text, quoted"
    );
    // Our own strict CSV reader accepts it, and filters it the same way.
    let only_oost = plan(&[filter("WIJKCODE", &["WK026802"])]);
    let out = run_ok(CSV, only_oost, &raw);
    let rows = String::from_utf8(out).unwrap().matches("\r\n").count();
    assert_eq!(
        rows as i64,
        1 + (1..=TREES).filter(|i| i % 3 == 1).count() as i64
    );
    db.drop().await;
}

#[tokio::test]
async fn filter_values_cannot_inject_sql_and_names_must_be_plain() {
    let db = TestDb::new().await;
    let src = db.source(QUERY, RowFormat::Json);
    for evil in [
        "WK026802' OR '1'='1",
        "x'); DROP TABLE bomen; --",
        "WK026802\" OR \"WIJKCODE\" IS NOT NULL --",
    ] {
        let raw = body(src.open(&wijk(&[evil])).await.unwrap()).await;
        assert_eq!(raw, b"[]", "{evil} matched rows");
    }
    assert_eq!(db.count().await, TREES, "the table is intact");
    let bad_name = vec![RowFilter {
        property: "WIJKCODE\" = \"WIJKCODE\" OR \"ID".into(),
        allowed: vec!["x".into()],
    }];
    assert!(matches!(
        src.open(&bad_name).await,
        Err(SourceError::Config(_))
    ));
    // A plain name that is not a column fails the request, not the stream.
    let missing = vec![RowFilter {
        property: "BSN".into(),
        allowed: vec!["x".into()],
    }];
    assert!(matches!(
        src.open(&missing).await,
        Err(SourceError::UpstreamUnavailable { .. })
    ));
    db.drop().await;
}

#[tokio::test]
async fn the_transaction_is_read_only_and_has_a_statement_timeout() {
    let db = TestDb::new().await;
    // A function that writes, called by the owner, who may delete: only the read-only
    // transaction stands in the way.
    let mut owner = PgConnection::connect(&db.owner_url).await.unwrap();
    owner
        .execute(
            "CREATE FUNCTION snoei() RETURNS bigint LANGUAGE sql AS \
             $$ WITH gone AS (DELETE FROM bomen RETURNING 1) SELECT count(*) FROM gone $$",
        )
        .await
        .unwrap();
    let writer = db.source_as(
        &db.owner_url,
        "SELECT snoei() AS pruned",
        RowFormat::Json,
        Duration::from_secs(10),
    );
    let e = writer
        .open(&[])
        .await
        .err()
        .expect("a writing query must fail");
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(db.count().await, TREES);

    let slow = db.source_as(
        &db.reader_url,
        "SELECT pg_sleep(5) AS slept",
        RowFormat::Json,
        Duration::from_millis(300),
    );
    let started = std::time::Instant::now();
    let e = slow
        .open(&[])
        .await
        .err()
        .expect("the timeout must stop the query");
    assert!(matches!(e, SourceError::UpstreamTimeout { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    db.drop().await;
}

#[tokio::test]
async fn rows_stream_in_bounded_chunks_and_a_dropped_body_frees_the_connection() {
    let db = TestDb::new().await;
    let big = "SELECT i AS \"ID\", 'WK02680' || (i % 9) AS \"WIJKCODE\", repeat('x', 100) AS pad \
               FROM generate_series(1, 200000) AS i";
    let src = db.source(big, RowFormat::Json);
    let mut s = src.open(&[]).await.unwrap().stream;
    let (mut chunks, mut largest, mut total) = (0, 0, 0);
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        chunks += 1;
        largest = largest.max(c.len());
        total += c.len();
    }
    assert!(total > 200000 * 100);
    assert!(chunks > 100, "{chunks} chunks");
    assert!(largest < 64 * 1024, "a chunk of {largest} bytes");

    // One connection in the pool (max 2, both busy otherwise): abandoned bodies must give theirs back.
    for _ in 0..4 {
        let mut s = src.open(&[]).await.unwrap().stream;
        let _ = s.next().await;
        std::mem::drop(s);
    }
    let raw = body(src.open(&wijk(&["WK026801"])).await.unwrap()).await;
    assert!(raw.len() > 1000);
    db.drop().await;
}

#[tokio::test]
async fn a_restricted_product_from_the_database_end_to_end() {
    let db = TestDb::new().await;
    let src = db.source(QUERY, RowFormat::GeoJson);
    let restricted = plan(&[
        filter("WIJKCODE", &["WK026803"]),
        drop(&["STRAATNAAM", "EXTRA"]),
        pseudonymise(&["ID"]),
    ]);
    // The source applies the row filter; the stream transform does the rest.
    let filters = restricted.row_filters().to_vec();
    let rest = restricted.without_row_filters().unwrap();
    let opened = src.open(&filters).await.unwrap();
    let stream = transform::apply(&opened.media_type, opened.stream, rest).unwrap();
    let raw = body(SourceBody {
        media_type: opened.media_type,
        length: None,
        stream,
    })
    .await;
    let doc: Value = serde_json::from_slice(&raw).unwrap();
    let features = doc["features"].as_array().unwrap();
    assert_eq!(
        features.len() as i64,
        (1..=TREES).filter(|i| i % 3 == 2).count() as i64
    );
    let first = &features[0]["properties"];
    assert_eq!(first["ID"], pseudonym(KEY, "2"));
    assert!(first.get("STRAATNAAM").is_none() && first.get("EXTRA").is_none());
    assert_eq!(first["WIJKCODE"], "WK026803");
    // And the same body streams through a checking transform without complaint.
    let mut check = Transformer::new(GEOJSON, plan(&[drop(&["none"])])).unwrap();
    let mut sink = BytesMut::new();
    check.feed(&raw, &mut sink).unwrap();
    check.finish(&mut sink).unwrap();
    db.drop().await;
}
