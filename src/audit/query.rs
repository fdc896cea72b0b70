//! Reading the audit log: filtered, keyset-paged queries (newest first for browsing, oldest
//! first for export) and a streaming export that pages internally, so neither a deep page nor a
//! large export costs more than one page of memory or an OFFSET scan.
//! Reads only; there is deliberately no API that changes or deletes a record.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::Stream;
use uuid::Uuid;

use super::record::Decision;
use super::stored::{CSV_HEADER, SELECT_COLUMNS, StoredRecord};
use crate::store::{Db, StoreError};

/// Largest page a client may ask for.
pub const MAX_PAGE: u32 = 1000;
/// The page size when the client names none.
pub const DEFAULT_PAGE: u32 = 100;
/// Records fetched per round trip by the export.
const EXPORT_PAGE: u32 = 1000;

/// Which records. `since` is inclusive, `until` exclusive (microseconds since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub party_id: Option<String>,
    pub product: Option<String>,
    pub decision: Option<Decision>,
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// Where a page ended: the last record's (time, transaction id). Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub time_us: i64,
    pub transaction_id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.time_us, self.transaction_id))
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s.len() > 128 {
            return None;
        }
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let (time, id) = raw.split_once('.')?;
        Some(Self {
            time_us: time.parse().ok()?,
            transaction_id: Uuid::parse_str(id).ok()?,
        })
    }

    fn of(r: &StoredRecord) -> Option<Self> {
        Some(Self {
            time_us: r.time_us,
            transaction_id: Uuid::parse_str(&r.transaction_id).ok()?,
        })
    }
}

pub struct Page {
    pub records: Vec<StoredRecord>,
    /// Where the next page starts, or `None` when this was the last.
    pub next: Option<Cursor>,
}

enum Arg {
    Text(String),
    Int(i64),
}

macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s),
                Arg::Int(i) => q.bind(i),
            };
        }
        q
    }};
}

/// The SQL and its arguments for one page; `$n` placeholders work on both databases.
fn page_sql(
    filter: &AuditFilter,
    order: Order,
    after: Option<Cursor>,
    limit: u32,
) -> (String, Vec<Arg>) {
    let mut sql = format!("SELECT {SELECT_COLUMNS} FROM audit_records WHERE 1 = 1");
    let mut args = Vec::new();
    let mut push = |sql: &mut String, clause: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    if let Some(p) = &filter.party_id {
        push(&mut sql, " AND party_id = ?", Arg::Text(p.clone()));
    }
    if let Some(p) = &filter.product {
        push(&mut sql, " AND product = ?", Arg::Text(p.clone()));
    }
    if let Some(d) = filter.decision {
        // A literal, not a bound value: only then can the planner use the partial index of
        // denies. `d` is an enum, so nothing from the request reaches the SQL text.
        sql.push_str(match d {
            Decision::Permit => " AND decision = 'permit'",
            Decision::Deny => " AND decision = 'deny'",
        });
    }
    if let Some(t) = filter.since_us {
        push(&mut sql, " AND time_us >= ?", Arg::Int(t));
    }
    if let Some(t) = filter.until_us {
        push(&mut sql, " AND time_us < ?", Arg::Int(t));
    }
    let (cmp, dir) = match order {
        Order::NewestFirst => ("<", "DESC"),
        Order::OldestFirst => (">", "ASC"),
    };
    if let Some(c) = after {
        // A row-value comparison both databases turn into one index range.
        push(
            &mut sql,
            &format!(" AND (time_us, transaction_id) {cmp} (?, "),
            Arg::Int(c.time_us),
        );
        push(&mut sql, "?)", Arg::Text(c.transaction_id.to_string()));
    }
    sql.push_str(&format!(
        " ORDER BY time_us {dir}, transaction_id {dir} LIMIT {}",
        u64::from(limit) + 1
    ));
    (sql, args)
}

