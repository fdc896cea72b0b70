//! Small files are served from memory, checked against the file on every request: an edit, a
//! replacement or a deletion shows on the very next request. Large files still stream from disk.

use std::io::Write;
use std::time::Duration;

use crate::both_databases;
use crate::helpers::*;

both_databases!(
    an_edited_file_is_served_fresh,
    a_deleted_file_is_source_unavailable,
    a_file_above_the_limit_streams_from_disk,
);

/// The server keeps a file only once its inode has not changed for this long (see
/// `src/source/file.rs`); the tests wait it out so that the file is really served from memory.
const SETTLE: Duration = Duration::from_millis(2100);

/// Overwrites in place: same inode, same size.
fn rewrite(path: &std::path::Path, content: &[u8]) {
    let mut f = std::fs::File::options()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.write_all(content).unwrap();
}

async fn body_of(app: &TestApp, path: &str) -> (u16, Option<u64>, Vec<u8>) {
    let res = app.get(path).await;
    let status = res.status().as_u16();
    let length = res.content_length();
    (status, length, res.bytes().await.unwrap().to_vec())
}

async fn an_edited_file_is_served_fresh(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stand.json");
    std::fs::write(&path, r#"{"stand":1}"#).unwrap();
    let app = spawn_app_with(backend, |s, _| {
        s.products.push(file_product("stand", path.clone()));
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    for _ in 0..2 {
        let (status, length, body) = body_of(&app, "/products/stand").await;
        assert_eq!((status, length), (200, Some(11)));
        assert_eq!(body, br#"{"stand":1}"#);
    }
    // In place, same size: only the times (and nothing the server could guess) change.
    rewrite(&path, br#"{"stand":2}"#);
    let res = app.get("/products/stand").await;
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.text().await.unwrap(), r#"{"stand":2}"#);
    // Replaced by a rename, as deployment tools do.
    tokio::time::sleep(SETTLE).await;
    assert_eq!(body_of(&app, "/products/stand").await.2, br#"{"stand":2}"#);
    let tmp = dir.path().join("stand.tmp");
    std::fs::write(&tmp, r#"{"stand":3, "extra":true}"#).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let (status, length, body) = body_of(&app, "/products/stand").await;
    assert_eq!((status, length), (200, Some(25)));
    assert_eq!(body, br#"{"stand":3, "extra":true}"#);
    app.finish().await;
}

async fn a_deleted_file_is_source_unavailable(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weg.csv");
    std::fs::write(&path, "a\n1\n").unwrap();
    let app = spawn_app_with(backend, |s, _| {
        s.products.push(file_product("weg", path.clone()));
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(body_of(&app, "/products/weg").await.2, b"a\n1\n");
    assert_eq!(body_of(&app, "/products/weg").await.2, b"a\n1\n");
    std::fs::remove_file(&path).unwrap();
    let res = app.get("/products/weg").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let id = txid(&res);
    let p: serde_json::Value = res.json().await.unwrap();
    assert_eq!(p["code"], "SOURCE_UNAVAILABLE");
    let rec = audit_record(&app.db.url, &id).await;
    assert_eq!(
        rec.decision, "permit",
        "access was granted; the source failed"
    );
    assert_eq!(rec.reasons, r#"["SOURCE_UNAVAILABLE"]"#);
    // Back again: served again.
    std::fs::write(&path, "a\n2\n").unwrap();
    assert_eq!(body_of(&app, "/products/weg").await.2, b"a\n2\n");
    app.finish().await;
}

async fn a_file_above_the_limit_streams_from_disk(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groot.csv");
    // Above the 256 KiB that are kept in memory.
    let size = 300 * 1024;
    let content: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let app = spawn_app_with(backend, |s, _| {
        s.products.push(file_product("groot", path.clone()));
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    let (status, length, body) = body_of(&app, "/products/groot").await;
    assert_eq!((status, length), (200, Some(size as u64)));
    assert!(body == content, "every byte, in order");
    // Same size, other bytes: read from disk again.
    let other: Vec<u8> = content.iter().map(u8::to_ascii_uppercase).collect();
    rewrite(&path, &other);
    let (_, _, body) = body_of(&app, "/products/groot").await;
    assert!(body == other);
    app.finish().await;
}
