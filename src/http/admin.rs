//! The admin listener: health (open, unaudited), and behind the admin token the consumer
//! registry. Admin calls pass the audit middleware like data requests do, recording who
//! (the admin token holder) did what.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::audit_mw::{AuditFacts, audited};
use crate::app::AppState;
use crate::audit::now_us;
use crate::auth::PartyId;
use crate::consumer::{self, Consumer, ConsumerStatus};
use crate::error::ApiError;

/// Who did it, in admin audit records: the holder of the admin token.
const ADMIN_ACTOR: &str = "admin";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .service(
            web::scope("/admin")
                .wrap(actix_web::middleware::from_fn(require_admin))
                .wrap(actix_web::middleware::from_fn(audited))
                .route("/consumers", web::post().to(register))
                .route("/consumers", web::get().to(list))
                .route("/consumers/{party_id}", web::get().to(get))
                .route("/consumers/{party_id}", web::patch().to(change))
                .configure(super::audit_api::admin_routes),
        )
        .service(
            web::resource("/metrics")
                .wrap(actix_web::middleware::from_fn(require_admin))
                .route(web::get().to(metrics)),
        )
        .service(
            web::scope("/access/v1")
                .wrap(actix_web::middleware::from_fn(require_admin))
                .configure(super::authzen::configure),
        );
}

/// Constant-time comparison of the presented bearer token with the configured admin token.
async fn require_admin<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let refuse = |req: ServiceRequest, e: ApiError| {
        req.extensions_mut().insert(AuditFacts {
            action: Some("admin"),
            ..Default::default()
        });
        Ok(req.error_response(e).map_into_right_body())
    };
    let expected = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.admin_token.clone());
    let Some(expected) = expected else {
        return refuse(req, ApiError::AdminDisabled);
    };
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .unwrap_or("");
    // Hashing first makes the comparison independent of the presented token's length.
    let ok: bool = Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into();
    if !ok {
        return refuse(req, ApiError::AdminUnauthorized);
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn admin_facts(req: &HttpRequest, action: &'static str, reasons: Vec<String>) {
    req.extensions_mut().insert(AuditFacts {
        party_id: Some(ADMIN_ACTOR.into()),
        action: Some(action),
        reasons,
        ..Default::default()
    });
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    party_id: String,
    name: String,
    certificate: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    name: Option<String>,
    /// `null` removes the registered certificate; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    certificate: Option<Option<String>>,
    groups: Option<Vec<String>>,
    attributes: Option<std::collections::BTreeMap<String, Vec<String>>>,
    status: Option<ConsumerStatus>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidConsumer(format!("invalid JSON body: {e}")))
}

fn invalid(e: consumer::InvalidConsumer) -> ApiError {
    ApiError::InvalidConsumer(e.to_string())
}

async fn register(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r: Registration = json_body(&body)?;
    admin_facts(
        &req,
        "consumer.register",
        vec![format!("party_id={}", r.party_id)],
    );
    let party_id = PartyId::parse(&r.party_id)
        .map_err(|e| ApiError::InvalidConsumer(format!("party_id: {e}")))?;
    let now = now_us();
    let c = Consumer {
        party_id,
        name: consumer::validate_name(&r.name).map_err(invalid)?,
        certificate: r
            .certificate
            .as_deref()
            .map(consumer::validate_certificate)
            .transpose()
            .map_err(invalid)?,
        groups: consumer::validate_groups(&r.groups).map_err(invalid)?,
        attributes: consumer::validate_attributes(&r.attributes).map_err(invalid)?,
        status: ConsumerStatus::Active,
        created_us: now,
        updated_us: now,
    };
    if !state.registry.register(&c).await? {
        return Err(ApiError::ConsumerExists);
    }
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/admin/consumers/{}", c.party_id)))
        .json(view(&c)))
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    admin_facts(&req, "consumer.list", vec![]);
    let all = state.registry.list().await?;
    Ok(HttpResponse::Ok().json(json!({"consumers": all.iter().map(view).collect::<Vec<_>>()})))
}

