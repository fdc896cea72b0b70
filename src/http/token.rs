//! `POST /connect/token`: the iSHARE token endpoint. A registered, active consumer presents a
//! signed client assertion (private_key_jwt with an x5c chain); each assertion is accepted once,
//! and the answer is an access token bound to the client certificate when the client used mTLS.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;

use super::audit_mw::AuditFacts;
use super::tls::ClientCert;
use crate::app::AppState;
use crate::audit::Decision;
use crate::auth::{
    AssertionError, CLIENT_ASSERTION_TYPE, CertThumbprint, PartyId, verify_client_assertion,
};
use crate::consumer::ConsumerStatus;
use crate::error::ApiError;
use crate::store::replay;

/// Form bodies larger than this are refused before parsing (an assertion is at most 32 KiB).
const MAX_FORM: usize = 48 * 1024;

pub async fn token(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut facts = AuditFacts {
        action: Some("token"),
        ..Default::default()
    };
    let result = issue(&req, &mut payload, &state, &mut facts).await;
    // Reasons for a refusal come from the error code, as for every request.
    facts.decision = Some(if result.is_ok() {
        Decision::Permit
    } else {
        Decision::Deny
    });
    req.extensions_mut().insert(facts);
    result
}

async fn issue(
    req: &HttpRequest,
    payload: &mut web::Payload,
    state: &AppState,
    facts: &mut AuditFacts,
) -> Result<HttpResponse, ApiError> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if form_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(ApiError::token_request(
            "TOKEN_REQUEST_INVALID",
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
        if body.len() + chunk.len() > MAX_FORM {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).map_err(|_| {
        ApiError::token_request(
            "TOKEN_REQUEST_INVALID",
            "invalid_request",
            "the form cannot be parsed",
        )
    })?;
    let field = |name: &'static str| {
        form.get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ApiError::token_request(
                    "TOKEN_REQUEST_INVALID",
                    "invalid_request",
                    format!("`{name}` is missing"),
                )
            })
    };
    if field("grant_type")? != "client_credentials" {
        return Err(ApiError::token_request(
            "TOKEN_GRANT_TYPE_UNSUPPORTED",
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        ));
    }
    if !field("scope")?.split(' ').any(|s| s == "iSHARE") {
        return Err(ApiError::token_request(
            "TOKEN_SCOPE_INVALID",
            "invalid_scope",
            "scope must include iSHARE",
        ));
    }
    if field("client_assertion_type")? != CLIENT_ASSERTION_TYPE {
        return Err(ApiError::token_request(
            "TOKEN_REQUEST_INVALID",
            "invalid_request",
            format!("client_assertion_type must be {CLIENT_ASSERTION_TYPE}"),
        ));
    }
    let client_id = field("client_id")?;
    let assertion = field("client_assertion")?;
    let party = PartyId::parse(client_id)
        .map_err(|_| ApiError::assertion(&AssertionError::InvalidClientId))?;
    // Recorded as the party that asked; a refusal below says whether it proved it.
    facts.party_id = Some(party.to_string());

    let consumer = state.registry.get(party.as_str()).await?.ok_or_else(|| {
        ApiError::token_request(
            "CONSUMER_UNKNOWN",
            "invalid_client",
            "the client is not registered here",
        )
    })?;
    if consumer.status != ConsumerStatus::Active {
        return Err(ApiError::token_request(
            "CONSUMER_SUSPENDED",
            "invalid_client",
            "the client's access is suspended",
        ));
    }
    let Some(trust) = state.trust.as_ref() else {
        return Err(ApiError::token_request(
            "TRUST_ANCHORS_MISSING",
            "invalid_client",
            "this connector has no trust anchors configured, so no certificate chain can be trusted",
        ));
    };
    let now = chrono::Utc::now();
    let verified = verify_client_assertion(
        assertion,
        client_id,
        state.tokens.our_party_id(),
        trust,
        consumer.certificate.as_deref(),
        now,
    )
    .map_err(|e| ApiError::assertion(&e))?;
    let fresh = replay::remember(
        &state.db,
        verified.party_id.as_str(),
        &verified.jti,
        verified.replay_window_end().timestamp_micros(),
        now.timestamp_micros(),
    )
    .await?;
    if !fresh {
        return Err(ApiError::assertion(&AssertionError::Replayed));
    }

    let binding = req
        .conn_data::<ClientCert>()
        .map(|c| CertThumbprint::of_der(&c.0));
    let issued = state.tokens.issue(&verified.party_id, binding.as_ref())?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        })))
}
