//! Streaming: a large file is relayed chunk by chunk, so the server's memory stays bounded
//! whatever the product's size. Measured on the real binary through /proc.

use futures_util::StreamExt;

use crate::both_databases;
use crate::helpers::*;

both_databases!(large_file_streams_in_bounded_memory);

const SIZE: u64 = 1 << 30; // 1 GiB; bench/run measures 2 GB

async fn large_file_streams_in_bounded_memory(backend: Backend) {
    let db = TestDb::new(backend).await;
    let big = db.dir().join("big.geojson");
    // Sparse: no disk used, but every byte is still read and sent.
    std::fs::File::create(&big).unwrap().set_len(SIZE).unwrap();
    let process = spawn_process(
        &db,
        &format!(
            "[[products]]\nid = \"groot\"\naccess = \"open\"\nsource = {{ kind = \"file\", path = \"{}\" }}\n",
            big.display()
        ),
    )
    .await;
    let res = reqwest::get(format!("{}/products/groot", process.public))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.content_length(), Some(SIZE));
    let mut stream = res.bytes_stream();
    let (mut received, mut peak_kib, mut chunks) = (0u64, 0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        received += chunk.unwrap().len() as u64;
        chunks += 1;
        if chunks % 256 == 0 {
            peak_kib = peak_kib.max(process.rss_kib());
        }
    }
    assert_eq!(received, SIZE, "every byte arrives");
    assert!(peak_kib > 0, "RSS was sampled");
    assert!(
        peak_kib < 64 * 1024,
        "RSS peaked at {peak_kib} KiB while streaming 1 GiB"
    );
    process.signal(libc::SIGTERM);
    let (code, _) = process.wait();
    assert_eq!(code, Some(0));
    db.drop_db().await;
}
