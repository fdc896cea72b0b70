//! A large GeoJSON product (about 200 MB by default, 500,000 trees) goes through the transform in
//! 64 KiB chunks with memory bounded by one record, not by the body. The only test in this binary,
//! so that the process's peak RSS belongs to it. Set SLUIS_TRANSFORM_MEMORY_MB to change the size.

mod transform_support;

use bytes::BytesMut;
use sluis::source::transform::Transformer;
use transform_support::*;

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn count(haystack: &[u8], needle: &[u8]) -> u64 {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count() as u64
}

#[test]
fn a_large_collection_is_transformed_in_bounded_memory() {
    let mb: u64 = std::env::var("SLUIS_TRANSFORM_MEMORY_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let allowed = ["WK026802", "WK026807"];
    let restricted = plan(&[
        drop(&["STRAATNAAM", "WIJKNAAM"]),
        pseudonymise(&["ID"]),
        filter("WIJKCODE", &allowed),
    ]);
    // The output is checked by a second transform: a streaming JSON check of every record, and
    // nothing held either.
    let check = plan(&[drop(&["no such field"])]);
    let mut transform = Transformer::new(GEOJSON, restricted).unwrap();
    let mut verify = Transformer::new(GEOJSON, check).unwrap();

    let before = peak_rss_kib();
    let mut trees = Trees::new(mb * 1_000_000);
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut out, mut checked) = (BytesMut::new(), BytesMut::new());
    let (mut read, mut served, mut features, mut leaked) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let n = trees.read(&mut chunk);
        if n == 0 {
            break;
        }
        read += n as u64;
        transform.feed(&chunk[..n], &mut out).unwrap();
        // Output arrives in whole records, so counting per chunk is exact.
        features += count(&out, b"{\"type\":\"Feature\"");
        leaked += count(&out, b"STRAATNAAM");
        served += out.len() as u64;
        verify.feed(&out, &mut checked).unwrap();
        out.clear();
        checked.clear();
    }
    transform.finish(&mut out).unwrap();
    verify.feed(&out, &mut checked).unwrap();
    verify.finish(&mut checked).unwrap();
    let after = peak_rss_kib();

    let expected = (0..trees.features)
        .filter(|&i| allowed.contains(&WIJKEN[Trees::wijk(i)].0))
        .count() as u64;
    assert!(read >= mb * 1_000_000, "generated {read} bytes");
    assert_eq!(
        features, expected,
        "every tree of the allowed wijken, and no other"
    );
    assert_eq!(leaked, 0);
    let growth_mib = (after.saturating_sub(before)) / 1024;
    eprintln!(
        "{} trees, {read} bytes in, {served} bytes out; transform buffers peaked at {} bytes; \
         peak RSS {before} KiB before, {after} KiB after (+{growth_mib} MiB)",
        trees.features,
        transform.max_buffered()
    );
    // The transform's own buffers: a record or two, never the body.
    assert!(
        transform.max_buffered() < 64 * 1024,
        "{}",
        transform.max_buffered()
    );
    assert!(growth_mib < 50, "peak RSS grew by {growth_mib} MiB");
}
