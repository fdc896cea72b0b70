//! A product backed by a file next to the connector. Small files are read in one go on the worker
//! thread; large files stream in fixed-size chunks with backpressure.

use std::path::PathBuf;

use bytes::Bytes;
use tokio_util::io::ReaderStream;

use super::{SourceBody, SourceError, media_type_for_extension, parse_media_type};

/// Files up to this size are read whole; anything larger is streamed in chunks of this size.
const CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    media_type: String,
}

impl FileSource {
    pub fn new(path: PathBuf, media_type: Option<&str>) -> Result<Self, SourceError> {
        let media_type = match media_type {
            Some(m) => parse_media_type(m)
                .ok_or_else(|| SourceError::Config(format!("`{m}` is not a media type")))?,
            None => media_type_for_extension(&path).to_string(),
        };
        Ok(Self { path, media_type })
    }

    pub async fn open(&self) -> Result<SourceBody, SourceError> {
        // Read on the worker thread: for a page-cached file of at most one chunk, open + fstat +
        // read take microseconds, less than handing the work to the blocking pool and back.
        let opened = open_file(&self.path).map_err(|source| SourceError::File {
            path: self.path.display().to_string(),
            source,
        })?;
        Ok(match opened {
            Opened::Whole(bytes) => SourceBody {
                media_type: self.media_type.clone(),
                length: Some(bytes.len() as u64),
                stream: Box::pin(futures_util::stream::once(async move { Ok(bytes) })),
            },
            Opened::Large(file, len) => SourceBody {
                media_type: self.media_type.clone(),
                length: Some(len),
                stream: Box::pin(ReaderStream::with_capacity(
                    tokio::fs::File::from_std(file),
                    CHUNK,
                )),
            },
        })
    }
}

fn open_file(path: &std::path::Path) -> std::io::Result<Opened> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > CHUNK as u64 {
        return Ok(Opened::Large(file, len));
    }
    let mut buf = Vec::with_capacity(len as usize);
    file.read_to_end(&mut buf)?;
    Ok(Opened::Whole(Bytes::from(buf)))
}

enum Opened {
    Whole(Bytes),
    Large(std::fs::File, u64),
}
