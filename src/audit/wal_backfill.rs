//! Moves the copying of the audit writer's WAL into the database file (SQLite's checkpoint; the
//! copied frames are "backfilled") off the writer's thread.
//!
//! Left to SQLite, the commit that takes the WAL past 1,000 pages copies them into the database
//! file and syncs it before it returns: some 250 page reads and writes and a database `fsync` of
//! about 1 ms on this project's benchmark machine, 16 times a second at 16k requests/s. Every
//! request in that batch and in the batches queued behind it waits, and that stall set the p99
//! (bench/RESULTS.md, run F).
//!
//! Here the writer's connection checkpoints nothing by itself: a WAL hook only notes the WAL's
//! size after each commit. A thread of its own, on its own connection, backfills (a PASSIVE
//! checkpoint, which never blocks the writer) whenever the WAL has grown by `PASS` pages. A
//! passive checkpoint running beside a busy writer rarely catches up, and SQLite starts the
//! WAL over only once all of it is backfilled, so when the WAL holds `RESTART` pages or more the
//! writer finishes the job itself — but only once the thread has left it at most `LAG` pages to
//! copy: a short stall, instead of the WAL growing without end.
//!
//! Durability is SQLite's: frames are backfilled only once they are in a synced WAL, and a
//! checkpoint syncs the database file before it lets the WAL start over, on whichever connection
//! runs it.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, ffi};

/// The WAL's growth, in pages, that sends the thread to backfill.
const PASS: i64 = 1000;
/// The WAL size, in pages, from which the writer finishes the backfill itself …
///
/// Each time it does, the requests queued behind it wait for a database `fsync` and for the
/// synced WAL header of the restart: about 0.6 ms. At 2,000 pages that happened 17 times a second
/// at half of the small file's peak and was a share of the p99; at 8,000 it happens a quarter as
/// often (for a WAL file of up to 32 MB, 64 MB when commits outpace the thread), while the thread's
/// passes, and so its database syncs, stay the size `PASS` sets (bench/RESULTS.md, session U).
const RESTART: i64 = 8000;
/// … once no more than this many pages are left to copy, or in any case from twice that size
/// (when commits outpace the thread).
const LAG: i64 = 64;
/// The thread's nice value. Backfilling is bulk work that no request waits for: when the two
/// cores are contended, the HTTP workers and the audit writer go first, and the thread catches
/// up in the gaps (if it falls behind, the writer finishes the job itself, as above). Measured
/// on the restricted small file at 16k requests/s: requests answered within 1.6 ms went from
/// 91.9–94.5 % to 94.8–97.0 % (bench/RESULTS.md, session I).
const NICE: libc::c_int = 10;

/// What the thread reports after each pass.
#[derive(Default)]
struct Shared {
    /// Passes completed; bumped after `log` and `backfilled` are set.
    passes: AtomicU64,
    /// The WAL's size in pages when the pass ran (-1 if it failed) …
    log: AtomicI64,
    /// … and how many of them are now in the database file.
    backfilled: AtomicI64,
}

pub(super) struct Backfill {
    /// The WAL's size in pages after the writer's last commit, set by the WAL hook. Boxed, so
    /// that its address (the hook's argument) stays put.
    frames: Box<AtomicI64>,
    shared: Arc<Shared>,
    signal: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The writer's view: the WAL's size after the previous commit, …
    last: i64,
    /// … pages known to be backfilled, …
    backfilled: i64,
    /// … the WAL's size when the thread was last sent, …
    requested: i64,
    /// … whether it has yet to report that pass, and passes seen so far.
    pending: bool,
    seen: u64,
}

