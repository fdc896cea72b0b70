//! A product backed by a configured SQL query on PostgreSQL, streamed as GeoJSON, JSON or CSV.
//! The query is the operator's; row filters from obligations wrap it as a subquery, with their
//! column names checked and quoted and their values bound as parameters, never spliced into SQL.
//! Each request runs in a read-only transaction with a statement timeout, rows are fetched as a
//! stream (never collected), and PostgreSQL itself turns each row into JSON (`to_json`), so every
//! column type comes out the way PostgreSQL documents it: numbers (numeric with all its digits) as
//! JSON numbers, timestamps as ISO 8601 / RFC 3339 text in UTC, json and jsonb as they are.
//! Knows nothing of HTTP, policies or the audit log; connect with a role that may only read.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Column, Executor, Row, Statement};
use tokio::sync::{OnceCell, mpsc, oneshot};

use super::transform::{Members, RowFilter};
use super::{SourceBody, SourceError};
use crate::config::SourceSettings;

/// Chunks of about this size are handed to the response; a few of them are in flight at most.
const CHUNK: usize = 32 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;
const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MAX_CONNECTIONS: u32 = 4;
/// PostgreSQL truncates longer identifiers, which would make a filter name another column.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// How the rows are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// A FeatureCollection: one Feature per row, the other columns as its properties.
    GeoJson,
    /// An array of objects, one per row, members named and ordered as the query's columns.
    Json,
    /// RFC 4180 CSV with a header row of the query's column names, CRLF line ends.
    Csv,
}

impl RowFormat {
    pub fn parse(s: &str) -> Result<Self, SourceError> {
        match s.to_ascii_lowercase().as_str() {
            "geojson" => Ok(Self::GeoJson),
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            _ => Err(SourceError::Config(format!(
                "format `{s}`: want geojson, json or csv"
            ))),
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::GeoJson => "application/geo+json",
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Where a row's geometry comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Geometry {
    None,
    /// A PostGIS geometry column: GeoJSON by `ST_AsGeoJSON`, WKT (`ST_AsText`) in CSV. It is the
    /// Feature's geometry, not a property, and in JSON its value is the GeoJSON geometry.
    PostGis(String),
    /// Longitude and latitude columns (WGS 84) make a Point in GeoJSON; they stay properties.
    LonLat {
        lon: String,
        lat: String,
    },
}

/// What configures a [`PostgresSource`].
#[derive(Clone)]
pub struct PostgresOptions {
    pub url: String,
    pub query: String,
    pub format: RowFormat,
    pub geometry: Geometry,
    pub statement_timeout: Duration,
    pub max_connections: u32,
}

impl fmt::Debug for PostgresOptions {
    // The URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("query", &self.query)
            .field("format", &self.format)
            .field("geometry", &self.geometry)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

pub struct PostgresSource {
    connect: PgConnectOptions,
    /// Where the data comes from, without credentials, for errors and logs.
    origin: String,
    query: String,
    format: RowFormat,
    geometry: Geometry,
    statement_timeout: Duration,
    max_connections: u32,
    /// Made on first use: building a pool needs a running Tokio runtime, settings loading has none.
    pool: OnceCell<PgPool>,
}

impl fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSource")
            .field("origin", &self.origin)
            .field("query", &self.query)
            .field("format", &self.format)
            .field("geometry", &self.geometry)
            .finish_non_exhaustive()
    }
}

impl PostgresSource {
    pub fn new(options: PostgresOptions) -> Result<Self, SourceError> {
        let connect: PgConnectOptions = options
            .url
            .parse()
            .map_err(|_| SourceError::Config("postgres source: invalid connection URL".into()))?;
        let origin = format!(
            "postgres://{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("")
        );
        // A trailing `;` is harmless on its own but a syntax error inside the wrapping subquery.
        let query = options
            .query
            .trim()
            .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
            .to_string();
        if query.is_empty() {
            return Err(SourceError::Config("postgres source: empty query".into()));
        }
        match &options.geometry {
            Geometry::None => {}
            Geometry::PostGis(c) => {
                quote_identifier(c)?;
            }
            Geometry::LonLat { lon, lat } => {
                quote_identifier(lon)?;
                quote_identifier(lat)?;
            }
        }
        if options.statement_timeout.is_zero() {
            // 0 means "no limit" to PostgreSQL: a runaway query would hold its connection forever.
            return Err(SourceError::Config(
                "postgres source: statement timeout must be positive".into(),
            ));
        }
        Ok(Self {
            connect,
            origin,
            query,
            format: options.format,
            geometry: options.geometry,
            statement_timeout: options.statement_timeout,
            max_connections: options.max_connections.max(1),
            pool: OnceCell::new(),
        })
    }

