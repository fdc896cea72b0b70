//! OpenTelemetry and metrics: one span per request, child of the caller's `traceparent`, with the
//! Logboek Dataverwerkingen processing activity; the same ids in the audit record; the trace
//! passed on to upstream sources; Prometheus metrics behind the admin token.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use sluis::telemetry::{PROCESSING_ACTIVITY, Telemetry};

use crate::both_databases;
use crate::helpers::*;

both_databases!(
    spans_follow_the_trace_into_the_audit_log_and_upstream,
    metrics_count_requests_and_audit_batches
);

const ACTIVITY: &str = "https://register.nijmegen.nl/verwerkingen/erfgoed-kaarten";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// An upstream that remembers the `traceparent` it was called with.
async fn recording_upstream() -> (
    String,
    Arc<Mutex<Vec<String>>>,
    actix_web::dev::ServerHandle,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let s = s.clone();
        App::new().route(
            "/wfs",
            web::get().to(move |req: HttpRequest| {
                let s = s.clone();
                async move {
                    if let Some(tp) = req
                        .headers()
                        .get("traceparent")
                        .and_then(|v| v.to_str().ok())
                    {
                        s.lock().unwrap().push(tp.to_string());
                    }
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body("[]")
                }
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
    (format!("http://127.0.0.1:{port}/wfs"), seen, handle)
}

async fn spans_follow_the_trace_into_the_audit_log_and_upstream(backend: Backend) {
    let (upstream, seen, upstream_handle) = recording_upstream().await;
    let exporter = InMemorySpanExporter::default();
    let db = TestDb::new(backend).await;
    let mut settings = test_settings(&db);
    settings.products[0].processing_activity_id = Some(ACTIVITY.into());
    let mut relay = file_product("relay", demo_file("stadsmuur.geojson"));
    relay.source = sluis::config::SourceSettings::Http {
        url: upstream,
        media_type: None,
    };
    settings.products.push(relay);
    let app = start_with_telemetry(db, settings, Telemetry::with_exporter(exporter.clone())).await;

    let res = app
        .client
        .get(format!("{}/products/stadsmuur", app.public))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = txid(&res);
    let rec = audit_record(&app.db.url, &id).await;
    let spans = exporter.get_finished_spans().unwrap();
    let span = spans
        .iter()
        .find(|s| {
            s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "sluis.transaction_id" && kv.value.as_str() == id)
        })
        .expect("a span for the request");
    assert_eq!(
        span.span_context.trace_id().to_string(),
        TRACE,
        "joins the caller's trace"
    );
    assert_eq!(
        span.parent_span_id.to_string(),
        PARENT,
        "child of the caller's span"
    );
    assert_eq!(rec.trace_id.as_deref(), Some(TRACE));
    assert_eq!(
        rec.span_id.as_deref(),
        Some(span.span_context.span_id().to_string().as_str()),
        "audit record names the span"
    );
    assert_eq!(span.name, "GET /products/{id}");
    let attr = |k: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.as_str().to_string())
    };
    assert_eq!(attr(PROCESSING_ACTIVITY).as_deref(), Some(ACTIVITY));
    assert_eq!(attr("sluis.product").as_deref(), Some("stadsmuur"));
    assert_eq!(attr("sluis.decision").as_deref(), Some("permit"));

    // The upstream call carries the request's span as its parent.
    let res = app
        .client
        .get(format!("{}/products/relay", app.public))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rec = audit_record(&app.db.url, &txid(&res)).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0], format!("00-{TRACE}-{}-01", rec.span_id.unwrap()));

    // An invalid traceparent starts a fresh trace rather than being trusted.
    let res = app
        .client
        .get(format!("{}/products/stadsmuur", app.public))
        .header("traceparent", format!("00-{}-{PARENT}-01", "0".repeat(32)))
        .send()
        .await
        .unwrap();
    let rec = audit_record(&app.db.url, &txid(&res)).await;
    let trace = rec.trace_id.unwrap();
    assert_eq!(trace.len(), 32);
    assert_ne!(trace, "0".repeat(32));
    app.finish().await;
    upstream_handle.stop(false).await;
}

async fn metrics_count_requests_and_audit_batches(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        assert_eq!(app.get("/products/stadsmuur").await.status(), 200);
    }
    assert_eq!(app.get("/products/bestaat-niet").await.status(), 404);
    let res = app
        .client
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "metrics need the admin token");
    let res = app.admin(reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = res.text().await.unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"))
    };
    assert_eq!(
        value(r#"sluis_requests_total{product="stadsmuur",decision="permit",status="200"}"#),
        3.0
    );
    assert_eq!(
        value(r#"sluis_requests_total{product="-",decision="deny",status="404"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sluis_request_duration_seconds_count{product="stadsmuur"}"#),
        3.0
    );
    assert!(value("sluis_audit_records_total") >= 4.0);
    assert!(value("sluis_audit_batches_total") >= 1.0);
    assert_eq!(
        value(r#"sluis_audit_batch_size_bucket{le="+Inf"}"#),
        value("sluis_audit_batch_size_count")
    );
    assert_eq!(value("sluis_audit_queue_depth"), 0.0);
    assert!(text.ends_with("# EOF\n"));
    app.finish().await;
}
