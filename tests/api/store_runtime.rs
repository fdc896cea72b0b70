//! The store's connections outlive the runtime that opened them.
//!
//! actix-web runs one Tokio runtime per HTTP worker, and a graceful shutdown stops the workers
//! one by one while the others still drain their requests. A PostgreSQL connection is driven by
//! the runtime it was opened on, so a pooled connection opened by a worker that has stopped would
//! fail the query of a worker still draining. Here the first worker opens the pool and its
//! connection, a second worker takes that connection for a slow query, and the first worker's
//! runtime is shut down while the query runs.

use std::sync::mpsc;
use std::time::Duration;

use sluis::store::Db;

use crate::helpers::{Backend, TestDb};

fn worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A query that takes about half a second on either database.
async fn slow_query(db: &Db) -> Result<(), sqlx::Error> {
    match db {
        Db::Postgres(pg) => {
            let mut conn = pg.acquire().await?;
            sqlx::query("SELECT pg_sleep(0.5)")
                .execute(&mut *conn)
                .await?;
        }
        Db::Sqlite(pool, _) => {
            let mut conn = pool.acquire().await?;
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) \
                 SELECT count(*) FROM n",
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

fn connection_outlives_the_worker_that_opened_it(backend: Backend) {
    // The first worker: opens the pool and its one connection, gives it back, and keeps
    // running (as an HTTP worker's runtime does) until it is told to stop.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let first = std::thread::spawn(move || {
        worker().block_on(async {
            let test_db = TestDb::new(backend).await;
            // One connection, so that the second worker takes the one the first worker opened.
            let db = Db::connect(&test_db.url, 1, Duration::from_secs(5))
                .await
                .expect("connect");
            db.migrate().await.expect("migrate");
            db.ping().await.expect("ping");
            // Giving a connection back runs on a task of its own: let it finish.
            tokio::time::sleep(Duration::from_millis(100)).await;
            ready_tx.send((test_db, db)).expect("main thread waits");
            let _ = stop_rx.await;
        })
        // The runtime is dropped here: the worker has stopped.
    });
    let (test_db, db) = ready_rx.recv().expect("first worker ready");

    let (started_tx, started_rx) = mpsc::channel();
    let second = {
        let db = db.clone();
        std::thread::spawn(move || {
            worker().block_on(async {
                let mut slow = std::pin::pin!(slow_query(&db));
                // Let the query start before the first worker goes.
                let early = tokio::time::timeout(Duration::from_millis(100), slow.as_mut()).await;
                started_tx.send(()).expect("main thread waits");
                let during = match early {
                    Ok(done) => done,
                    Err(_) => slow.await,
                };
                let after = db.ping().await;
                (during, after)
            })
        })
    };
    started_rx.recv().expect("second worker started");
    stop_tx.send(()).expect("first worker waits");
    first.join().expect("first worker");
    let (during, after) = second.join().expect("second worker");
    during.expect("the query running while the opening worker stopped must complete");
    after.expect("the pool must serve after the opening worker stopped");

    worker().block_on(async {
        db.close().await;
        test_db.drop_db().await;
    });
}

#[test]
fn sqlite() {
    connection_outlives_the_worker_that_opened_it(Backend::Sqlite);
}

#[test]
fn postgres() {
    connection_outlives_the_worker_that_opened_it(Backend::Postgres);
}