    /// From `kind = "postgres"` settings; the URL is read from `url_file` when that is given.
    pub fn from_settings(settings: &SourceSettings) -> Result<Self, SourceError> {
        let SourceSettings::Postgres {
            url,
            url_file,
            query,
            format,
            geometry_column,
            lon_column,
            lat_column,
            statement_timeout_ms,
            max_connections,
        } = settings
        else {
            return Err(SourceError::Config("not a postgres source".into()));
        };
        let url = match (url, url_file) {
            (Some(u), _) => u.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| SourceError::File {
                    path: path.display().to_string(),
                    source,
                })?
                .trim()
                .to_string(),
            (None, None) => {
                return Err(SourceError::Config(
                    "postgres source: url or url_file is required".into(),
                ));
            }
        };
        let geometry = match (geometry_column, lon_column, lat_column) {
            (Some(c), None, None) => Geometry::PostGis(c.clone()),
            (None, Some(lon), Some(lat)) => Geometry::LonLat {
                lon: lon.clone(),
                lat: lat.clone(),
            },
            (None, None, None) => Geometry::None,
            _ => {
                return Err(SourceError::Config(
                    "postgres source: give geometry_column, or lon_column and lat_column".into(),
                ));
            }
        };
        Self::new(PostgresOptions {
            url,
            query: query.clone(),
            format: RowFormat::parse(format)?,
            geometry,
            statement_timeout: Duration::from_millis(
                statement_timeout_ms.unwrap_or(DEFAULT_STATEMENT_TIMEOUT_MS),
            ),
            max_connections: max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
        })
    }

    pub fn format(&self) -> RowFormat {
        self.format
    }

