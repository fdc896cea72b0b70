//! A product backed by a file next to the connector. Files up to `WHOLE` bytes are served whole
//! from memory: kept after the first read and checked against the file's metadata on every
//! request, so an edit is served from the next request on. Larger files, and files the memory
//! budget has no room for, stream in fixed-size chunks with backpressure.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use tokio_util::io::ReaderStream;

use super::{SourceBody, SourceError, media_type_for_extension, parse_media_type};

/// Files up to this size are read on the worker thread: for a page-cached file the system calls
/// take microseconds, less than a trip to the blocking pool and back.
const INLINE: u64 = 256 * 1024;
/// Files up to this size are read whole (beyond `INLINE` on the blocking pool) and kept in
/// memory; anything larger is streamed. Serving a 682 KB file from memory instead of in 64 KiB
/// reads costs a third of the CPU (bench/RESULTS.md, run F).
const WHOLE: u64 = 1024 * 1024;
/// Chunk size when streaming a large file.
const CHUNK: usize = 64 * 1024;
/// The most memory all file sources together keep; a file that does not fit is read from disk
/// on every request, as a large one is.
const KEPT_BYTES: usize = 32 * 1024 * 1024;
/// A file whose inode changed this recently is served but not kept: a second edit within the
/// file system's timestamp granularity (up to 2 s on some) could leave its metadata unchanged.
const SETTLE: Duration = Duration::from_secs(2);

/// The memory all file sources share for their kept files.
static BUDGET: Budget = Budget::new(KEPT_BYTES);

pub struct FileSource {
    path: PathBuf,
    media_type: String,
    /// The file's content as last read, with the metadata it had then.
    kept: ArcSwapOption<Kept>,
    budget: &'static Budget,
    settle: Duration,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("path", &self.path)
            .field("media_type", &self.media_type)
            .field(
                "kept_bytes",
                &self.kept.load().as_ref().map(|k| k.bytes.len()),
            )
            .finish()
    }
}

impl FileSource {
    pub fn new(path: PathBuf, media_type: Option<&str>) -> Result<Self, SourceError> {
        let media_type = match media_type {
            Some(m) => parse_media_type(m)
                .ok_or_else(|| SourceError::Config(format!("`{m}` is not a media type")))?,
            None => media_type_for_extension(&path).to_string(),
        };
        Ok(Self::with_budget(path, media_type, &BUDGET, SETTLE))
    }

    fn with_budget(
        path: PathBuf,
        media_type: String,
        budget: &'static Budget,
        settle: Duration,
    ) -> Self {
        Self {
            path,
            media_type,
            kept: ArcSwapOption::empty(),
            budget,
            settle,
        }
    }

