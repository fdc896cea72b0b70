//! A SQLite VFS for the audit writer's own connection that writes a commit's WAL frames with one
//! system call instead of two per frame.
//!
//! SQLite appends each WAL frame as a 24-byte header and a page, each with its own `pwrite`; a
//! commit of a dozen pages is some 28 calls, each touching the page-cache pages the frame
//! straddles. Gathered, the audit writer makes a tenth of the write calls, and a request costs
//! about 6 % less CPU (bench/RESULTS.md, "Kept this session" under run D).
//!
//! The shim wraps the platform's default VFS ("unix") and changes only files opened as a WAL:
//! contiguous writes are gathered in memory and written in one call before anything that must
//! see them — a sync, a read of the same range, the file's size, a truncation, a file control,
//! closing. The database file and the shared-memory index are the default VFS's own.
//!
//! Why nothing is lost: the writer connection runs with `synchronous = FULL`, so every commit
//! syncs the WAL (which writes the gathered frames first) before SQLite publishes the commit in
//! the shared-memory index where other connections find it. A failed deferred write fails that
//! sync, so the commit fails as it would have failed on the write itself.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::ffi;

/// The name the writer opens its connection with.
pub(super) const NAME: &str = "sluis-wal";
const NAME_C: &CStr = c"sluis-wal";

/// Gathered bytes are written once they exceed this, whatever comes next.
const MAX_GATHER: usize = 4 << 20;

/// The unix VFS writes at most 128 KiB − 1 bytes per call (it masks the length with 0x1ffff), so
/// gathered bytes go down in pieces of at most 31 pages.
const MAX_WRITE: usize = 31 * 4096;

/// Registers the VFS (once per process). `false` when the default VFS is not "unix", which the
/// shim is written against; the writer then opens its connection with the default VFS.
pub(super) fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find and sqlite3_vfs_register are thread-safe; the VFS struct is
        // leaked, so it outlives every connection that uses it.
        unsafe {
            let base = ffi::sqlite3_vfs_find(std::ptr::null());
            if base.is_null() || CStr::from_ptr((*base).zName) != c"unix" {
                return false;
            }
            let mut vfs = *base;
            vfs.pNext = std::ptr::null_mut();
            vfs.zName = NAME_C.as_ptr();
            vfs.pAppData = base.cast();
            vfs.szOsFile = c_int::try_from(std::mem::size_of::<ShimFile>())
                .unwrap_or(c_int::MAX)
                .saturating_add((*base).szOsFile);
            vfs.xOpen = Some(open);
            // The unix VFS ignores its own pointer in every other method, so they are shared.
            let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(vfs));
            ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
        }
    })
}

/// A WAL file: SQLite's handle first, then the gathered writes, then the default VFS's handle.
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    gathered: *mut Gathered,
    // The default VFS's file follows (szOsFile bytes), 8-byte aligned.
}

struct Gathered {
    bytes: Vec<u8>,
    /// File offset of `bytes[0]`.
    at: i64,
}

fn real(f: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY (for callers): `f` is a ShimFile allocated by SQLite with szOsFile bytes.
    unsafe { f.cast::<u8>().add(std::mem::size_of::<ShimFile>()).cast() }
}

/// The default VFS's method `$m` on the wrapped file.
macro_rules! call {
    ($f:expr, $m:ident $(, $arg:expr)*) => {{
        let r = real($f);
        match (*(*r).pMethods).$m {
            Some(m) => m(r $(, $arg)*),
            None => ffi::SQLITE_OK,
        }
    }};
}

/// The default VFS's method `$m`, after writing what was gathered.
macro_rules! call_flushed {
    ($f:expr, $m:ident $(, $arg:expr)*) => {{
        match flush($f) {
            ffi::SQLITE_OK => call!($f, $m $(, $arg)*),
            rc => rc,
        }
    }};
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    unsafe {
        let base = (*vfs).pAppData.cast::<ffi::sqlite3_vfs>();
        let Some(base_open) = (*base).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Not a WAL: the default VFS's own file, in the space SQLite allocated.
            return base_open(base, name, file, flags, out_flags);
        }
        let shim = file.cast::<ShimFile>();
        (*shim).base.pMethods = std::ptr::null();
        let rc = base_open(base, name, real(file), flags, out_flags);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        (*shim).gathered = Box::into_raw(Box::new(Gathered {
            bytes: Vec::new(),
            at: 0,
        }));
        (*shim).base.pMethods = &METHODS;
        ffi::SQLITE_OK
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 1: a WAL file is never memory-mapped and has no shared memory of its own.
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// Gathered writes made, for the tests: proof that a connection really goes through the shim.
static FLUSHES: AtomicU64 = AtomicU64::new(0);

/// Writes what was gathered.
unsafe fn flush(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let g = &mut *(*f.cast::<ShimFile>()).gathered;
        if g.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        FLUSHES.fetch_add(1, Ordering::Relaxed);
        let mut rc = ffi::SQLITE_OK;
        let mut at = g.at;
        for chunk in g.bytes.chunks(MAX_WRITE) {
            // `chunk.len()` ≤ MAX_WRITE fits a c_int.
            rc = call!(f, xWrite, chunk.as_ptr().cast(), chunk.len() as c_int, at);
            if rc != ffi::SQLITE_OK {
                break;
            }
            at += chunk.len() as i64;
        }
        // Written or not, the bytes are not kept: a failed write fails the sync that follows,
        // and with it the commit.
        g.bytes.clear();
        rc
    }
}

