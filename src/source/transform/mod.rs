//! Obligations fulfilled on the data stream: fields dropped or pseudonymised, rows kept only when a
//! property has an allowed value. The body is transformed record by record as it passes, so memory
//! stays bounded by the largest record, never by the size of the product. Knows nothing of HTTP,
//! policies' evaluation or the audit log: it takes a [`TransformPlan`] and a [`ByteStream`].
//!
//! # Formats and shapes
//!
//! | media type | shape | records | fields of a record |
//! |---|---|---|---|
//! | `application/geo+json` (also `application/vnd.geo+json`) | a FeatureCollection object | `features` | the feature's `properties` (object or null) |
//! | `application/json` (also `text/json`, `application/*+json`) | an array of objects | the array's elements | the element itself |
//! | | an object with one records member | `features` | `properties`, else ArcGIS REST `attributes` |
//! | | | `records` | Opendatasoft `fields` |
//! | | | `results`, `data`, `items`, `value` | the element itself |
//! | `text/csv` | RFC 4180, `,` separated, a header row | every row after the header | the columns, named by the header |
//!
//! Anything else is refused: an unknown media type up front ([`TransformError::Unsupported`]), a body
//! of another shape as soon as it shows (the stream ends in an error, see below). A record without
//! its fields member (a feature without `properties` or `attributes`, an Opendatasoft record
//! without `fields`) is refused too, because a field nested elsewhere would slip through untouched.
//!
//! # What else changes in the output
//!
//! - JSON: members of the top-level object other than the records array are copied as they are,
//!   with these exceptions. With a row filter, totals that describe the unfiltered source cannot be
//!   known any more and are dropped: `totalFeatures`, `numberMatched` (WFS), `nhits`,
//!   `total_count` (Opendatasoft), `count`. `numberReturned` is recomputed to the number of
//!   features served when it follows the records array, and dropped when it precedes it (the
//!   number is not known yet). Facet counts (`facet_groups`, `facets`) are always dropped: they
//!   summarise values of fields and rows that may be withheld. A top-level member other than the
//!   records array that holds an array of objects is refused (it may hold records this transform
//!   does not know about), except schema and navigation lists (`fields` of ArcGIS REST, `links` of OGC API, `_links`).
//!   Members before the records array are held back until the array begins, so a body of an
//!   unknown shape is refused before any of it is sent.
//! - JSON records keep their members in order and their values byte for byte; only whitespace
//!   between members of a changed record is dropped. Records are separated by `,` without spaces.
//! - CSV rows keep their fields byte for byte (quotes included) and their line ends; blank lines
//!   are dropped.
//!
//! # Value semantics
//!
//! A row filter compares a field's value as a string: a JSON string by its content, any other JSON
//! value by its JSON text (`179`, `true`), a CSV field by its unquoted text. A missing field or a
//! JSON `null` matches nothing. Several filters must all match. Filters see the original values,
//! before fields are dropped or pseudonymised.
//!
//! A pseudonym is HMAC-SHA256 (RFC 2104) under the plan's key of the same string, truncated to 128
//! bits, as 32 lowercase hex digits: the same value under the same key always gives the same
//! pseudonym (so data sets stay joinable), a different key gives unrelated pseudonyms, and without
//! the key the value cannot be recovered or confirmed. JSON `null`, an empty string and an empty CSV
//! field stay as they are. A field named both to drop and to pseudonymise is dropped.
//!
//! # Errors mid-stream
//!
//! Malformed input, an unsupported shape found in the body, or a record larger than the plan's
//! limit end the stream with an [`std::io::Error`] (kind `InvalidData`, wrapping a
//! [`TransformError`]): the response is cut off, never completed into valid-looking output.

mod csv;
mod json;
mod plan;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::Stream;

use super::ByteStream;
pub(in crate::source) use json::Members;
pub use plan::{DEFAULT_MAX_RECORD_BYTES, RowFilter, TransformPlan, Unsupported};