    /// Starts the query with `filters` applied in SQL and waits for its first row (or its end), so
    /// that a failing query fails the request instead of cutting a response short. The rest
    /// streams as the response is read; dropping the body ends the query.
    pub async fn open(&self, filters: &[RowFilter]) -> Result<SourceBody, SourceError> {
        let sql = self.sql(filters)?;
        let columns_sql =
            (self.format == RowFormat::Csv).then(|| format!("SELECT * FROM ({}) AS q", self.query));
        let origin = self.origin.clone();
        // Queries run on the runtime that PostgreSQL connections belong to (`store::home`): a
        // connection opened by a query on one HTTP worker's runtime would fail another worker's
        // query once the first worker has stopped.
        let home = crate::store::home().map_err(|e| SourceError::UpstreamUnavailable {
            url: origin.clone(),
            reason: e.to_string(),
        })?;
        let pool = self
            .pool
            .get_or_init(|| async {
                let _home = home.enter();
                PgPoolOptions::new()
                    .max_connections(self.max_connections)
                    .acquire_timeout(self.statement_timeout)
                    .connect_lazy_with(self.connect.clone())
            })
            .await
            .clone();
        let params: Vec<Vec<String>> = filters.iter().map(|f| f.allowed.clone()).collect();
        let job = Job {
            pool,
            sql,
            columns_sql,
            params,
            timeout_ms: self.statement_timeout.as_millis(),
            encoder: Encoder::new(self.format, self.geometry.clone()),
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let (chunks_tx, chunks_rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        home.spawn(job.run(ready_tx, chunks_tx));
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(db_error(&origin, &e)),
            Err(_) => {
                return Err(SourceError::UpstreamUnavailable {
                    url: origin,
                    reason: "query task ended early".into(),
                });
            }
        }
        let stream = futures_util::stream::unfold(chunks_rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(SourceBody {
            media_type: self.format.media_type().to_string(),
            length: None,
            stream: Box::pin(stream),
        })
    }

    /// The operator's query as a subquery `q`: each row as JSON text and its geometry, filtered.
    fn sql(&self, filters: &[RowFilter]) -> Result<String, SourceError> {
        let geometry = match (&self.geometry, self.format) {
            (Geometry::PostGis(c), RowFormat::Csv) => {
                format!("ST_AsText(q.{})", quote_identifier(c)?)
            }
            (Geometry::PostGis(c), _) => format!("ST_AsGeoJSON(q.{})", quote_identifier(c)?),
            (Geometry::LonLat { lon, lat }, RowFormat::GeoJson) => {
                let (lon, lat) = (quote_identifier(lon)?, quote_identifier(lat)?);
                format!(
                    "CASE WHEN q.{lon} IS NULL OR q.{lat} IS NULL THEN NULL \
                     ELSE json_build_array(q.{lon}, q.{lat})::text END"
                )
            }
            _ => "NULL::text".to_string(),
        };
        let mut sql = format!(
            "SELECT to_json(q)::text, {geometry} FROM ({}) AS q",
            self.query
        );
        for (i, f) in filters.iter().enumerate() {
            // Compared as text, as the stream transform compares: `179` matches "179".
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            sql.push_str(&format!(
                "q.{}::text = ANY(${})",
                quote_identifier(&f.property)?,
                i + 1
            ));
        }
        Ok(sql)
    }
}

/// A column name as a quoted identifier, if it is a plain one: letters, digits and `_`, not
/// starting with a digit. Quoting keeps its case (`"WIJKCODE"` is not `wijkcode`).
pub fn quote_identifier(name: &str) -> Result<String, SourceError> {
    let plain = !name.is_empty()
        && name.len() <= MAX_IDENTIFIER_BYTES
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if plain {
        Ok(format!("\"{name}\""))
    } else {
        Err(SourceError::Config(format!(
            "`{name}` is not a plain column name"
        )))
    }
}

fn db_error(origin: &str, e: &sqlx::Error) -> SourceError {
    let timed_out = matches!(e, sqlx::Error::PoolTimedOut)
        || e.as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "57014"); // query_canceled: the statement timeout
    if timed_out {
        SourceError::UpstreamTimeout {
            url: origin.to_string(),
        }
    } else {
        SourceError::UpstreamUnavailable {
            url: origin.to_string(),
            reason: e.to_string(),
        }
    }
}

/// One request's query, run on its own task: the row stream borrows the transaction, and the
/// response body must not borrow anything.
struct Job {
    pool: PgPool,
    sql: String,
    columns_sql: Option<String>,
    params: Vec<Vec<String>>,
    timeout_ms: u128,
    encoder: Encoder,
}

type Chunk = Result<Bytes, std::io::Error>;

impl Job {
    async fn run(
        self,
        ready: oneshot::Sender<Result<(), sqlx::Error>>,
        chunks: mpsc::Sender<Chunk>,
    ) {
        let mut ready = Some(ready);
        if let Err(e) = self.stream(&mut ready, &chunks).await {
            match ready.take() {
                Some(r) => {
                    let _ = r.send(Err(e));
                }
                // Headers are out: all that is left is to cut the body.
                None => {
                    let _ = chunks.send(Err(std::io::Error::other(e.to_string()))).await;
                }
            }
        }
    }

