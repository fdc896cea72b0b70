//! The admin listener: liveness and readiness today; the admin API, the AuthZEN decision point
//! and metrics arrive with their issues. Health probes are not audited (they carry no data).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "live"}))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    // The database bounds the wait (busy/statement/acquire timeouts); a future-level timeout
    // could cancel a statement mid-flight and spoil the pooled connection.
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({
            "status": "ready",
            "checks": {"database": {"status": "up", "kind": state.db.kind()}},
            "products": state.catalog.len(),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            HttpResponse::ServiceUnavailable().json(json!({
                "status": "not ready",
                "checks": {"database": {"status": "down", "kind": state.db.kind()}},
            }))
        }
    }
}