    pub async fn open(&self) -> Result<SourceBody, SourceError> {
        // A kept file costs one `stat`, on the worker thread.
        let fail = |source| SourceError::File {
            path: self.path.display().to_string(),
            source,
        };
        let version = match std::fs::metadata(&self.path) {
            Ok(meta) => Version::of(&meta),
            Err(e) => {
                self.forget();
                return Err(fail(e));
            }
        };
        if let Some(kept) = &*self.kept.load() {
            if kept.version == version {
                return Ok(self.whole(kept.bytes.clone()));
            }
        }
        // A file that cannot be read is let go.
        let lost = |e| {
            self.forget();
            fail(e)
        };
        let (file, meta) = open_file(&self.path).map_err(lost)?;
        let len = meta.len();
        if len <= INLINE {
            let bytes = read_whole(file, len).map_err(lost)?;
            self.keep(&bytes, &meta);
            return Ok(self.whole(bytes));
        }
        // Read whole only what the budget has room for, so that files being read and files kept
        // never hold more than the budget between them; the rest streams.
        if len <= WHOLE {
            if let Some(room) = self.budget.reserve(len as usize) {
                // Boxed: this future holds the file's metadata across the read, and the future
                // of every request to a file product would otherwise be as large.
                return Box::pin(self.read_and_keep(file, meta, room)).await;
            }
        }
        self.forget();
        Ok(SourceBody {
            media_type: self.media_type.clone(),
            length: Some(len),
            stream: Box::pin(ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                CHUNK,
            )),
        })
    }

    /// Reads a file too large to read on the worker thread, on the blocking pool, and keeps it.
    async fn read_and_keep(
        &self,
        file: std::fs::File,
        meta: std::fs::Metadata,
        room: Room,
    ) -> Result<SourceBody, SourceError> {
        let lost = |source| {
            self.forget();
            SourceError::File {
                path: self.path.display().to_string(),
                source,
            }
        };
        let len = meta.len();
        let bytes = tokio::task::spawn_blocking(move || read_whole(file, len))
            .await
            .map_err(|e| lost(std::io::Error::other(e)))?
            .map_err(lost)?;
        drop(room);
        self.keep(&bytes, &meta);
        Ok(self.whole(bytes))
    }

    fn whole(&self, bytes: Bytes) -> SourceBody {
        SourceBody {
            media_type: self.media_type.clone(),
            length: Some(bytes.len() as u64),
            stream: Box::pin(futures_util::stream::once(async move { Ok(bytes) })),
        }
    }

    /// Keeps what was just read, if the file is settled and fits the budget; the previous
    /// version is let go either way.
    fn keep(&self, bytes: &Bytes, meta: &std::fs::Metadata) {
        self.forget();
        if !meta.is_file() || changed_within(meta, self.settle) {
            return;
        }
        let Some(room) = self.budget.reserve(bytes.len()) else {
            return;
        };
        // A concurrent request may have kept its own read meanwhile: it is let go in turn.
        self.kept.store(Some(Arc::new(Kept {
            version: Version::of(meta),
            bytes: bytes.clone(),
            _room: room,
        })));
    }

    fn forget(&self) {
        self.kept.store(None);
    }
}

/// A file's content and the version it was read at. Its memory goes back to the budget when the
/// last request serving it is done with it.
struct Kept {
    version: Version,
    bytes: Bytes,
    _room: Room,
}

/// What tells one state of a file from another: any write changes the size or the times, a
/// replacement (rename over it) the inode, and a permission change the inode change time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// Whether the inode changed less than `window` ago (or, by the clock, in the future).
fn changed_within(meta: &std::fs::Metadata, window: Duration) -> bool {
    let nanos = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
    let now = match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(_) => return true,
    };
    now - nanos(meta.ctime(), meta.ctime_nsec()) < window.as_nanos() as i128
}

/// Bytes kept in memory, shared by all file sources, with a fixed ceiling.
struct Budget {
    cap: usize,
    used: AtomicUsize,
}

impl Budget {
    const fn new(cap: usize) -> Self {
        Self {
            cap,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `n` bytes of the budget, given back when the `Room` is dropped; `None` if they do
    /// not fit.
    fn reserve(&'static self, n: usize) -> Option<Room> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.cap)
            })
            .ok()
            .map(|_| Room { budget: self, n })
    }
}

/// Bytes taken from a `Budget`.
struct Room {
    budget: &'static Budget,
    n: usize,
}

impl Drop for Room {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.n, Ordering::AcqRel);
    }
}