    async fn stream(
        self,
        ready: &mut Option<oneshot::Sender<Result<(), sqlx::Error>>>,
        chunks: &mpsc::Sender<Chunk>,
    ) -> Result<(), sqlx::Error> {
        let Job {
            pool,
            sql,
            columns_sql,
            params,
            timeout_ms,
            mut encoder,
        } = self;
        let mut tx = pool.begin().await?;
        (&mut *tx).execute("SET TRANSACTION READ ONLY").await?;
        (&mut *tx)
            .execute(format!("SET LOCAL statement_timeout = {timeout_ms}").as_str())
            .await?;
        // Timestamps with time zone come out in UTC whatever the role's default.
        (&mut *tx).execute("SET LOCAL TimeZone = 'UTC'").await?;
        if let Some(columns_sql) = &columns_sql {
            let statement = (&mut *tx).prepare(columns_sql.as_str()).await?;
            let names = statement.columns().iter().map(|c| c.name().to_string());
            encoder.columns = names.collect();
        }
        let mut query = sqlx::query(&sql);
        for p in &params {
            query = query.bind(p);
        }
        let mut rows = query.fetch(&mut *tx);
        let mut buf = BytesMut::with_capacity(CHUNK * 2);
        encoder.start(&mut buf);
        while let Some(row) = rows.try_next().await? {
            if let Some(r) = ready.take() {
                let _ = r.send(Ok(()));
            }
            let json: String = row.try_get(0)?;
            let geometry: Option<String> = row.try_get(1)?;
            if let Err(e) = encoder.row(&json, geometry.as_deref(), &mut buf) {
                return Err(sqlx::Error::Decode(e.into()));
            }
            if buf.len() >= CHUNK && chunks.send(Ok(buf.split().freeze())).await.is_err() {
                // The client went away: dropping the stream and the transaction ends the query.
                return Ok(());
            }
        }
        drop(rows);
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        encoder.end(&mut buf);
        let _ = chunks.send(Ok(buf.freeze())).await;
        tx.rollback().await
    }
}

/// Writes rows (JSON objects from `to_json`) in the product's format.
struct Encoder {
    format: RowFormat,
    geometry: Geometry,
    columns: Vec<String>,
    rows: u64,
}

impl Encoder {
    fn new(format: RowFormat, geometry: Geometry) -> Self {
        Self {
            format,
            geometry,
            columns: Vec::new(),
            rows: 0,
        }
    }

    fn postgis_column(&self) -> Option<&str> {
        match &self.geometry {
            Geometry::PostGis(c) => Some(c),
            _ => None,
        }
    }

    fn start(&self, out: &mut BytesMut) {
        match self.format {
            RowFormat::GeoJson => {
                out.extend_from_slice(b"{\"type\":\"FeatureCollection\",\"features\":[")
            }
            RowFormat::Json => out.extend_from_slice(b"["),
            RowFormat::Csv => {
                for (i, c) in self.columns.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b",");
                    }
                    csv_field(c, out);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn end(&self, out: &mut BytesMut) {
        match self.format {
            RowFormat::GeoJson => out.extend_from_slice(b"]}"),
            RowFormat::Json => out.extend_from_slice(b"]"),
            RowFormat::Csv => {}
        }
    }

    fn row(
        &mut self,
        json: &str,
        geometry: Option<&str>,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        let members = Members::parse(json)?;
        let separator = self.rows > 0;
        self.rows += 1;
        let postgis = self.postgis_column();
        match self.format {
            RowFormat::GeoJson => {
                if separator {
                    out.extend_from_slice(b",");
                }
                out.extend_from_slice(b"{\"type\":\"Feature\",\"geometry\":");
                match (geometry, &self.geometry) {
                    (Some(g), Geometry::LonLat { .. }) => {
                        out.extend_from_slice(b"{\"type\":\"Point\",\"coordinates\":");
                        out.extend_from_slice(g.as_bytes());
                        out.extend_from_slice(b"}");
                    }
                    (Some(g), _) => out.extend_from_slice(g.as_bytes()),
                    (None, _) => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b",\"properties\":{");
                let mut first = true;
                for (k, v) in &members.0 {
                    if Some(k.as_ref()) == postgis {
                        continue;
                    }
                    if !first {
                        out.extend_from_slice(b",");
                    }
                    first = false;
                    json_member(k, v.get(), out)?;
                }
                out.extend_from_slice(b"}}");
            }
            RowFormat::Json => {
                if separator {
                    out.extend_from_slice(b",");
                }
                out.extend_from_slice(b"{");
                for (i, (k, v)) in members.0.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b",");
                    }
                    let value = match geometry {
                        Some(g) if Some(k.as_ref()) == postgis => g,
                        _ => v.get(),
                    };
                    json_member(k, value, out)?;
                }
                out.extend_from_slice(b"}");
            }
            RowFormat::Csv => {
                if members.0.len() != self.columns.len() {
                    return Err("row and header differ in columns".into());
                }
                for (i, (k, v)) in members.0.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b",");
                    }
                    match geometry {
                        Some(wkt) if Some(k.as_ref()) == postgis => csv_field(wkt, out),
                        _ => csv_value(v.get(), out)?,
                    }
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        Ok(())
    }
}

