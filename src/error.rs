//! One error type for everything a client can be told, rendered once as RFC 9457
//! `application/problem+json` with a stable machine-readable `code`. Internals (SQL, paths,
//! upstream addresses) go to the log with the transaction id, never into the body.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::audit::AuditError;
use crate::auth::{AssertionError, TokenError};
use crate::source::SourceError;
use crate::store::StoreError;

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
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("access token: {0}")]
    AccessToken(#[from] TokenError),
    #[error("access token names an unregistered consumer")]
    ConsumerUnknown,
    #[error("consumer is suspended")]
    ConsumerSuspended,
    /// A refusal at the token endpoint, with its OAuth 2.0 error (RFC 6749 §5.2).
    #[error("token request refused: {detail}")]
    TokenRequest {
        status: StatusCode,
        code: &'static str,
        oauth: &'static str,
        detail: String,
    },
    #[error("admin token missing or wrong")]
    AdminUnauthorized,
    #[error("the admin API has no token configured")]
    AdminDisabled,
    #[error("consumer not found")]
    ConsumerNotFound,
    #[error("consumer already registered")]
    ConsumerExists,
    #[error("invalid consumer: {0}")]
    InvalidConsumer(String),
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    /// The usage policy does not permit this request; the reasons say which rules failed.
    #[error("policy denies: {reasons:?}")]
    PolicyDenied { reasons: Vec<String> },
}

impl ApiError {
    /// A refused client assertion, as the token endpoint answers it.
    pub fn assertion(e: &AssertionError) -> Self {
        let status = if e.is_server_fault() {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if e.oauth_error() == "invalid_request" {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNAUTHORIZED
        };
        Self::TokenRequest {
            status,
            code: e.code(),
            oauth: if e.is_server_fault() {
                "server_error"
            } else {
                e.oauth_error()
            },
            detail: e.to_string(),
        }
    }

    pub fn token_request(
        code: &'static str,
        oauth: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        let status = if oauth == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Self::TokenRequest {
            status,
            code,
            oauth,
            detail: detail.into(),
        }
    }
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
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::AccessToken(e) => e.code(),
            Self::ConsumerUnknown => "CONSUMER_UNKNOWN",
            Self::ConsumerSuspended => "CONSUMER_SUSPENDED",
            Self::TokenRequest { code, .. } => code,
            Self::AdminUnauthorized => "ADMIN_TOKEN_INVALID",
            Self::AdminDisabled => "ADMIN_DISABLED",
            Self::ConsumerNotFound => "CONSUMER_NOT_FOUND",
            Self::ConsumerExists => "CONSUMER_EXISTS",
            Self::InvalidConsumer(_) => "INVALID_CONSUMER",
            Self::Storage(_) => "STORAGE_UNAVAILABLE",
            Self::PolicyDenied { .. } => "POLICY_DENIED",
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
            Self::PayloadTooLarge => "Request body too large",
            Self::AccessToken(_) | Self::ConsumerUnknown => "Invalid access token",
            Self::ConsumerSuspended => "Consumer suspended",
            Self::TokenRequest { .. } => "Token request refused",
            Self::AdminUnauthorized | Self::AdminDisabled => "Admin authentication required",
            Self::ConsumerNotFound => "Unknown consumer",
            Self::ConsumerExists => "Consumer already registered",
            Self::InvalidConsumer(_) => "Invalid consumer",
            Self::Storage(_) => "Storage unavailable",
            Self::PolicyDenied { .. } => "Denied by the usage policy",
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
            Self::BadRequest(why) | Self::InvalidConsumer(why) => why.clone(),
            Self::PayloadTooLarge => "The request body exceeds the allowed size.".into(),
            Self::AccessToken(e) => format!("{e}."),
            Self::ConsumerUnknown => "The access token's consumer is not registered here.".into(),
            Self::ConsumerSuspended => "The consumer's access is suspended.".into(),
            Self::TokenRequest { detail, .. } => detail.clone(),
            Self::AdminUnauthorized => {
                "Send `Authorization: Bearer <admin token>` with the configured token.".into()
            }
            Self::AdminDisabled => "No admin token is configured, so the admin API is off.".into(),
            Self::ConsumerNotFound => "No consumer with this party id is registered.".into(),
            Self::ConsumerExists => "A consumer with this party id is already registered.".into(),
            Self::Storage(_) => "The database is unavailable; retry shortly.".into(),
            Self::PolicyDenied { .. } => {
                "The product's usage policy does not permit this request; see `reasons`.".into()
            }
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
            error: match self {
                Self::TokenRequest { oauth, .. } => Some(oauth),
                _ => None,
            },
            error_description: match self {
                Self::TokenRequest { detail, .. } => Some(detail.clone()),
                _ => None,
            },
            reasons: match self {
                Self::PolicyDenied { reasons } => Some(reasons.clone()),
                _ => None,
            },
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
    /// OAuth 2.0 members, on token-endpoint errors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Why the policy denied, on 403 answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
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
            Self::BadRequest(_) | Self::InvalidConsumer(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::AccessToken(TokenError::Signing) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::AccessToken(_) | Self::ConsumerUnknown => StatusCode::UNAUTHORIZED,
            Self::ConsumerSuspended => StatusCode::FORBIDDEN,
            Self::TokenRequest { status, .. } => *status,
            Self::AdminUnauthorized | Self::AdminDisabled => StatusCode::UNAUTHORIZED,
            Self::ConsumerNotFound => StatusCode::NOT_FOUND,
            Self::ConsumerExists => StatusCode::CONFLICT,
            Self::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PolicyDenied { .. } => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            Self::TokenMissing | Self::AdminUnauthorized | Self::AdminDisabled => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::AccessToken(_) | Self::ConsumerUnknown => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ));
            }
            Self::TokenRequest { .. } => {
                res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
            }
            _ => {}
        }
        if matches!(self, Self::AuditUnavailable(AuditError::QueueFull)) {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        res.body(serde_json::to_vec(&self.problem()).unwrap_or_default())
    }
}