async fn get(
    req: HttpRequest,
    party_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin_facts(&req, "consumer.read", vec![format!("party_id={party_id}")]);
    let c = state
        .registry
        .get(&party_id)
        .await?
        .ok_or(ApiError::ConsumerNotFound)?;
    Ok(HttpResponse::Ok().json(view(&c)))
}

async fn change(
    req: HttpRequest,
    party_id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ch: Change = json_body(&body)?;
    let mut what = vec![format!("party_id={party_id}")];
    if let Some(s) = ch.status {
        what.push(format!("status={}", s.as_str()));
    }
    if ch.name.is_some() {
        what.push("name".into());
    }
    if ch.groups.is_some() {
        what.push("groups".into());
    }
    if ch.attributes.is_some() {
        what.push("attributes".into());
    }
    if ch.certificate.is_some() {
        what.push("certificate".into());
    }
    admin_facts(&req, "consumer.change", what);
    let current = state
        .registry
        .get(&party_id)
        .await?
        .ok_or(ApiError::ConsumerNotFound)?;
    let mut c = Consumer::clone(&current);
    if let Some(name) = ch.name {
        c.name = consumer::validate_name(&name).map_err(invalid)?;
    }
    if let Some(cert) = ch.certificate {
        c.certificate = cert
            .as_deref()
            .map(consumer::validate_certificate)
            .transpose()
            .map_err(invalid)?;
    }
    if let Some(groups) = ch.groups {
        c.groups = consumer::validate_groups(&groups).map_err(invalid)?;
    }
    if let Some(attributes) = ch.attributes {
        c.attributes = consumer::validate_attributes(&attributes).map_err(invalid)?;
    }
    if let Some(status) = ch.status {
        c.status = status;
    }
    c.updated_us = now_us();
    if !state.registry.update(&c).await? {
        return Err(ApiError::ConsumerNotFound);
    }
    Ok(HttpResponse::Ok().json(view(&c)))
}

fn view(c: &Consumer) -> serde_json::Value {
    let time = |us: i64| chrono::DateTime::from_timestamp_micros(us).map(|t| t.to_rfc3339());
    json!({
        "party_id": c.party_id,
        "name": c.name,
        "certificate": c.certificate,
        "groups": c.groups,
        "attributes": c.attributes,
        "status": c.status,
        "created": time(c.created_us),
        "updated": time(c.updated_us),
    })
}

/// Prometheus/OpenMetrics exposition; values owned by other parts are read now.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.telemetry.metrics;
    m.audit_queue_depth.set(state.auditor.queue_depth() as i64);
    if let Some(p) = &state.policies {
        m.policy_reload_failures
            .set(p.status().reload_failures as i64);
    }
    let mut extra = crate::telemetry::audit_families(&state.auditor.stats());
    extra.push_str(&state.harvest.prometheus());
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(m.encode(&extra))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "live"}))
}

/// Ready = the database takes writes and the policies are loaded. A policy edit that failed to
/// load is reported here (the last valid version stays in force), but does not make us unready.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    // The database bounds the wait (busy/statement/acquire timeouts); a future-level timeout
    // could cancel a statement mid-flight and spoil the pooled connection.
    let database = state.db.ping().await;
    if let Err(e) = &database {
        tracing::warn!(error = %e, "readiness: database unreachable");
    }
    let policies = state.policies.as_ref().map(|p| {
        let s = p.status();
        json!({
            "status": if s.errors.is_empty() { "up" } else { "degraded" },
            "loaded": s.policies.iter().map(|i| json!({"id": i.id, "version": i.version})).collect::<Vec<_>>(),
            "errors": s.errors,
            "reload_failures": s.reload_failures,
        })
    });
    let body = json!({
        "status": if database.is_ok() { "ready" } else { "not ready" },
        "checks": {
            "database": {"status": if database.is_ok() { "up" } else { "down" }, "kind": state.db.kind()},
            "policies": policies,
            // A failing portal leaves the last good catalog in service: reported, still ready.
            "portal": state.harvest.snapshot(),
        },
        "products": state.catalog.len(),
    });
    if database.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