fn json_member(name: &str, value: &str, out: &mut BytesMut) -> Result<(), String> {
    let name = serde_json::to_string(name).map_err(|e| e.to_string())?;
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b":");
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

/// A JSON value as CSV text: a string's content, null as an empty field, anything else its JSON.
fn csv_value(json: &str, out: &mut BytesMut) -> Result<(), String> {
    match json.as_bytes().first() {
        Some(b'"') => {
            let s: String = serde_json::from_str(json).map_err(|e| e.to_string())?;
            csv_field(&s, out);
        }
        Some(b'n') => {}
        _ => csv_field(json, out),
    }
    Ok(())
}

fn csv_field(text: &str, out: &mut BytesMut) {
    if text.contains([',', '"', '\r', '\n']) {
        out.extend_from_slice(b"\"");
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.extend_from_slice(b"\"");
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(format: RowFormat, geometry: Geometry) -> PostgresSource {
        let options = PostgresOptions {
            url: "postgres://reader:secret@db.example:5432/gis".into(),
            query: "SELECT * FROM bomen;\n".into(),
            format,
            geometry,
            statement_timeout: Duration::from_secs(5),
            max_connections: 2,
        };
        match PostgresSource::new(options) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn filters_become_bound_parameters_on_quoted_columns() {
        let s = source(RowFormat::GeoJson, Geometry::PostGis("geom".into()));
        let filters = [
            RowFilter {
                property: "WIJKCODE".into(),
                allowed: vec!["x'); DROP TABLE bomen; --".into()],
            },
            RowFilter {
                property: "PLANTJAAR".into(),
                allowed: vec!["1990".into()],
            },
        ];
        let sql = s.sql(&filters).unwrap_or_default();
        assert_eq!(
            sql,
            "SELECT to_json(q)::text, ST_AsGeoJSON(q.\"geom\") FROM (SELECT * FROM bomen) AS q \
             WHERE q.\"WIJKCODE\"::text = ANY($1) AND q.\"PLANTJAAR\"::text = ANY($2)"
        );
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn settings_in_toml_make_a_source() {
        let settings: SourceSettings = match toml::from_str(
            r#"
            kind = "postgres"
            url = "postgres://reader@db.example/gis"
            query = "SELECT * FROM bomen"
            format = "geojson"
            lon_column = "lon"
            lat_column = "lat"
            statement_timeout_ms = 5000
            "#,
        ) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let source = match PostgresSource::from_settings(&settings) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(source.format(), RowFormat::GeoJson);
        assert_eq!(source.statement_timeout, Duration::from_secs(5));
        let bad: Result<SourceSettings, _> = toml::from_str(
            "kind = \"postgres\"\nurl = \"x\"\nquery = \"q\"\nformat = \"csv\"\nsql = 1",
        );
        assert!(bad.is_err(), "unknown keys are refused");
    }

    #[test]
    fn column_names_that_are_not_plain_are_refused() {
        let s = source(RowFormat::Csv, Geometry::None);
        for bad in ["", "a\"b", "wijk code", "1st", "x) OR (1=1", "a;b"] {
            let f = [RowFilter {
                property: bad.into(),
                allowed: vec![],
            }];
            assert!(s.sql(&f).is_err(), "{bad:?} accepted");
        }
        assert!(quote_identifier("buurt_2023").is_ok());
        assert!(quote_identifier("WIJKNAAM").is_ok());
    }
}
