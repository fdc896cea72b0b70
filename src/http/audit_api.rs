//! Reading the audit log over HTTP: the admin's queries and export (`/admin/audit`), and a
//! consumer's view of its own records (`GET /audit` on the public listener, FSC-style: a party
//! reads only the records in which it is the party). Read-only: no route changes a record.
//! Every call here is itself audited by the middleware of its scope.

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::audit_mw::AuditFacts;
use crate::app::AppState;
use crate::audit::Decision;
use crate::audit::query::{self, AuditFilter, Cursor, DEFAULT_PAGE, ExportFormat, MAX_PAGE, Order};
use crate::error::ApiError;

/// Who did it, in admin audit records (as in the rest of the admin API).
const ADMIN_ACTOR: &str = "admin";
/// Longest party id or product id accepted as a filter.
const MAX_FILTER_LEN: usize = 256;

/// Mounted inside the admin scope (admin token and audit middleware already applied).
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(admin_list))
        .route("/audit/export", web::get().to(admin_export))
        .route("/audit/{transaction_id}", web::get().to(admin_one));
}

/// The query string, as text: each value is validated below with a message naming it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    party_id: Option<String>,
    product: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    after: Option<String>,
    format: Option<String>,
}

fn bad(why: impl Into<String>) -> ApiError {
    ApiError::BadRequest(why.into())
}

fn params(req: &HttpRequest) -> Result<Params, ApiError> {
    serde_urlencoded::from_str(req.query_string()).map_err(|e| bad(format!("query string: {e}")))
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_micros())
                .map_err(|_| {
                    bad(format!(
                        "`{name}` must be an RFC 3339 time, e.g. 2025-01-31T12:00:00Z"
                    ))
                })
        })
        .transpose()
}

fn id_param(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() || v.len() > MAX_FILTER_LEN => Err(bad(format!(
            "`{name}` must be 1 to {MAX_FILTER_LEN} characters"
        ))),
        v => Ok(v),
    }
}

fn filter(p: &mut Params) -> Result<AuditFilter, ApiError> {
    let decision = match p.decision.as_deref() {
        None => None,
        Some("permit") => Some(Decision::Permit),
        Some("deny") => Some(Decision::Deny),
        Some(_) => return Err(bad("`decision` must be `permit` or `deny`")),
    };
    let f = AuditFilter {
        party_id: id_param("party_id", p.party_id.take())?,
        product: id_param("product", p.product.take())?,
        decision,
        since_us: time_param("since", p.since.as_deref())?,
        until_us: time_param("until", p.until.as_deref())?,
    };
    if let (Some(s), Some(u)) = (f.since_us, f.until_us) {
        if s > u {
            return Err(bad("`since` lies after `until`"));
        }
    }
    Ok(f)
}

fn paging(p: &Params) -> Result<(Option<Cursor>, u32), ApiError> {
    let limit = match p.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "`limit` must be a whole number from 1 to {MAX_PAGE}"
                ))
            })?,
    };
    let after = p
        .after
        .as_deref()
        .map(|a| Cursor::parse(a).ok_or_else(|| bad("`after` is not a cursor this API returned")))
        .transpose()?;
    Ok((after, limit))
}

fn no_format(p: &Params) -> Result<(), ApiError> {
    if p.format.is_some() {
        return Err(bad("`format` applies to /admin/audit/export only"));
    }
    Ok(())
}

async fn page_response(
    state: &AppState,
    filter: &AuditFilter,
    after: Option<Cursor>,
    limit: u32,
) -> Result<HttpResponse, ApiError> {
    let page = query::page(&state.db, filter, Order::NewestFirst, after, limit).await?;
    let records: Vec<_> = page.records.iter().map(|r| r.view()).collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "records": records,
            "next": page.next.map(|c| c.encode()),
        })))
}

fn admin_facts(req: &HttpRequest, action: &'static str, reasons: Vec<String>) {
    req.extensions_mut().insert(AuditFacts {
        party_id: Some(ADMIN_ACTOR.into()),
        action: Some(action),
        reasons,
        ..Default::default()
    });
}

/// What was asked, for the audit record of the read itself.
fn query_reason(req: &HttpRequest) -> Vec<String> {
    let q = req.query_string();
    if q.is_empty() {
        Vec::new()
    } else {
        vec![format!("query={}", q.chars().take(512).collect::<String>())]
    }
}

async fn admin_list(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin_facts(&req, "audit.read", query_reason(&req));
    let mut p = params(&req)?;
    no_format(&p)?;
    let f = filter(&mut p)?;
    let (after, limit) = paging(&p)?;
    page_response(&state, &f, after, limit).await
}

async fn admin_one(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin_facts(&req, "audit.read", vec![format!("transaction_id={id}")]);
    // Not a UUID: no record can have it.
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::RouteNotFound)?;
    let record = query::by_transaction(&state.db, id)
        .await?
        .ok_or(ApiError::RouteNotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(record.view()))
}

async fn admin_export(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin_facts(&req, "audit.export", query_reason(&req));
    let mut p = params(&req)?;
    if p.limit.is_some() || p.after.is_some() {
        return Err(bad(
            "the export takes no `limit` or `after`: it streams the whole range",
        ));
    }
    let format = match p.format.as_deref() {
        None | Some("ndjson") => ExportFormat::Ndjson,
        Some("csv") => ExportFormat::Csv,
        Some(_) => return Err(bad("`format` must be `ndjson` or `csv`")),
    };
    let f = filter(&mut p)?;
    let stream = query::export(state.db.clone(), f, format).map_err(|e| {
        tracing::error!(error = %e, "audit export cut short");
        actix_web::error::ErrorInternalServerError("export failed")
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, format.media_type()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"sluis-audit.{}\"",
                format.extension()
            ),
        ))
        .streaming(stream))
}

/// `GET /audit` on the public listener: the caller's own records, by access token.
pub async fn own_records(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut facts = AuditFacts {
        action: Some("audit.read"),
        reasons: query_reason(&req),
        ..Default::default()
    };
    let result = own_records_for(&req, &state, &mut facts).await;
    req.extensions_mut().insert(facts);
    result
}

async fn own_records_for(
    req: &HttpRequest,
    state: &AppState,
    facts: &mut AuditFacts,
) -> Result<HttpResponse, ApiError> {
    let consumer = super::public::authenticate(req, state, facts).await?;
    let mut p = params(req)?;
    no_format(&p)?;
    if p.party_id.is_some() {
        return Err(bad("`party_id` is implied by the access token"));
    }
    let mut f = filter(&mut p)?;
    f.party_id = Some(consumer.party_id.to_string());
    let (after, limit) = paging(&p)?;
    page_response(state, &f, after, limit).await
}
