//! The public listener: product data today; the catalog and the token endpoint arrive with their
//! issues. Handlers prepare a response and leave the audit record to the middleware.

use std::sync::Arc;

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use super::admin::bearer;
use super::audit_mw::{AuditFacts, RequestContext, audited};
use super::enforce;
use super::tls::ClientCert;
use crate::app::AppState;
use crate::audit::Decision;
use crate::catalog::{Access, Product};
use crate::consumer::{Consumer, ConsumerStatus};
use crate::error::ApiError;
use crate::policy::{CompiledPolicy, Obligation};
use crate::source::transform::{self, TransformPlan};
use crate::source::{DataSource, OpenContext};
use crate::store::usage;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(actix_web::middleware::from_fn(audited))
            .route("/connect/token", web::post().to(super::token::token))
            .service(
                web::resource("/catalog")
                    .route(web::get().to(super::catalog::get_catalog))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/products/{id}")
                    .route(web::get().to(get_product))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/audit")
                    .route(web::get().to(super::audit_api::own_records))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    );
}

async fn get_product(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let product = state.catalog.get(&id).ok_or(ApiError::ProductNotFound)?;
    let mut facts = AuditFacts {
        product: Some(product.id.to_string()),
        action: Some("read"),
        processing_activity: product.processing_activity_id.clone(),
        ..Default::default()
    };
    let mut extra_headers = Vec::new();
    let mut plan = None;
    if product.access == Access::Restricted {
        facts.policy_id = product.policy.clone();
        facts.purpose = enforce::declared_purpose(&req).map(str::to_string);
        match check_restricted(&req, &state, &product, &mut facts).await {
            Ok(fulfilment) => {
                facts.reasons = fulfilment.reasons;
                extra_headers = fulfilment.headers;
                // Boxed: held across the source's opening, it would size every request's future.
                plan = fulfilment.plan.map(Box::new);
            }
            Err(e) => {
                facts.decision = Some(Decision::Deny);
                if let ApiError::PolicyDenied { reasons } = &e {
                    facts.reasons.clone_from(reasons);
                }
                req.extensions_mut().insert(facts);
                return Err(e);
            }
        }
    }
    // Access is granted; a source failure after this point is recorded as a permitted request
    // that failed, with the error code as its reason.
    facts.decision = Some(Decision::Permit);
    req.extensions_mut().insert(facts);
    // Only an upstream HTTP source passes the trace context on.
    let traceparent = match product.source {
        DataSource::Http(_) => req
            .extensions()
            .get::<RequestContext>()
            .map(|c| c.traceparent.clone()),
        _ => None,
    };
    // A database source filters rows in its query; the stream transform does the rest.
    let in_query = matches!(product.source, DataSource::Postgres(_));
    let row_filters = match (&plan, in_query) {
        (Some(p), true) => p.row_filters().to_vec(),
        _ => Vec::new(),
    };
    if in_query {
        plan = plan.and_then(|p| TransformPlan::without_row_filters(*p).map(Box::new));
    }
    let mut body = product
        .source
        .open(&OpenContext {
            traceparent: traceparent.as_deref(),
            row_filters: &row_filters,
        })
        .await?;
    if let Some(plan) = plan {
        body.stream = match transform::apply(&body.media_type, body.stream, *plan) {
            Ok(stream) => stream,
            Err(e) => {
                // Refused before a byte is sent: the product's format cannot carry the obligation.
                let reasons = vec![format!(
                    "an obligation cannot be fulfilled for this product: {e}"
                )];
                if let Some(f) = req.extensions_mut().get_mut::<AuditFacts>() {
                    f.decision = Some(Decision::Deny);
                    f.reasons.clone_from(&reasons);
                }
                return Err(ApiError::PolicyDenied { reasons });
            }
        };
        // The transformed body is shorter than the source: its length is unknown.
        body.length = None;
    }
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, body.media_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    for h in extra_headers {
        res.append_header(h);
    }
    Ok(match body.length {
        Some(len) => res.body(SizedStream::new(len, body.stream)),
        None => res.streaming(body.stream),
    })
}