fn open_file(path: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// Reads a file of `len` bytes (by its metadata) to its end.
fn read_whole(mut file: std::fs::File, len: u64) -> std::io::Result<Bytes> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(len as usize);
    file.read_to_end(&mut buf)?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use std::fs::{File, FileTimes};
    use std::io::Write;

    use futures_util::StreamExt;

    use super::*;

    /// A source with its own budget, so that tests running in parallel do not share one.
    fn source(path: &Path, budget: &'static Budget, settle: Duration) -> FileSource {
        let media_type = media_type_for_extension(path).to_string();
        FileSource::with_budget(path.to_path_buf(), media_type, budget, settle)
    }

    fn budget(cap: usize) -> &'static Budget {
        Box::leak(Box::new(Budget::new(cap)))
    }

    async fn read(src: &FileSource) -> (Option<u64>, Vec<Bytes>) {
        let body = src.open().await.unwrap();
        let chunks = body.stream.map(Result::unwrap).collect().await;
        (body.length, chunks)
    }

    async fn content(src: &FileSource) -> Vec<u8> {
        read(src).await.1.concat()
    }

    fn is_kept(src: &FileSource) -> bool {
        src.kept.load().is_some()
    }

    /// Writes in place (same inode) and sets the modification time, as an editor might.
    fn rewrite(path: &Path, content: &[u8], mtime: SystemTime) {
        let mut f = File::options()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.write_all(content).unwrap();
        f.set_times(FileTimes::new().set_modified(mtime)).unwrap();
    }

    #[tokio::test]
    async fn a_kept_file_is_served_from_memory_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, "{\"v\":1}").unwrap();
        let budget = budget(1024);
        let src = source(&path, budget, Duration::ZERO);
        assert_eq!(content(&src).await, b"{\"v\":1}");
        assert!(is_kept(&src));
        assert_eq!(budget.used.load(Ordering::Relaxed), 7);
        assert_eq!(content(&src).await, b"{\"v\":1}", "served from memory");

        // A longer version.
        std::fs::write(&path, "{\"v\":22}").unwrap();
        assert_eq!(content(&src).await, b"{\"v\":22}");
        assert_eq!(budget.used.load(Ordering::Relaxed), 8, "the old one let go");

        // Same size, modification time set back to what it was: the inode change time tells.
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(content(&src).await, b"{\"v\":22}");
        std::thread::sleep(Duration::from_millis(20));
        rewrite(&path, b"{\"v\":33}", mtime);
        assert_eq!(content(&src).await, b"{\"v\":33}");

        // Replaced by a rename, same size and times: another inode.
        let tmp = dir.path().join("a.tmp");
        std::fs::write(&tmp, "{\"v\":44}").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(content(&src).await, b"{\"v\":44}");
        assert_eq!(budget.used.load(Ordering::Relaxed), 8);

        drop(src);
        assert_eq!(budget.used.load(Ordering::Relaxed), 0, "given back on drop");
    }

    #[tokio::test]
    async fn a_file_changed_just_now_is_served_but_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "a\n1\n").unwrap();
        let src = source(&path, budget(1024), SETTLE);
        assert_eq!(content(&src).await, b"a\n1\n");
        assert!(!is_kept(&src), "its inode changed less than {SETTLE:?} ago");
        std::fs::write(&path, "a\n2\n").unwrap();
        assert_eq!(content(&src).await, b"a\n2\n");
    }

    #[tokio::test]
    async fn files_beyond_the_budget_are_read_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, [b'a'; 600]).unwrap();
        std::fs::write(&b, [b'b'; 600]).unwrap();
        let budget = budget(1000);
        let (src_a, src_b) = (
            source(&a, budget, Duration::ZERO),
            source(&b, budget, Duration::ZERO),
        );
        assert_eq!(content(&src_a).await, [b'a'; 600]);
        assert_eq!(content(&src_b).await, [b'b'; 600]);
        assert!(is_kept(&src_a) && !is_kept(&src_b));
        assert_eq!(budget.used.load(Ordering::Relaxed), 600);
        // Once the first is let go, the second fits.
        std::fs::remove_file(&a).unwrap();
        assert!(src_a.open().await.is_err());
        assert_eq!(content(&src_b).await, [b'b'; 600]);
        assert!(!is_kept(&src_a) && is_kept(&src_b));
    }

    #[tokio::test]
    async fn a_large_file_streams_in_chunks_and_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.geojson");
        let size = WHOLE as usize + 1;
        std::fs::write(&path, vec![b'x'; size]).unwrap();
        let src = source(&path, budget(KEPT_BYTES), Duration::ZERO);
        let (length, chunks) = read(&src).await;
        assert_eq!(length, Some(size as u64));
        assert!(chunks.len() > 1, "streamed in chunks");
        assert!(chunks.iter().all(|c| c.len() <= CHUNK));
        assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), size);
        assert!(!is_kept(&src));

        // Shrunk below the limit it is kept; grown again it streams again.
        std::fs::write(&path, b"small").unwrap();
        assert_eq!(content(&src).await, b"small");
        assert!(is_kept(&src));
        std::fs::write(&path, vec![b'y'; size]).unwrap();
        let (_, chunks) = read(&src).await;
        assert!(chunks.len() > 1);
        assert!(!is_kept(&src));
    }

    #[tokio::test]
    async fn a_file_between_inline_and_whole_is_kept_when_the_budget_has_room_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mid.geojson");
        let size = INLINE as usize + 1;
        std::fs::write(&path, vec![b'm'; size]).unwrap();

        let roomy = budget(KEPT_BYTES);
        let src = source(&path, roomy, Duration::ZERO);
        let (length, chunks) = read(&src).await;
        assert_eq!(
            (length, chunks.len()),
            (Some(size as u64), 1),
            "served whole"
        );
        assert_eq!(chunks[0], vec![b'm'; size]);
        assert!(is_kept(&src));
        assert_eq!(roomy.used.load(Ordering::Relaxed), size);
        std::fs::write(&path, vec![b'n'; size]).unwrap();
        assert_eq!(content(&src).await, vec![b'n'; size], "an edit is served");
        assert_eq!(
            roomy.used.load(Ordering::Relaxed),
            size,
            "the old one let go"
        );

        // With no room in the budget it streams, and nothing is held.
        let tight = budget(size - 1);
        let src = source(&path, tight, Duration::ZERO);
        let (_, chunks) = read(&src).await;
        assert!(chunks.len() > 1, "streamed in chunks");
        assert_eq!(chunks.concat(), vec![b'n'; size]);
        assert!(!is_kept(&src));
        assert_eq!(tight.used.load(Ordering::Relaxed), 0);
    }

    /// A file holding `body` in a fresh folder, read once so that its source keeps it.
    async fn kept_file(body: &[u8]) -> (tempfile::TempDir, PathBuf, &'static Budget, FileSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, body).unwrap();
        let budget = budget(1024);
        let src = source(&path, budget, Duration::ZERO);
        assert_eq!(content(&src).await, body);
        assert!(is_kept(&src));
        (dir, path, budget, src)
    }

    #[tokio::test]
    async fn a_deleted_file_is_a_file_error_and_is_let_go() {
        let (_dir, path, budget, src) = kept_file(b"[]").await;
        std::fs::remove_file(&path).unwrap();
        match src.open().await {
            Err(SourceError::File { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a deleted file was served"),
        }
        assert!(!is_kept(&src));
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_kept_file_replaced_by_something_unreadable_is_let_go() {
        let (_dir, path, budget, src) = kept_file(b"[1]").await;
        // Opens and stats like a file, but cannot be read.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(matches!(src.open().await, Err(SourceError::File { .. })));
        assert!(!is_kept(&src));
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_directory_is_a_file_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), budget(1 << 20), Duration::ZERO);
        assert!(matches!(src.open().await, Err(SourceError::File { .. })));
        assert!(!is_kept(&src));
    }

    #[tokio::test]
    async fn a_file_made_unreadable_is_no_longer_served() {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("skipped: root reads any file");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, "[]").unwrap();
        let src = source(&path, budget(1024), Duration::ZERO);
        assert_eq!(content(&src).await, b"[]");
        assert!(is_kept(&src));
        std::thread::sleep(Duration::from_millis(20));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        assert!(matches!(src.open().await, Err(SourceError::File { .. })));
    }
}
