//! One error type for everything a client can be told, rendered once as RFC 9457
//! `application/problem+json` with a stable machine-readable `code`. Internals (SQL, paths,
//! upstream addresses) go to the log with the transaction id, never into the body.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::audit::AuditError;
use crate::source::SourceError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("product not found")]
    ProductNotFound,
    #[error("no route")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("access token required")]
    TokenMissing,
    #[error("audit log unavailable: {0}")]
    AuditUnavailable(#[from] AuditError),
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl ApiError {
    /// The stable code clients and dashboards key on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ProductNotFound => "PRODUCT_NOT_FOUND",
            Self::RouteNotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::TokenMissing => "ACCESS_TOKEN_MISSING",
            Self::AuditUnavailable(AuditError::QueueFull) => "AUDIT_QUEUE_FULL",
            Self::AuditUnavailable(_) => "TRANSACTION_LOG_WRITE_ERROR",
            Self::Source(SourceError::UpstreamTimeout { .. }) => "UPSTREAM_TIMEOUT",
            Self::Source(SourceError::UpstreamStatus { .. }) => "UPSTREAM_ERROR",
            Self::Source(SourceError::UpstreamUnavailable { .. }) => "UPSTREAM_UNAVAILABLE",
            Self::Source(SourceError::File { .. } | SourceError::Config(_)) => "SOURCE_UNAVAILABLE",
            Self::BadRequest(_) => "BAD_REQUEST",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::ProductNotFound => "Unknown product",
            Self::RouteNotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::TokenMissing => "Access token required",
            Self::AuditUnavailable(_) => "Audit log unavailable",
            Self::Source(SourceError::UpstreamTimeout { .. }) => "Upstream source timed out",
            Self::Source(_) => "Data source unavailable",
            Self::BadRequest(_) => "Bad request",
        }
    }

    /// What the client may read: no internals.
    fn detail(&self) -> String {
        match self {
            Self::ProductNotFound => "No product with this id is offered here.".into(),
            Self::RouteNotFound => "No resource at this path.".into(),
            Self::MethodNotAllowed => "This resource does not accept this method.".into(),
            Self::TokenMissing => {
                "This product is restricted: send `Authorization: Bearer <access token>`.".into()
            }
            Self::AuditUnavailable(AuditError::QueueFull) => {
                "Too many requests are waiting for the audit log; retry shortly.".into()
            }
            Self::AuditUnavailable(_) => {
                "The request could not be recorded in the audit log, so it is not served.".into()
            }
            Self::Source(SourceError::UpstreamStatus { status, .. }) => {
                format!("The upstream source answered with status {status}.")
            }
            Self::Source(SourceError::UpstreamTimeout { .. }) => {
                "The upstream source did not answer in time.".into()
            }
            Self::Source(_) => "The product's source could not be read.".into(),
            Self::BadRequest(why) => why.clone(),
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        Problem {
            r#type: format!("urn:sluis:problem:{}", self.code().to_ascii_lowercase()),
            title: self.title(),
            status: status.as_u16(),
            detail: self.detail(),
            code: self.code(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Problem {
    pub r#type: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::ProductNotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TokenMissing => StatusCode::UNAUTHORIZED,
            Self::AuditUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Source(SourceError::File { .. } | SourceError::Config(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Source(_) => StatusCode::BAD_GATEWAY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if matches!(self, Self::TokenMissing) {
            res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if matches!(self, Self::AuditUnavailable(AuditError::QueueFull)) {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        res.body(serde_json::to_vec(&self.problem()).unwrap_or_default())
    }
}