impl Backfill {
    /// Takes over the checkpoints of `writer` (a connection to the database file at `path`)
    /// and starts the thread with a connection of its own.
    ///
    /// `writer` must be dropped before the returned value, into which its WAL hook points.
    pub(super) fn start(writer: &Connection, path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // A checkpoint syncs the WAL and the database file only with `synchronous` on.
        conn.pragma_update(None, "synchronous", "full")?;
        // SQLite syncs the database file only after a checkpoint that reached the end of the
        // WAL, which one beside a busy writer never does: the thread syncs what it copied itself,
        // so that the writer's final pass has little left to flush.
        let db = std::fs::File::open(path).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_CANTOPEN),
                Some(format!("{}: {e}", path.display())),
            )
        })?;
        let shared = Arc::new(Shared::default());
        let (signal, wake) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("sluis-backfill".into())
                .spawn(move || {
                    // Pages known synced: a pass that copied nothing new needs no sync. Durability
                    // does not depend on this sync; SQLite syncs before the WAL starts over.
                    let mut synced = 0;
                    lower_priority();
                    while wake.recv().is_ok() {
                        let (log, backfilled) = match passive(&conn) {
                            Ok(pass) => pass,
                            Err(e) => {
                                tracing::warn!(error = %e, "audit WAL not backfilled");
                                (-1, 0)
                            }
                        };
                        if log >= 0 && backfilled != synced {
                            match db.sync_data() {
                                Ok(()) => synced = backfilled,
                                Err(e) => {
                                    tracing::warn!(error = %e, "audit database file not synced")
                                }
                            }
                        }
                        shared.log.store(log, Ordering::Relaxed);
                        shared.backfilled.store(backfilled, Ordering::Relaxed);
                        shared.passes.fetch_add(1, Ordering::Release);
                    }
                })
                .map_err(|e| {
                    rusqlite::Error::SqliteFailure(
                        ffi::Error::new(ffi::SQLITE_ERROR),
                        Some(format!("audit backfill thread: {e}")),
                    )
                })?
        };
        let frames = Box::new(AtomicI64::new(0));
        // SAFETY: `frames` is boxed, so the pointer stays valid for as long as this value lives,
        // and the caller drops the connection first; the hook only stores into the atomic.
        // Installing a WAL hook replaces SQLite's automatic checkpoint on this connection.
        unsafe {
            ffi::sqlite3_wal_hook(
                writer.handle(),
                Some(on_commit),
                std::ptr::from_ref::<AtomicI64>(&frames).cast_mut().cast(),
            );
        }
        Ok(Self {
            frames,
            shared,
            signal: Some(signal),
            thread: Some(thread),
            last: 0,
            backfilled: 0,
            requested: 0,
            pending: false,
            seen: 0,
        })
    }

    /// Called by the writer after each commit: sends the thread when the WAL has grown, or
    /// finishes a nearly complete backfill on `writer` so that the WAL starts over.
    pub(super) fn committed(&mut self, writer: &Connection) {
        let n = self.frames.load(Ordering::Relaxed);
        if n < self.last {
            // The WAL started over.
            self.backfilled = 0;
            self.requested = 0;
        }
        self.last = n;
        let passes = self.shared.passes.load(Ordering::Acquire);
        if passes != self.seen {
            self.seen = passes;
            self.pending = false;
            let log = self.shared.log.load(Ordering::Relaxed);
            // A pass over the WAL before it started over (or a failed one) says nothing of this one.
            if (0..=n).contains(&log) {
                self.backfilled = self
                    .backfilled
                    .max(self.shared.backfilled.load(Ordering::Relaxed));
            }
        }
        if self.pending {
            return;
        }
        if n >= RESTART && (n - self.backfilled <= LAG || n >= 2 * RESTART) {
            // PASSIVE never waits for a lock, and the thread, with nothing pending, holds none.
            match passive(writer) {
                Ok((_, backfilled)) => self.backfilled = backfilled,
                Err(e) => tracing::warn!(error = %e, "audit WAL not backfilled"),
            }
            return;
        }
        if n - self.requested >= PASS || n >= RESTART {
            let Some(signal) = &self.signal else { return };
            match signal.try_send(()) {
                Ok(()) => {
                    self.pending = true;
                    self.requested = n;
                }
                Err(TrySendError::Full(())) => self.pending = true,
                Err(TrySendError::Disconnected(())) => {}
            }
        }
    }

    /// Passes the thread has completed.
    #[cfg(test)]
    fn passes(&self) -> u64 {
        self.shared.passes.load(Ordering::Acquire)
    }
}

impl Drop for Backfill {
    fn drop(&mut self) {
        self.signal = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A PASSIVE checkpoint: copies what it can without waiting for any lock; returns the WAL's size
/// in pages and how many of them are in the database file.
fn passive(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

/// Gives the calling thread the nice value [`NICE`]. Linux keeps a nice value per thread; raising
/// one's own needs no privilege.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a plain system call on the calling thread (`who` 0), with no pointers.
        let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
        if done != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "backfill thread keeps its priority");
        }
    }
}

