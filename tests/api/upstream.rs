//! Upstream HTTP sources: relayed as a stream with only a validated media type kept; failures,
//! timeouts and unreachable upstreams become 502 problems that reveal nothing internal.

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use sluis::catalog::Access;
use sluis::config::{ProductSettings, SourceSettings};

use crate::both_databases;
use crate::helpers::*;

both_databases!(upstream_is_relayed_and_failures_are_502);

const WFS_BODY: &str = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"ID":1,"BOOMSOORT":"Tilia"},"geometry":null}]}"#;

/// A stand-in GeoServer on a free port: /wfs answers, /broken fails, /slow hangs.
async fn start_upstream() -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/geoserver/wfs",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("application/json;charset=UTF-8")
                        .insert_header(("Set-Cookie", "JSESSIONID=secret"))
                        .insert_header(("X-Geoserver-Internal", "10.0.0.7"))
                        .insert_header(("Access-Control-Allow-Origin", "*"))
                        .body(WFS_BODY)
                }),
            )
            .route(
                "/broken",
                web::get().to(|| async {
                    HttpResponse::InternalServerError()
                        .body("java.lang.NullPointerException at org.geoserver.Internal")
                }),
            )
            .route(
                "/slow",
                web::get().to(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    HttpResponse::Ok().body("too late")
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), handle)
}

fn http_product(id: &str, url: String) -> ProductSettings {
    ProductSettings {
        id: id.into(),
        access: Access::Open,
        policy: None,
        title: None,
        description: None,
        dcat: Default::default(),
        processing_activity_id: None,
        source: SourceSettings::Http {
            url,
            media_type: None,
        },
    }
}

async fn upstream_is_relayed_and_failures_are_502(backend: Backend) {
    let (upstream, handle) = start_upstream().await;
    let closed_port = free_port();
    let app = spawn_app_with(backend, |s, _| {
        s.upstream.read_timeout_ms = 500;
        s.upstream.connect_timeout_ms = 500;
        s.products.push(http_product(
            "bomen",
            format!("{upstream}/geoserver/wfs?service=WFS&request=GetFeature&typeName=GRN_BOMEN"),
        ));
        s.products
            .push(http_product("kapot", format!("{upstream}/broken")));
        s.products
            .push(http_product("traag", format!("{upstream}/slow")));
        s.products.push(http_product(
            "weg",
            format!("http://127.0.0.1:{closed_port}/x"),
        ));
    })
    .await;

    let res = app.get("/products/bomen").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/json;charset=utf-8"
    );
    for h in [
        "set-cookie",
        "x-geoserver-internal",
        "access-control-allow-origin",
    ] {
        assert!(
            res.headers().get(h).is_none(),
            "upstream header {h} must not pass"
        );
    }
    assert_eq!(res.text().await.unwrap(), WFS_BODY);

    for (product, code) in [
        ("kapot", "UPSTREAM_ERROR"),
        ("traag", "UPSTREAM_TIMEOUT"),
        ("weg", "UPSTREAM_UNAVAILABLE"),
    ] {
        let res = app.get(&format!("/products/{product}")).await;
        assert_eq!(res.status(), 502, "{product}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let id = txid(&res);
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("127.0.0.1") && !body.contains("java.lang"),
            "no internals: {body}"
        );
        let p: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(p["code"], code, "{product}");
        let rec = audit_record(&app.db.url, &id).await;
        assert_eq!(rec.status, 502);
        assert_eq!(rec.product.as_deref(), Some(product));
        assert_eq!(rec.reasons, format!(r#"["{code}"]"#));
        assert_eq!(
            rec.decision, "permit",
            "access was granted; the source failed"
        );
    }
    app.finish().await;
    handle.stop(false).await;
}
