//! `GET /catalog`: the DCAT-AP-NL 3.0 catalog, JSON-LD by default (context inlined) and Turtle on
//! `Accept: text/turtle`, paged with `?page=N&per_page=M` (Hydra view in the body, `Link` headers
//! beside it). Passes the audit middleware like every public request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::app::AppState;
use crate::catalog::dcat::{CatalogPage, Connector, Page, catalog_graph, page_url};
use crate::catalog::rdf::Node;
use crate::catalog::{Access, MAX_PAGE_SIZE, Product, odrl};
use crate::error::ApiError;

pub const JSON_LD: &str = "application/ld+json";
pub const TURTLE: &str = "text/turtle; charset=utf-8";

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<usize>,
    per_page: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    JsonLd,
    Turtle,
}

pub async fn get_catalog(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let settings = &state.settings;
    let query = web::Query::<PageQuery>::from_query(req.query_string())
        .map_err(|_| ApiError::BadRequest("`page` and `per_page` are positive numbers.".into()))?;
    let number = query.page.unwrap_or(1);
    let size = query.per_page.unwrap_or(settings.catalog.page_size);
    if number == 0 || size == 0 || size > MAX_PAGE_SIZE {
        return Err(ApiError::BadRequest(format!(
            "`page` starts at 1 and `per_page` is between 1 and {MAX_PAGE_SIZE}."
        )));
    }
    let products = state.catalog.sorted();
    let page = Page {
        number,
        size,
        total_items: products.len(),
    };
    if number > page.last() {
        return Err(ApiError::BadRequest(format!(
            "The catalog has {} page(s) of {size}.",
            page.last()
        )));
    }
    let start = (number - 1).saturating_mul(size).min(products.len());
    let end = start.saturating_add(size).min(products.len());
    let slice = &products[start..end];

    let base = base_url(&req, settings.catalog.base_url.as_deref());
    let policies_dir = settings
        .admin
        .policies_dir
        .clone()
        .unwrap_or_else(|| "policies".into());
    let offers = load_offers(slice, &policies_dir, &settings.connector.party_id).await;
    let graph = catalog_graph(&CatalogPage {
        settings: &settings.catalog,
        connector: Connector {
            name: &settings.connector.name,
            party_id: &settings.connector.party_id,
        },
        base: &base,
        page,
        products: slice,
        offers: &offers,
    });

    let format = negotiate(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let (content_type, body) = match format {
        Format::JsonLd => (
            JSON_LD,
            serde_json::to_vec(&graph.to_json_ld()).unwrap_or_default(),
        ),
        Format::Turtle => (TURTLE, graph.to_turtle().into_bytes()),
    };
    let mut links = vec![
        format!("<{}>; rel=\"first\"", page_url(&base, 1, size)),
        format!("<{}>; rel=\"last\"", page_url(&base, page.last(), size)),
    ];
    if number > 1 {
        links.push(format!(
            "<{}>; rel=\"prev\"",
            page_url(&base, number - 1, size)
        ));
    }
    if number < page.last() {
        links.push(format!(
            "<{}>; rel=\"next\"",
            page_url(&base, number + 1, size)
        ));
    }
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::VARY, "Accept"));
    if let Ok(link) = HeaderValue::from_str(&links.join(", ")) {
        res.insert_header((header::LINK, link));
    }
    Ok(res.body(body))
}

/// The configured public base URL, else the scheme and host this request was sent to.
fn base_url(req: &HttpRequest, configured: Option<&str>) -> String {
    match configured {
        Some(b) => b.trim_end_matches('/').to_string(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

/// Turtle when the client prefers it; JSON-LD otherwise (also for `*/*` and no `Accept`).
fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::JsonLd;
    };
    let mut best: Option<(f32, Format)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "text/turtle" | "text/*" => Format::Turtle,
            "application/ld+json" | "application/json" | "application/*" | "*/*" => Format::JsonLd,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    best.map_or(Format::JsonLd, |(_, f)| f)
}

/// The offers of the restricted products on this page, read from the policies folder once per
/// file. A policy that cannot be read leaves its products without an offer (and a log line),
/// rather than taking the whole catalog down.
async fn load_offers(
    products: &[Arc<Product>],
    dir: &Path,
    party_id: &str,
) -> HashMap<String, Node> {
    let mut offers = HashMap::new();
    for product in products {
        let Some(file) = product.policy.as_ref() else {
            continue;
        };
        if product.access != Access::Restricted || offers.contains_key(file) {
            continue;
        }
        let path = dir.join(file);
        let parsed = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|doc| odrl::offer_node(&doc, party_id)),
            Err(e) => Err(e.to_string()),
        };
        match parsed {
            Ok(node) => {
                offers.insert(file.clone(), node);
            }
            Err(e) => {
                tracing::warn!(policy = %path.display(), error = %e, "policy not in the catalog")
            }
        }
    }
    offers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_turtle_only_when_preferred() {
        assert_eq!(negotiate(None), Format::JsonLd);
        assert_eq!(negotiate(Some("text/turtle")), Format::Turtle);
        assert_eq!(negotiate(Some("*/*")), Format::JsonLd);
        assert_eq!(
            negotiate(Some("application/ld+json;q=0.5, text/turtle")),
            Format::Turtle
        );
        assert_eq!(
            negotiate(Some("text/turtle;q=0.2, application/ld+json")),
            Format::JsonLd
        );
        assert_eq!(negotiate(Some("text/turtle;q=0")), Format::JsonLd);
        assert_eq!(negotiate(Some("image/png")), Format::JsonLd);
    }
}