/// SQLite's WAL hook: called after each commit with the WAL's size in pages.
unsafe extern "C" fn on_commit(
    frames: *mut c_void,
    _db: *mut ffi::sqlite3,
    _schema: *const c_char,
    n: c_int,
) -> c_int {
    // SAFETY: the argument is the `AtomicI64` installed with the hook, alive while it is.
    let frames = unsafe { &*frames.cast::<AtomicI64>() };
    frames.store(i64::from(n), Ordering::Relaxed);
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// How long the test waits for the thread.
    const PATIENCE: Duration = Duration::from_secs(10);

    fn wal_pages(path: &Path) -> u64 {
        let wal = path.with_extension("db-wal");
        std::fs::metadata(wal).map_or(0, |m| m.len()) / (4096 + 24)
    }

    /// A WAL-mode database with a table of page-sized rows, and the writer's backfill.
    fn writer(path: &Path) -> (Connection, Backfill) {
        let writer = Connection::open(path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = wal; PRAGMA synchronous = full;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL);",
            )
            .unwrap();
        let backfill = Backfill::start(&writer, path).unwrap();
        (writer, backfill)
    }

    /// The nice values of this process's backfill threads (other tests run their own).
    fn backfill_nice_values() -> Vec<i64> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // "tid (comm) state ppid …": the nice value is the 17th field after the name.
            if let Some((name, rest)) = stat.split_once(") ") {
                if name.ends_with("(sluis-backfill") {
                    if let Some(nice) = rest.split(' ').nth(16) {
                        found.push(nice.parse().unwrap());
                    }
                }
            }
        }
        found
    }

    /// Waits until the thread has completed `n` passes.
    fn wait_for_passes(backfill: &Backfill, n: u64) {
        let deadline = std::time::Instant::now() + PATIENCE;
        while backfill.passes() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{} passes",
                backfill.passes()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Commits `n` transactions of `pages` new pages each through `writer`, telling `backfill`.
    fn commit(writer: &Connection, backfill: &mut Backfill, n: usize, pages: usize) {
        for _ in 0..n {
            let tx = writer.unchecked_transaction().unwrap();
            for _ in 0..pages {
                tx.execute("INSERT INTO t (v) VALUES (zeroblob(4000))", [])
                    .unwrap();
            }
            tx.commit().unwrap();
            backfill.committed(writer);
        }
    }

    #[test]
    fn the_thread_backfills_what_the_writer_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (writer, mut backfill) = writer(&path);

        // Below `PASS` pages the thread is not sent.
        commit(&writer, &mut backfill, 50, 10);
        let pages = wal_pages(&path);
        assert!(
            pages > 500,
            "the WAL holds what was committed ({pages} pages)"
        );
        assert_eq!(backfill.passes(), 0);

        // Past `PASS` the thread is sent, and sent again as the WAL keeps growing.
        commit(&writer, &mut backfill, 60, 10);
        wait_for_passes(&backfill, 1);
        commit(&writer, &mut backfill, 300, 10);
        wait_for_passes(&backfill, 2);

        // The thread, having passed, runs below the request path's priority.
        assert!(
            backfill_nice_values().contains(&i64::from(NICE)),
            "backfill threads' nice values: {:?}",
            backfill_nice_values()
        );

        // Everything committed is in the database, and the file is sound.
        let reader = Connection::open(&path).unwrap();
        let rows: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, (50 + 60 + 300) * 10);
        let check: String = reader
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        drop(reader);
        drop(writer);
        drop(backfill);
    }

    #[test]
    fn a_pass_that_cannot_catch_up_is_finished_by_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (writer, mut backfill) = writer(&path);
        // The thread is stopped; the test plays its part, at the worst moment.
        backfill.signal = None;
        backfill.thread.take().unwrap().join().unwrap();
        let other = Connection::open(&path).unwrap();
        let frames = |b: &Backfill| b.frames.load(Ordering::Relaxed);

        // Commits of 20 pages that take the WAL just past `RESTART`.
        let past_restart = (RESTART / 20 + 10) as usize;
        commit(&writer, &mut backfill, past_restart, 20);
        let before = frames(&backfill);
        assert!(before >= RESTART, "{before} pages in the WAL");
        for round in 0..3 {
            // A pass runs while the writer is inside a transaction: it copies everything but
            // what that transaction is about to commit, so the WAL cannot start over by itself.
            let tx = writer.unchecked_transaction().unwrap();
            tx.execute("INSERT INTO t (v) VALUES (zeroblob(4000))", [])
                .unwrap();
            let (log, backfilled) = passive(&other).unwrap();
            assert_eq!(log, backfilled, "round {round}: the pass copied all it saw");
            tx.commit().unwrap();
            backfill.shared.log.store(log, Ordering::Relaxed);
            backfill
                .shared
                .backfilled
                .store(backfilled, Ordering::Relaxed);
            backfill.shared.passes.fetch_add(1, Ordering::Release);
            backfill.committed(&writer);
            // The writer finished the pass, so its next commit starts the WAL over.
            commit(&writer, &mut backfill, 1, 1);
            let after = frames(&backfill);
            assert!(after < 50, "round {round}: {after} pages in the WAL");
            commit(&writer, &mut backfill, past_restart, 20);
        }

        // With no pass at all (the thread outpaced), the writer backfills everything at twice
        // the size.
        let mut n = 0;
        while frames(&backfill) >= n {
            n = frames(&backfill);
            assert!(n <= 2 * RESTART + 100, "{n} pages in the WAL");
            commit(&writer, &mut backfill, 1, 20);
        }
        let rows: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let committed = past_restart * 20 + 3 * (1 + 1 + past_restart * 20);
        assert!(rows > committed as i64, "{rows} rows");
        drop(other);
        drop(writer);
        drop(backfill);
    }
}
