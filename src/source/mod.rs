//! Where product data lives, and how it is streamed on request: the bytes are read from the
//! source for every request and passed on chunk by chunk, never held whole in memory (except small
//! files, kept and checked against the file on every request). Knows nothing of HTTP routing,
//! policies or the audit log.

mod file;
mod http;
mod postgres;
pub mod transform;

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

use crate::config::SourceSettings;
pub use file::FileSource;
pub use http::HttpSource;
pub use postgres::{Geometry, PostgresOptions, PostgresSource, RowFormat};

/// A stream of body chunks; an error mid-stream aborts the response.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// An opened source: its media type, its length when known, and the body, not yet read.
pub struct SourceBody {
    pub media_type: String,
    pub length: Option<u64>,
    pub stream: ByteStream,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid source configuration: {0}")]
    Config(String),
    #[error("source file {path} could not be opened: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("upstream {url} did not answer in time")]
    UpstreamTimeout { url: String },
    #[error("upstream {url} is unreachable: {reason}")]
    UpstreamUnavailable { url: String, reason: String },
    #[error("upstream {url} answered {status}")]
    UpstreamStatus { url: String, status: u16 },
}

/// What a source may need to know about the request it serves.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenContext<'a> {
    /// W3C trace context of the request's span, passed on to upstream HTTP sources.
    pub traceparent: Option<&'a str>,
    /// Row filters a database source applies in its query (bound as parameters).
    pub row_filters: &'a [transform::RowFilter],
}

#[derive(Debug)]
pub enum DataSource {
    File(FileSource),
    Http(HttpSource),
    // Boxed: the connection options are large next to the other variants.
    Postgres(Box<PostgresSource>),
}

impl DataSource {
    pub fn from_settings(
        settings: &SourceSettings,
        http: &reqwest::Client,
    ) -> Result<Self, SourceError> {
        Ok(match settings {
            SourceSettings::File { path, media_type } => {
                Self::File(FileSource::new(path.clone(), media_type.as_deref())?)
            }
            SourceSettings::Http { url, media_type } => {
                Self::Http(HttpSource::new(url, media_type.as_deref(), http.clone())?)
            }
            SourceSettings::Postgres { .. } => {
                Self::Postgres(Box::new(PostgresSource::from_settings(settings)?))
            }
        })
    }

    /// Opens the source without reading its body: the caller audits first, then streams.
    pub async fn open(&self, ctx: &OpenContext<'_>) -> Result<SourceBody, SourceError> {
        // The HTTP and database openings are large futures: boxed, so that every request's
        // future (which holds this one) does not carry their size for a file.
        match self {
            Self::File(f) => f.open().await,
            Self::Http(h) => Box::pin(h.open(ctx.traceparent)).await,
            Self::Postgres(p) => Box::pin(p.open(ctx.row_filters)).await,
        }
    }
}

/// Returns the normalised media type if `s` is a syntactically valid `type/subtype[; params]`.
pub fn parse_media_type(s: &str) -> Option<String> {
    let s = s.trim();
    let (essence, _) = s.split_once(';').unwrap_or((s, ""));
    let (ty, sub) = essence.trim().split_once('/')?;
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(ty) || !token(sub) || s.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    Some(s.to_ascii_lowercase())
}

/// Media type from a file name's extension, for the formats the connector knows.
pub fn media_type_for_extension(path: &std::path::Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("geojson") => "application/geo+json",
        Some("json") => "application/json",
        Some("csv") => "text/csv; charset=utf-8",
        Some("ndjson") => "application/x-ndjson",
        Some("xml") | Some("gml") => "application/xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_validated() {
        assert_eq!(
            parse_media_type("Application/GEO+json").as_deref(),
            Some("application/geo+json")
        );
        assert!(parse_media_type("text/csv; charset=utf-8").is_some());
        assert!(parse_media_type("geojson").is_none());
        assert!(parse_media_type("text/\r\nX-Evil: 1").is_none());
    }

    #[test]
    fn extensions_map_to_media_types() {
        let t = |p: &str| media_type_for_extension(std::path::Path::new(p));
        assert_eq!(t("a/stadsmuur.geojson"), "application/geo+json");
        assert_eq!(t("x.CSV"), "text/csv; charset=utf-8");
        assert_eq!(t("x.json"), "application/json");
        assert_eq!(t("x"), "application/octet-stream");
    }
}
