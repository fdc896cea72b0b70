//! The audit middleware: gives every request a transaction id and a span (child of the caller's
//! `traceparent`), lets the handler prepare its response (the source is opened, nothing is
//! sent), commits the audit record, and only then releases the response. If the record cannot be
//! committed, the prepared body is dropped and the client gets 503.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use opentelemetry::KeyValue;
use uuid::Uuid;

use crate::app::AppState;
use crate::audit::{AuditEntry, AuditError, Decision, now_us};
use crate::error::ApiError;
use crate::telemetry::{PROCESSING_ACTIVITY, RequestSpan};

pub const TRANSACTION_ID_HEADER: HeaderName = HeaderName::from_static("sluis-transaction-id");
// W3C Trace Context. Names, not strings: a lookup by string allocates the name per request.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Set by the middleware before the handler runs.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub transaction_id: Uuid,
    /// W3C `traceparent` naming this request's span, for calls to upstream sources.
    pub traceparent: String,
}

/// What the handler learned that belongs in the audit record. Anything left unset is derived
/// from the response (decision from the status, reasons from the error code).
#[derive(Debug, Default)]
pub struct AuditFacts {
    pub party_id: Option<String>,
    pub product: Option<String>,
    pub action: Option<&'static str>,
    pub purpose: Option<String>,
    pub decision: Option<Decision>,
    pub reasons: Vec<String>,
    pub policy_id: Option<String>,
    pub policy_version: Option<String>,
    /// For the span only (Logboek Dataverwerkingen), not part of the audit record.
    pub processing_activity: Option<String>,
}

/// The audit middleware. The work around the two waits (for the handler, and for the record's
/// commit) is done in plain functions, and what crosses a wait is boxed: actix boxes this future
/// for every request (twice its size, with the scope's wrapper), and an allocation of a kilobyte
/// or more takes glibc's slow path, where two small ones do not.
pub async fn audited(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError("state missing"));
    };
    let begun = Box::new(Begun::start(&state, &req));
    // Handlers and extractors turn their errors into responses; an Err here comes from the
    // framework itself. It carries no data, but it is still recorded (boxed: it is rare).
    let res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => return Box::pin(framework_error(state, *begun, e)).await,
    };
    let (committed, served) = conclude(&state, *begun, res);
    let served = Box::new(served);
    let outcome = committed.await;
    Ok(served.release(&state, outcome))
}

/// What the middleware knows before the handler runs.
struct Begun {
    started: Instant,
    time_us: i64,
    span: RequestSpan,
    transaction_id: Uuid,
    trace_id: String,
    span_id: String,
    method: String,
    path: String,
}

impl Begun {
    fn start(state: &AppState, req: &ServiceRequest) -> Self {
        let started = Instant::now();
        let time_us = now_us();
        let header = |name: &HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
        let mut span = state.telemetry.request_span(
            req.method().as_str(),
            header(&TRACEPARENT),
            header(&TRACESTATE),
        );
        let transaction_id = Uuid::now_v7();
        // The span's ids move into the context and the audit record: finishing a span needs
        // none.
        req.extensions_mut().insert(RequestContext {
            transaction_id,
            traceparent: std::mem::take(&mut span.traceparent),
        });
        Self {
            started,
            time_us,
            transaction_id,
            trace_id: std::mem::take(&mut span.trace_id),
            span_id: std::mem::take(&mut span.span_id),
            span,
            method: req.method().as_str().to_string(),
            path: req.path().to_string(),
        }
    }
}

async fn framework_error(
    state: web::Data<AppState>,
    b: Begun,
    e: actix_web::Error,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let status = e.as_response_error().status_code().as_u16();
    let entry = AuditEntry {
        transaction_id: b.transaction_id,
        time_us: b.time_us,
        party_id: None,
        product: None,
        action: "request".into(),
        purpose: None,
        decision: Decision::Deny,
        reasons: vec![
            e.as_error::<ApiError>()
                .map_or("INTERNAL", ApiError::code)
                .into(),
        ],
        policy_id: None,
        policy_version: None,
        status,
        method: b.method,
        path: b.path,
        trace_id: Some(b.trace_id),
        span_id: Some(b.span_id),
    };
    if let Err(audit) = state.auditor.submit(entry).await {
        tracing::error!(transaction_id = %b.transaction_id, error = %audit, "audit record not written");
    }
    b.span.finish(None, vec![], status);
    Err(e)
}

