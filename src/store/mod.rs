//! Database pools for the two supported engines: SQLite (embedded default, one machine) and
//! PostgreSQL (production, shared by replicas). Migrations for each dialect live in
//! `migrations/sqlite` and `migrations/postgres` and hold the same schema.

/// Runs the same sqlx code on whichever pool `db` holds: the expression is written once and
/// type-checked for each database.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool, _) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// [`on_pool!`] for a write: on SQLite the body runs in the process's [`WriteTurn`], taken
/// before any connection is.
macro_rules! on_pool_write {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool, turn) => {
                let _turn = turn.take().await?;
                $body
            }
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool_write;

pub mod consumers;
pub mod replay;
pub mod usage;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database url is not valid: {0}")]
    Url(String),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    NoTurn(#[from] NoTurn),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub enum Db {
    /// The pool, and the turn its writers (and the audit writer's own connection) take.
    Sqlite(SqlitePool, WriteTurn),
    Postgres(PgPool),
}

/// Whose turn it is to write to the SQLite file, within this process.
///
/// SQLite lets one connection write at a time and keeps no queue: a connection that finds the
/// lock taken sleeps (1, 2, 5 … 100 ms) and tries again. The audit writer commits batch after
/// batch with gaps of microseconds between them, so under load another writer (an assertion's
/// `jti`, a usage counter, an admin change, the readiness check) kept missing those gaps, for
/// seconds. Every writer in the process takes its turn here first, and turns are given in the
/// order they were asked for (tokio's mutex is fair), so a write waits at most for the writes
/// asked for before it. Writers in other processes (the CLI) still rely on the busy timeout.
///
/// The turn is always taken before a pool connection, never while holding one: a task that
/// holds a connection and waits for the turn could wait for a connection held by the task
/// whose turn it is.
///
/// A turn not given within the database timeout is an error, as a lock not taken in time is.
#[derive(Debug, Clone)]
pub struct WriteTurn {
    lock: Arc<tokio::sync::Mutex<()>>,
    timeout: Duration,
}

/// No turn to write was given within the database timeout.
#[derive(Debug, thiserror::Error)]
#[error("database: no turn to write within {0} ms")]
pub struct NoTurn(u128);

impl From<NoTurn> for sqlx::Error {
    fn from(e: NoTurn) -> Self {
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, e))
    }
}

impl WriteTurn {
    pub fn new(timeout: Duration) -> Self {
        Self {
            lock: Arc::default(),
            timeout,
        }
    }

    pub async fn take(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, NoTurn> {
        tokio::time::timeout(self.timeout, self.lock.lock())
            .await
            .map_err(|_| NoTurn(self.timeout.as_millis()))
    }

    /// For a thread outside the async runtime (the audit writer's).
    pub fn take_blocking(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.blocking_lock()
    }
}

impl Db {
    /// Connects lazily enough that a database that is down at start is reported by the first
    /// query, with `timeout` as the longest wait for a connection or a lock.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Url(e.to_string()))?
                // WAL lets readers run beside the audit writer; FULL makes every commit durable
                // against power loss, which the audit log promises.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(timeout)
                .foreign_keys(true)
                // The server's audit writer backfills the WAL (`audit::wal_backfill`), which it
                // keeps at 2,000-4,000 pages: past SQLite's automatic 1,000, every commit here
                // would run a checkpoint of its own in its write turn. A CLI process's writes
                // are checkpointed when its last connection closes, or by the server's backfill.
                .pragma("wal_autocheckpoint", "0");
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(timeout)
                .connect_with(opts)
                .await?;
            Ok(Self::Sqlite(pool, WriteTurn::new(timeout)))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(timeout)
                .connect_with(opts)
                .await?;
            Ok(Self::Postgres(pool))
        } else {
            Err(StoreError::Url("expected sqlite:// or postgres://".into()))
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(p, _) => SQLITE_MIGRATIONS.run(p).await?,
            Self::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// A round trip to the database, for readiness. On SQLite it takes the write lock for a
    /// moment: a file that can be read but not written cannot hold audit records.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(p, turn) => {
                let _turn = turn.take().await?;
                let mut conn = p.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            }
            Self::Postgres(p) => {
                sqlx::query("SELECT 1").execute(p).await?;
            }
        }
        Ok(())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(..) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(p, _) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}
