//! The AuthZEN Access Evaluation API over the loaded policies, on the admin listener:
//! `POST /access/v1/evaluation` and the batch form `POST /access/v1/evaluations`. The policy is
//! the one of the product named by `resource.id` (its id or `urn:sluis:product:<id>`), or the
//! policy named by `resource.properties.policy`.

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use super::enforce::product_iri;
use crate::app::AppState;
use crate::catalog::Access;
use crate::error::ApiError;
use crate::policy::evaluate_json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/evaluation", web::post().to(evaluation))
        .route("/evaluations", web::post().to(evaluations));
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::BadRequest(
            "an evaluation request is a JSON object".into(),
        ));
    }
    Ok(v)
}

async fn evaluation(
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = parse_body(&body)?;
    Ok(HttpResponse::Ok().json(evaluate(&state, &request)?))
}

/// AuthZEN batch: top-level subject/action/resource/context are defaults that each entry of
/// `evaluations` may override; the answer lists the decisions in the same order.
async fn evaluations(
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = parse_body(&body)?;
    let Some(items) = request.get("evaluations") else {
        // Without `evaluations` the batch form is a single evaluation.
        return Ok(HttpResponse::Ok().json(json!({"evaluations": [evaluate(&state, &request)?]})));
    };
    let items = items
        .as_array()
        .ok_or_else(|| ApiError::BadRequest("`evaluations` must be an array".into()))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let item = item
            .as_object()
            .ok_or_else(|| ApiError::BadRequest("each evaluation is a JSON object".into()))?;
        let mut merged = Map::new();
        for key in ["subject", "action", "resource", "context"] {
            if let Some(v) = item.get(key).or_else(|| request.get(key)) {
                merged.insert(key.into(), v.clone());
            }
        }
        out.push(evaluate(&state, &Value::Object(merged))?);
    }
    Ok(HttpResponse::Ok().json(json!({"evaluations": out})))
}

fn evaluate(state: &AppState, request: &Value) -> Result<Value, ApiError> {
    let mut request = request.clone();
    let resource_id = request
        .pointer("/resource/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let resource_id = resource_id.as_deref();
    let explicit = request
        .pointer("/resource/properties/policy")
        .and_then(Value::as_str);
    let policy_id = match (explicit, resource_id) {
        (Some(p), _) => p.to_string(),
        (None, Some(id)) => {
            let product_id = id.strip_prefix("urn:sluis:product:").unwrap_or(id);
            let Some(product) = state.catalog.get(product_id) else {
                return Ok(
                    json!({"decision": false, "context": {"reason": "unknown_resource", "resource": id}}),
                );
            };
            if product.access == Access::Open {
                return Ok(
                    json!({"decision": true, "context": {"reason": "open_product", "resource": product_iri(product_id)}}),
                );
            }
            // Policies name products by IRI; a bare product id means the same product.
            if let Some(id) = request.pointer_mut("/resource/id") {
                *id = Value::String(product_iri(product_id));
            }
            product.policy.clone().unwrap_or_default()
        }
        (None, None) => return Err(ApiError::BadRequest("resource.id is required".into())),
    };
    let Some(policy) = state.policies.as_ref().and_then(|s| s.get(&policy_id)) else {
        return Ok(
            json!({"decision": false, "context": {"reason": "unknown_policy", "policy": policy_id}}),
        );
    };
    evaluate_json(&policy, &request).map_err(|e| ApiError::BadRequest(e.to_string()))
}