/// One page of records matching `filter`, starting after `after`.
pub async fn page(
    db: &Db,
    filter: &AuditFilter,
    order: Order,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, MAX_PAGE.max(EXPORT_PAGE));
    let (sql, args) = page_sql(filter, order, after, limit);
    let mut records: Vec<StoredRecord> = match db {
        Db::Sqlite(p, _) => bind_args!(sqlx::query_as(&sql), args).fetch_all(p).await?,
        Db::Postgres(pg) => {
            bind_args!(sqlx::query_as(&sql), args)
                .fetch_all(&mut *pg.acquire().await?)
                .await?
        }
    };
    let next = if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last().and_then(Cursor::of)
    } else {
        None
    };
    Ok(Page { records, next })
}

/// One record by its transaction id.
pub async fn by_transaction(db: &Db, id: Uuid) -> Result<Option<StoredRecord>, StoreError> {
    let sql = format!("SELECT {SELECT_COLUMNS} FROM audit_records WHERE transaction_id = $1");
    let id = id.hyphenated().to_string();
    Ok(match db {
        Db::Sqlite(p, _) => sqlx::query_as(&sql).bind(id).fetch_optional(p).await?,
        Db::Postgres(pg) => {
            sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&mut *pg.acquire().await?)
                .await?
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON record per line.
    Ndjson,
    /// RFC 4180 with a header row.
    Csv,
}

impl ExportFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
        }
    }
}

/// Every record matching `filter`, oldest first, as a byte stream: one page in memory at a time.
pub fn export(
    db: Db,
    filter: AuditFilter,
    format: ExportFormat,
) -> impl Stream<Item = Result<Bytes, StoreError>> + 'static {
    struct State {
        db: Db,
        filter: AuditFilter,
        format: ExportFormat,
        after: Option<Cursor>,
        header_sent: bool,
        done: bool,
    }
    let state = State {
        db,
        filter,
        format,
        after: None,
        header_sent: false,
        done: false,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let mut out = String::new();
        if s.format == ExportFormat::Csv && !s.header_sent {
            out.push_str(CSV_HEADER);
            s.header_sent = true;
        }
        match page(&s.db, &s.filter, Order::OldestFirst, s.after, EXPORT_PAGE).await {
            Ok(p) => {
                for r in &p.records {
                    match s.format {
                        ExportFormat::Ndjson => {
                            if let Ok(line) = serde_json::to_string(&r.view()) {
                                out.push_str(&line);
                                out.push('\n');
                            }
                        }
                        ExportFormat::Csv => r.write_csv(&mut out),
                    }
                }
                s.after = p.next;
                s.done = p.next.is_none();
                Some((Ok(Bytes::from(out)), s))
            }
            Err(e) => {
                // The response has started: ending the stream with an error cuts the
                // connection, so the client cannot mistake a partial export for a whole one.
                s.done = true;
                Some((Err(e), s))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            time_us: 1_700_000_000_123_456,
            transaction_id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        assert_eq!(Cursor::parse("not a cursor"), None);
        assert_eq!(Cursor::parse(&URL_SAFE_NO_PAD.encode("12.nope")), None);
        assert_eq!(Cursor::parse(&"A".repeat(500)), None);
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let f = AuditFilter {
            party_id: Some("p".into()),
            decision: Some(Decision::Deny),
            until_us: Some(5),
            ..Default::default()
        };
        let after = Cursor {
            time_us: 4,
            transaction_id: Uuid::nil(),
        };
        let (sql, args) = page_sql(&f, Order::NewestFirst, Some(after), 10);
        assert_eq!(
            args.len(),
            4,
            "the decision is a literal, not a bound value"
        );
        assert!(sql.contains("party_id = $1 AND decision = 'deny' AND time_us < $2"));
        assert!(sql.contains("(time_us, transaction_id) < ($3, $4)"));
        assert!(sql.ends_with("ORDER BY time_us DESC, transaction_id DESC LIMIT 11"));
    }
}
