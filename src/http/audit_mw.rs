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
use crate::audit::{AuditEntry, Decision, now_us};
use crate::error::ApiError;
use crate::telemetry::PROCESSING_ACTIVITY;

pub const TRANSACTION_ID_HEADER: HeaderName = HeaderName::from_static("sluis-transaction-id");

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

pub async fn audited(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError("state missing"));
    };
    let started = Instant::now();
    let time_us = now_us();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let mut span = state.telemetry.request_span(
        req.method().as_str(),
        header("traceparent"),
        header("tracestate"),
    );
    let transaction_id = Uuid::now_v7();
    // The span's ids move into the context and the audit record: finishing a span needs none.
    req.extensions_mut().insert(RequestContext {
        transaction_id,
        traceparent: std::mem::take(&mut span.traceparent),
    });
    let trace_id = std::mem::take(&mut span.trace_id);
    let span_id = std::mem::take(&mut span.span_id);
    let method = req.method().as_str().to_string();
    let path = req.path().to_string();

    // Handlers and extractors turn their errors into responses; an Err here comes from the
    // framework itself. It carries no data, but it is still recorded.
    let res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            let entry = AuditEntry {
                transaction_id,
                time_us,
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
                method,
                path,
                trace_id: Some(trace_id),
                span_id: Some(span_id),
            };
            if let Err(audit) = state.auditor.record(entry).await {
                tracing::error!(transaction_id = %transaction_id, error = %audit, "audit record not written");
            }
            span.finish(None, vec![], status);
            return Err(e);
        }
    };

    let status = res.status();
    let route = res.request().match_pattern();
    let error_code = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .map(|e| {
            if status.is_server_error() {
                tracing::warn!(transaction_id = %transaction_id, error = %e, "request failed");
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
    // Attributes are only worth building for spans that leave the process.
    let mut attributes = Vec::new();
    if state.telemetry.exporting() {
        attributes.extend([
            KeyValue::new("http.request.method", method.clone()),
            KeyValue::new("url.path", path.clone()),
            KeyValue::new("sluis.transaction_id", transaction_id.to_string()),
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
    }
    // Like the attributes, the span's name is only worth building for a span that is exported.
    let span_name = state.telemetry.exporting().then(|| match &route {
        Some(r) => format!("{method} {r}"),
        None => method.clone(),
    });
    let entry = AuditEntry {
        transaction_id,
        time_us,
        party_id: facts.party_id,
        product: facts.product,
        action: facts
            .action
            .unwrap_or(if method == "GET" || method == "HEAD" {
                "read"
            } else {
                "write"
            })
            .to_string(),
        purpose: facts.purpose,
        decision,
        reasons,
        policy_id: facts.policy_id,
        policy_version: facts.policy_version,
        status: status.as_u16(),
        method,
        path,
        trace_id: Some(trace_id),
        span_id: Some(span_id),
    };
    let product = entry.product.clone();

    let txid = HeaderValue::from_str(
        transaction_id
            .hyphenated()
            .encode_lower(&mut Uuid::encode_buffer()),
    )
    .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    match state.auditor.record(entry).await {
        Ok(()) => {
            let mut res = res;
            res.headers_mut().insert(TRANSACTION_ID_HEADER, txid);
            state.telemetry.metrics.observe(
                product.as_deref(),
                decision.as_str(),
                status.as_u16(),
                started.elapsed(),
            );
            span.finish(span_name, attributes, status.as_u16());
            Ok(res)
        }
        Err(e) => {
            tracing::error!(transaction_id = %transaction_id, error = %e, "not served: audit record not written");
            // The prepared response (and its open source) is dropped unsent.
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
            Ok(ServiceResponse::new(req, refused))
        }
    }
}
