//! Database pools for the two supported engines: SQLite (embedded default, one machine) and
//! PostgreSQL (production, shared by replicas). Migrations for each dialect live in
//! `migrations/sqlite` and `migrations/postgres` and hold the same schema, but for one foreign
//! key that only SQLite keeps (`migrations/postgres/0007_audit_records_without_chain_fk.sql`).

/// Runs the same sqlx code on whichever database `db` holds: the expression is written once and
/// type-checked for each. `$pool` is the SQLite pool, or a PostgreSQL connection taken through
/// [`Pg::acquire`].
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool, _) => $body,
            $crate::store::Db::Postgres(pg) => {
                #[allow(unused_imports)]
                use sqlx::Connection as _;
                let mut conn = pg.acquire().await?;
                let $pool = &mut *conn;
                $body
            }
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
            $crate::store::Db::Postgres(pg) => {
                #[allow(unused_imports)]
                use sqlx::Connection as _;
                let mut conn = pg.acquire().await?;
                let $pool = &mut *conn;
                $body
            }
        }
    };
}
pub(crate) use on_pool_write;

pub mod consumers;
pub mod replay;
pub mod usage;

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres, SqlitePool};
use tokio::runtime::{Handle, Runtime};

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
    #[error("database runtime: {0}")]
    Runtime(String),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub enum Db {
    /// The pool, and the turn its writers (and the audit writer's own connection) take.
    Sqlite(SqlitePool, WriteTurn),
    Postgres(Pg),
}

/// The runtime that every PostgreSQL connection of this process belongs to.
///
/// A connection's socket is driven by the Tokio runtime it was opened on, and actix-web runs one
/// runtime per HTTP worker. A pooled connection opened by one worker and later taken by another
/// is then served by the first worker's runtime: its I/O waits until that runtime gets round to
/// it, and fails once that worker has stopped, as workers do one by one during a graceful
/// shutdown, while the others are still draining. Connections are therefore opened here, on
/// threads of their own that never stop, whoever asks for them.
pub fn home() -> Result<&'static Handle, StoreError> {
    static HOME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    HOME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluis-db")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map(Runtime::handle)
    .map_err(|e| StoreError::Runtime(e.clone()))
}

/// Polls `fut` with `home` as its runtime: a connection it opens, a timer it sets and a task it
/// spawns belong to `home`, while the caller's task still does the waiting.
pub async fn in_home<F: Future>(home: &Handle, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        let _home = home.enter();
        fut.as_mut().poll(cx)
    })
    .await
}

/// The PostgreSQL pool, whose connections are opened and given back on [`home`].
#[derive(Debug, Clone)]
pub struct Pg {
    pool: PgPool,
    home: &'static Handle,
}

impl Pg {
    /// A connection from the pool, opened on [`home`] if the pool has to open one.
    pub async fn acquire(&self) -> Result<PgConn, sqlx::Error> {
        let conn = in_home(self.home, self.pool.acquire()).await?;
        Ok(PgConn {
            conn: Some(conn),
            home: self.home,
        })
    }

    /// The pool itself, for what manages its own connections (a listener, the audit writer's
    /// connect options).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn home(&self) -> &'static Handle {
        self.home
    }
}

/// A pooled PostgreSQL connection that goes back to the pool on [`home`]: giving it back pings
/// it on a task of its own, which must not die with the runtime of whoever used it.
pub struct PgConn {
    conn: Option<PoolConnection<Postgres>>,
    home: &'static Handle,
}

impl Deref for PgConn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_deref().expect("taken only on drop")
    }
}

impl DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_deref_mut().expect("taken only on drop")
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        let _home = self.home.enter();
        drop(self.conn.take());
    }
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
                // keeps at 8,000-16,000 pages: past SQLite's automatic 1,000, every commit here
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
            let home = home()?;
            let pool = in_home(
                home,
                PgPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(timeout)
                    .connect_with(opts),
            )
            .await?;
            Ok(Self::Postgres(Pg { pool, home }))
        } else {
            Err(StoreError::Url("expected sqlite:// or postgres://".into()))
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(p, _) => SQLITE_MIGRATIONS.run(p).await?,
            Self::Postgres(pg) => in_home(pg.home, POSTGRES_MIGRATIONS.run(&pg.pool)).await?,
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
            Self::Postgres(pg) => {
                let mut conn = pg.acquire().await?;
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
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
            Self::Postgres(pg) => in_home(pg.home, pg.pool.close()).await,
        }
    }
}