/// Why a body could not be transformed.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    #[error("malformed {format} at byte {offset}: {reason}")]
    Malformed {
        format: &'static str,
        offset: u64,
        reason: String,
    },
    #[error("a record at byte {offset} is larger than the limit of {limit} bytes")]
    RecordTooLarge { offset: u64, limit: usize },
}

impl From<TransformError> for std::io::Error {
    fn from(e: TransformError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// Wraps `stream` so that `plan` is applied to it as it flows. Fails at once only for a media type
/// that has no transform; everything found in the body is reported in the stream.
pub fn apply(
    media_type: &str,
    stream: ByteStream,
    plan: TransformPlan,
) -> Result<ByteStream, TransformError> {
    let transformer = Transformer::new(media_type, plan)?;
    Ok(Box::pin(TransformStream {
        inner: stream,
        transformer,
        out: BytesMut::new(),
        done: false,
    }))
}

/// The push parser behind [`apply`], for callers that hold the bytes themselves (tests, benches).
/// Feed the body in chunks of any size, then call [`Transformer::finish`] once.
pub struct Transformer {
    format: Format,
    max_buffered: usize,
}

enum Format {
    Json(json::JsonTransformer),
    Csv(csv::CsvTransformer),
}

impl Transformer {
    pub fn new(media_type: &str, plan: TransformPlan) -> Result<Self, TransformError> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let format = match essence.as_str() {
            "application/geo+json" | "application/vnd.geo+json" => {
                Format::Json(json::JsonTransformer::new(plan, json::Shape::GeoJson))
            }
            "application/json" | "text/json" => {
                Format::Json(json::JsonTransformer::new(plan, json::Shape::Json))
            }
            "text/csv" => Format::Csv(csv::CsvTransformer::new(plan)),
            e if e.starts_with("application/") && e.ends_with("+json") => {
                Format::Json(json::JsonTransformer::new(plan, json::Shape::Json))
            }
            _ => {
                return Err(Unsupported(format!(
                    "obligations cannot be applied to `{media_type}` data"
                ))
                .into());
            }
        };
        Ok(Self {
            format,
            max_buffered: 0,
        })
    }

    /// Transforms the next chunk of the body, appending whatever output is complete to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), TransformError> {
        let r = match &mut self.format {
            Format::Json(j) => j.feed(input, out),
            Format::Csv(c) => c.feed(input, out),
        };
        self.max_buffered = self.max_buffered.max(self.buffered());
        r
    }

    /// Ends the body: flushes the last record, or fails if the body stopped short.
    pub fn finish(&mut self, out: &mut BytesMut) -> Result<(), TransformError> {
        match &mut self.format {
            Format::Json(j) => j.finish(out),
            Format::Csv(c) => c.finish(out),
        }
    }

    /// The most bytes of input held between chunks so far (a partial record, a held-back prefix):
    /// the transform's own memory, apart from the output of the current chunk.
    pub fn max_buffered(&self) -> usize {
        self.max_buffered
    }

    fn buffered(&self) -> usize {
        match &self.format {
            Format::Json(j) => j.buffered(),
            Format::Csv(c) => c.buffered(),
        }
    }
}

struct TransformStream {
    inner: ByteStream,
    transformer: Transformer,
    out: BytesMut,
    done: bool,
}

impl Stream for TransformStream {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(e) = this.transformer.feed(&chunk, &mut this.out) {
                        this.done = true;
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    // A chunk that completed no record yields nothing: read on rather than send
                    // an empty chunk.
                    if !this.out.is_empty() {
                        return Poll::Ready(Some(Ok(this.out.split().freeze())));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if let Err(e) = this.transformer.finish(&mut this.out) {
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    if !this.out.is_empty() {
                        return Poll::Ready(Some(Ok(this.out.split().freeze())));
                    }
                }
            }
        }
    }
}
