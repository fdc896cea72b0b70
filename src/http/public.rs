//! The public listener: product data today; the catalog and the token endpoint arrive with their
//! issues. Handlers prepare a response and leave the audit record to the middleware.

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use super::audit_mw::{AuditFacts, audited};
use crate::app::AppState;
use crate::audit::Decision;
use crate::catalog::Access;
use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(actix_web::middleware::from_fn(audited))
            .service(
                web::resource("/products/{id}")
                    .route(web::get().to(get_product))
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
        ..Default::default()
    };
    if product.access == Access::Restricted {
        // Credentials and policy enforcement plug in here; until then nothing restricted is served.
        facts.decision = Some(Decision::Deny);
        facts.policy_id = product.policy.clone();
        req.extensions_mut().insert(facts);
        return Err(ApiError::TokenMissing);
    }
    // Access is granted; a source failure after this point is recorded as a permitted request
    // that failed, with the error code as its reason.
    facts.decision = Some(Decision::Permit);
    req.extensions_mut().insert(facts);
    let body = product.source.open().await?;
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, body.media_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    Ok(match body.length {
        Some(len) => res.body(SizedStream::new(len, body.stream)),
        None => res.streaming(body.stream),
    })
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