unsafe extern "C" fn write(
    f: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    unsafe {
        let Ok(len) = usize::try_from(amount) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let data = std::slice::from_raw_parts(data.cast::<u8>(), len);
        let g = &mut *(*f.cast::<ShimFile>()).gathered;
        let end = g.at + g.bytes.len() as i64;
        if g.bytes.is_empty() {
            g.at = offset;
            g.bytes.extend_from_slice(data);
        } else if offset == end {
            g.bytes.extend_from_slice(data);
        } else if offset >= g.at && offset + len as i64 <= end {
            // A frame rewritten in place (SQLite does so within one transaction).
            let from = (offset - g.at) as usize;
            g.bytes[from..from + len].copy_from_slice(data);
        } else {
            let rc = flush(f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            let g = &mut *(*f.cast::<ShimFile>()).gathered;
            g.at = offset;
            g.bytes.extend_from_slice(data);
        }
        if (*(*f.cast::<ShimFile>()).gathered).bytes.len() > MAX_GATHER {
            return flush(f);
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn read(
    f: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    unsafe {
        let g = &*(*f.cast::<ShimFile>()).gathered;
        let end = g.at + g.bytes.len() as i64;
        if !g.bytes.is_empty() && offset < end && offset + i64::from(amount) > g.at {
            return call_flushed!(f, xRead, data, amount, offset);
        }
        call!(f, xRead, data, amount, offset)
    }
}

unsafe extern "C" fn sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    unsafe {
        let rc = flush(f);
        if rc != ffi::SQLITE_OK {
            return ffi::SQLITE_IOERR_FSYNC;
        }
        call!(f, xSync, flags)
    }
}

unsafe extern "C" fn truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    unsafe { call_flushed!(f, xTruncate, size) }
}

unsafe extern "C" fn file_size(f: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    unsafe { call_flushed!(f, xFileSize, size) }
}

unsafe extern "C" fn file_control(f: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    unsafe { call_flushed!(f, xFileControl, op, arg) }
}

unsafe extern "C" fn close(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let flushed = flush(f);
        let closed = call!(f, xClose);
        drop(Box::from_raw((*f.cast::<ShimFile>()).gathered));
        (*f.cast::<ShimFile>()).base.pMethods = std::ptr::null();
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

unsafe extern "C" fn lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    unsafe { call!(f, xLock, level) }
}

unsafe extern "C" fn unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    unsafe { call!(f, xUnlock, level) }
}

unsafe extern "C" fn check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    unsafe { call!(f, xCheckReservedLock, out) }
}

unsafe extern "C" fn sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let r = real(f);
        (*(*r).pMethods).xSectorSize.map_or(4096, |m| m(r))
    }
}

unsafe extern "C" fn device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let r = real(f);
        (*(*r).pMethods).xDeviceCharacteristics.map_or(0, |m| m(r))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, OpenFlags, params};

    use super::*;

    fn count(c: &Connection) -> i64 {
        c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// Commits through the shim are on disk before they are visible: a second connection on the
    /// default VFS reads every one right after it returns, through small and large commits,
    /// frames rewritten within a transaction that spills its cache, and checkpoints.
    #[test]
    fn every_commit_reaches_the_file_before_other_connections_see_it() {
        assert!(register(), "the default VFS on Linux is unix");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let w = Connection::open_with_flags_and_vfs(&path, flags, NAME).unwrap();
        w.pragma_update(None, "journal_mode", "wal").unwrap();
        w.pragma_update(None, "synchronous", "full").unwrap();
        w.pragma_update(None, "wal_autocheckpoint", 50).unwrap();
        w.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
            .unwrap();
        let r = Connection::open(&path).unwrap();
        let before = FLUSHES.load(Ordering::Relaxed);

        let mut expected = 0;
        for n in 1..=120_i64 {
            let tx = w.unchecked_transaction().unwrap();
            for i in 0..(n % 17 + 1) {
                let v = vec![
                    u8::try_from(i % 251).unwrap();
                    usize::try_from(100 + n * 37 % 3000).unwrap()
                ];
                tx.execute("INSERT INTO t (v) VALUES (?1)", params![v])
                    .unwrap();
                expected += 1;
            }
            tx.commit().unwrap();
            assert_eq!(
                count(&r),
                expected,
                "commit {n} visible to the other connection"
            );
        }
        // One transaction larger than the page cache: pages spill to the WAL and are written
        // again before the commit.
        w.pragma_update(None, "cache_size", 10).unwrap();
        let tx = w.unchecked_transaction().unwrap();
        for round in 0..3_u8 {
            tx.execute(
                "UPDATE t SET v = CAST(zeroblob(length(v)) || ?1 AS BLOB)",
                params![vec![round; 64]],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let tail: Vec<u8> = r
            .query_row(
                "SELECT CAST(substr(v, -64) AS BLOB) FROM t ORDER BY id DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tail, vec![2_u8; 64], "the last rewrite won");

        assert!(
            FLUSHES.load(Ordering::Relaxed) > before,
            "the writer went through the shim"
        );
        let ok: String = r
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        w.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        drop((w, r));
        let reopened = Connection::open(&path).unwrap();
        assert_eq!(count(&reopened), expected);
        let ok: String = reopened
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }
}