/// Credentials, then the usage policy, on every request to a restricted product.
async fn check_restricted(
    req: &HttpRequest,
    state: &AppState,
    product: &Product,
    facts: &mut AuditFacts,
) -> Result<enforce::Fulfilment, ApiError> {
    let consumer = authenticate(req, state, facts).await?;
    let policy = product
        .policy
        .as_deref()
        .and_then(|id| state.policies.as_ref()?.get(id))
        // A restricted product is never served without its policy.
        .ok_or_else(|| ApiError::PolicyDenied {
            reasons: vec!["the product's policy is not loaded".into()],
        })?;
    facts.policy_id = Some(policy.id().to_string());
    facts.policy_version = Some(policy.version().to_string());

    // Usage counts: reserve this use in every window the policy counts in, atomically in the
    // shared database, and give the reservations back if the request is not served.
    let now = chrono::Utc::now();
    let target = enforce::product_iri(product.id.as_str());
    let party = consumer.party_id.as_str();
    let mut reserved = Vec::new();
    let mut counts = Vec::new();
    for w in &policy.needs().counters {
        let Some(window_start) = enforce::window_start(w.period.as_ref(), now) else {
            release_all(state, &reserved).await;
            return Err(ApiError::PolicyDenied {
                reasons: vec![format!("count window `{}` mixes months and days", w.key)],
            });
        };
        let key = usage::CounterKey {
            party_id: party,
            target: &target,
            window_key: &w.key,
            window_start,
        };
        // Boxed, like every query on the request path: only policies that count pay its size.
        match Box::pin(usage::reserve(&state.db, &key)).await {
            Ok(earlier) => {
                counts.push((w.key.as_str(), earlier));
                reserved.push(key);
            }
            Err(e) => {
                release_all(state, &reserved).await;
                return Err(e.into());
            }
        }
    }
    let local = now.with_timezone(&chrono::Local).fixed_offset();
    // The decision and the fulfilment are temporaries of this statement: nothing of them is held
    // across the release below, which keeps every restricted request's future small.
    let refused = match judge(
        state, product, &policy, &consumer, &target, facts, &counts, local,
    ) {
        Ok(fulfilment) => return Ok(fulfilment),
        Err(e) => e,
    };
    release_all(state, &reserved).await;
    Err(refused)
}

/// The policy's decision for this request and, if it permits, what serving it must carry.
#[allow(clippy::too_many_arguments)]
fn judge(
    state: &AppState,
    product: &Product,
    policy: &CompiledPolicy,
    consumer: &Consumer,
    target: &str,
    facts: &AuditFacts,
    counts: &[(&str, u64)],
    local: chrono::DateTime<chrono::FixedOffset>,
) -> Result<enforce::Fulfilment, ApiError> {
    let decision = enforce::decide(
        policy,
        consumer,
        target,
        facts.purpose.as_deref(),
        counts,
        local,
    );
    if !decision.allowed {
        return Err(ApiError::PolicyDenied {
            reasons: enforce::denial_reasons(&decision),
        });
    }
    // The key costs a hash: derived only for a decision that pseudonymises. Without it, a plan
    // that needs one is refused, never built with a weaker key.
    let key = decision
        .obligations
        .iter()
        .any(|o| matches!(o, Obligation::PseudonymiseFields { .. }))
        .then(|| {
            enforce::pseudonym_key(
                &state.pseudonym_secret,
                product.id.as_str(),
                consumer.party_id.as_str(),
            )
        });
    enforce::fulfil(&decision, key.as_ref().map_or(&[][..], |k| &k[..]))
}

async fn release_all(state: &AppState, reserved: &[usage::CounterKey<'_>]) {
    for k in reserved {
        if let Err(e) = Box::pin(usage::release(&state.db, k)).await {
            // The use stays counted: the consumer may be refused one request early, never late.
            tracing::warn!(error = %e, "usage reservation not released");
        }
    }
}

/// The consumer behind a valid bearer access token, checked on every request: signature, expiry,
/// audience, certificate binding, and that the consumer is registered and active right now.
pub(crate) async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    facts: &mut AuditFacts,
) -> Result<Arc<Consumer>, ApiError> {
    // A header value that is all ASCII is all visible (the parser refuses other controls), so
    // this is `to_str`, checked a word rather than a byte at a time: tokens are long.
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .filter(|b| b.is_ascii())
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(bearer)
        .ok_or(ApiError::TokenMissing)?;
    let cert = req.conn_data::<ClientCert>().map(|c| c.0.as_slice());
    let claims = state
        .verified_tokens
        .verify(&state.tokens, token, chrono::Utc::now(), cert)?;
    facts.party_id = Some(claims.sub.to_string());
    let consumer = state
        .registry
        .get(claims.sub.as_str())
        .await?
        .ok_or(ApiError::ConsumerUnknown)?;
    if consumer.status != ConsumerStatus::Active {
        return Err(ApiError::ConsumerSuspended);
    }
    Ok(consumer)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