/// The prepared response, waiting for its audit record's commit.
struct Served {
    res: ServiceResponse<BoxBody>,
    started: Instant,
    span: RequestSpan,
    span_name: Option<String>,
    attributes: Vec<KeyValue>,
    transaction_id: Uuid,
    product: Option<String>,
    decision: Decision,
    status: u16,
}

/// Builds the audit record of a handled request and queues it: the returned future resolves
/// when it is committed.
fn conclude(
    state: &AppState,
    b: Begun,
    res: ServiceResponse<BoxBody>,
) -> (
    impl std::future::Future<Output = Result<(), AuditError>> + use<>,
    Served,
) {
    let status = res.status();
    let error_code = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .map(|e| {
            if status.is_server_error() {
                tracing::warn!(transaction_id = %b.transaction_id, error = %e, "request failed");
            }
            e.code()
        });
    let facts = res
        .request()
        .extensions_mut()
        .remove::<AuditFacts>()
        .unwrap_or_default();
    let decision = facts.decision.unwrap_or(if status.as_u16() < 400 {
        Decision::Permit
    } else {
        Decision::Deny
    });
    let mut reasons = facts.reasons;
    if reasons.is_empty() {
        if let Some(code) = error_code {
            reasons.push(code.to_string());
        }
    }
    // The span's attributes and name are only worth building for spans that leave the process.
    let mut attributes = Vec::new();
    let mut span_name = None;
    if state.telemetry.exporting() {
        let route = res.request().match_pattern();
        attributes.extend([
            KeyValue::new("http.request.method", b.method.clone()),
            KeyValue::new("url.path", b.path.clone()),
            KeyValue::new("sluis.transaction_id", b.transaction_id.to_string()),
            KeyValue::new("sluis.decision", decision.as_str()),
        ]);
        let optional = [
            ("http.route", &route),
            ("sluis.product", &facts.product),
            ("sluis.party_id", &facts.party_id),
            (PROCESSING_ACTIVITY, &facts.processing_activity),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                attributes.push(KeyValue::new(key, v.clone()));
            }
        }
        span_name = Some(match &route {
            Some(r) => format!("{} {r}", b.method),
            None => b.method.clone(),
        });
    }
    let action = facts
        .action
        .unwrap_or(if b.method == "GET" || b.method == "HEAD" {
            "read"
        } else {
            "write"
        });
    let product = facts.product.clone();
    let entry = AuditEntry {
        transaction_id: b.transaction_id,
        time_us: b.time_us,
        party_id: facts.party_id,
        product: facts.product,
        action: action.to_string(),
        purpose: facts.purpose,
        decision,
        reasons,
        policy_id: facts.policy_id,
        policy_version: facts.policy_version,
        status: status.as_u16(),
        method: b.method,
        path: b.path,
        trace_id: Some(b.trace_id),
        span_id: Some(b.span_id),
    };
    let served = Served {
        res,
        started: b.started,
        span: b.span,
        span_name,
        attributes,
        transaction_id: b.transaction_id,
        product,
        decision,
        status: status.as_u16(),
    };
    (state.auditor.submit(entry), served)
}

impl Served {
    /// The response, once its audit record is committed; if it could not be, the prepared body
    /// (and its open source) is dropped unsent and the client gets 503.
    fn release(
        self,
        state: &AppState,
        outcome: Result<(), AuditError>,
    ) -> ServiceResponse<BoxBody> {
        let Served {
            mut res,
            started,
            span,
            span_name,
            mut attributes,
            transaction_id,
            product,
            decision,
            status,
        } = self;
        let txid = HeaderValue::from_str(
            transaction_id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer()),
        )
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        match outcome {
            Ok(()) => {
                res.headers_mut().insert(TRANSACTION_ID_HEADER, txid);
                state.telemetry.metrics.observe(
                    product.as_deref(),
                    decision.as_str(),
                    status,
                    started.elapsed(),
                );
                span.finish(span_name, attributes, status);
                res
            }
            Err(e) => {
                tracing::error!(transaction_id = %transaction_id, error = %e, "not served: audit record not written");
                let (req, _unsent) = res.into_parts();
                let refused = ApiError::AuditUnavailable(e);
                let code = refused.code();
                let mut refused = refused.error_response();
                refused.headers_mut().insert(TRANSACTION_ID_HEADER, txid);
                state
                    .telemetry
                    .metrics
                    .observe(product.as_deref(), "deny", 503, started.elapsed());
                attributes.push(KeyValue::new("sluis.refused", code));
                span.finish(span_name, attributes, 503);
                ServiceResponse::new(req, refused)
            }
        }
    }
}
