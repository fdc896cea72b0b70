//! The transform as a stream: chunk boundaries anywhere (inside strings, escapes, UTF-8 sequences,
//! CRLF pairs) give the same output as one chunk, and a broken body never ends as a valid one.

mod transform_support;

use bytes::Bytes;
use futures_util::StreamExt;
use sluis::source::ByteStream;
use sluis::source::transform::{self, TransformError, TransformPlan};
use transform_support::*;

fn geo_plan() -> TransformPlan {
    plan(&[
        drop(&["HTML"]),
        pseudonymise(&["ID"]),
        filter("NUMMER", &["22", "23", "7", "15"]),
    ])
}

const UNICODE_JSON: &str = "{\"results\": [{\"naam\": \"Kr\u{f6}ller \u{2014} \u{1F333}\", \"esc\": \"a\\\"b\\\\c\\u00e9\", \"w\": \"WK1\"},\n\
    {\"naam\": \"\u{e9}\u{e9}n\", \"esc\": \"\\ud83c\\udf33\", \"w\": \"WK2\"},{\"naam\":\"x\",\"esc\":\"[{]}\",\"w\":\"WK1\"}], \"n\": [1, 2]}";

const CSV_BODY: &str = "ID,NAAM,WIJK\r\n1,\"Jansen, \"\"P\"\"\",WK1\r\n2,\"twee\r\nregels \u{1F333}\",WK2\n3,M\u{fc}ller,WK1\r\n";

#[test]
fn every_two_way_split_gives_the_same_output() {
    type Case = (&'static str, Vec<u8>, fn() -> TransformPlan);
    let cases: Vec<Case> = vec![
        (GEOJSON, fixture("stadsmuur.geojson"), geo_plan),
        (JSON, UNICODE_JSON.as_bytes().to_vec(), || {
            plan(&[pseudonymise(&["naam", "esc"]), filter("w", &["WK1"])])
        }),
        (CSV, CSV_BODY.as_bytes().to_vec(), || {
            plan(&[pseudonymise(&["NAAM"]), filter("WIJK", &["WK1"])])
        }),
    ];
    for (media, input, p) in cases {
        let whole = run_ok(media, p(), &input);
        assert!(!whole.is_empty());
        for cut in 0..=input.len() {
            match run_cut(media, p(), &input, &[cut]) {
                Ok(out) => assert_eq!(out, whole, "{media} cut at {cut}"),
                Err((e, _)) => panic!("{media} cut at {cut}: {e}"),
            }
        }
    }
}

#[test]
fn one_byte_chunks_give_the_same_output() {
    for (media, input, p) in [
        (
            JSON,
            UNICODE_JSON.as_bytes().to_vec(),
            plan(&[drop(&["esc"])]),
        ),
        (CSV, CSV_BODY.as_bytes().to_vec(), plan(&[drop(&["NAAM"])])),
        (GEOJSON, fixture("stadsmuur.geojson"), geo_plan()),
    ] {
        let whole = run_ok(media, p.clone(), &input);
        let every: Vec<usize> = (1..input.len()).collect();
        let bytewise = run_cut(media, p, &input, &every).map_err(|(e, _)| e.to_string());
        assert_eq!(bytewise, Ok(whole), "{media}");
    }
}

#[test]
fn random_many_way_splits_of_large_real_bodies_give_the_same_output() {
    let mut rng = Rng(0x5EED_2026);
    for (media, name, p) in [
        (
            GEOJSON,
            "wo2_oorlogsschade.geojson",
            plan(&[drop(&["ID"]), filter("CATEGORIE", &["Granatentijd 22 sep"])]),
        ),
        (
            JSON,
            "eindhoven_parkings.json",
            plan(&[pseudonymise(&["straat"]), drop(&["geo_shape"])]),
        ),
        (
            JSON,
            "arnhem_e6a_parking.json",
            plan(&[pseudonymise(&["ID"]), filter("WIJKCODE", &["WK020212"])]),
        ),
        (
            CSV,
            "arnhem_e6a_parking.csv",
            plan(&[pseudonymise(&["ID"]), filter("WIJKCODE", &["WK020212"])]),
        ),
    ] {
        let input = fixture(name);
        let whole = run_ok(media, p.clone(), &input);
        for round in 0..12 {
            let count = 1 + rng.below(400);
            let cuts = rng.cuts(input.len(), count);
            match run_cut(media, p.clone(), &input, &cuts) {
                Ok(out) => assert!(out == whole, "{name} round {round} differs, cuts {cuts:?}"),
                Err((e, _)) => panic!("{name} round {round}: {e}, cuts {cuts:?}"),
            }
        }
    }
}

#[test]
fn a_truncated_json_body_always_fails() {
    let input = fixture("stadsmuur.geojson");
    let end = input
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .unwrap()
        + 1;
    for len in 0..end {
        let r = run_cut(GEOJSON, geo_plan(), &input[..len], &[len / 2]);
        assert!(
            r.is_err(),
            "a body cut at {len} of {end} bytes was served as complete"
        );
    }
    let r = run_cut(JSON, plan(&[drop(&["x"])]), UNICODE_JSON.as_bytes(), &[]);
    assert!(r.is_ok());
}

#[test]
fn a_csv_body_cut_inside_a_quoted_field_fails() {
    let cut = CSV_BODY.find("regels").unwrap();
    let r = run(CSV, plan(&[drop(&["NAAM"])]), &CSV_BODY.as_bytes()[..cut]);
    assert!(matches!(r, Err(TransformError::Malformed { .. })), "{r:?}");
}

#[test]
fn malformed_records_fail_wherever_they_are() {
    let input = fixture("stadsmuur.geojson");
    let text = String::from_utf8(input).unwrap();
    for (what, broken) in [
        (
            "a missing comma",
            text.replacen("\"NUMMER\": \"23\"}", "\"NUMMER\": \"23\" \"X\": 1}", 1),
        ),
        ("a bare word", text.replacen("\"Point\"", "Point", 1)),
        (
            "a stray bracket",
            text.replacen(
                "}}, {\"type\": \"Feature\"",
                "}}]], {\"type\": \"Feature\"",
                1,
            ),
        ),
        ("data after the end", format!("{text} {{}}")),
        (
            "a control character in a string",
            text.replacen("24.htm", "24\u{1}.htm", 1),
        ),
        (
            "invalid UTF-8",
            text.replacen("24.htm", "24\u{fffd}.htm", 1),
        ),
    ] {
        let mut bytes = broken.into_bytes();
        if what == "invalid UTF-8" {
            let at = bytes
                .windows(3)
                .position(|w| w == "\u{fffd}".as_bytes())
                .unwrap();
            bytes[at..at + 3].copy_from_slice(&[0xC3, 0x28, 0x28]);
        }
        assert_ne!(
            bytes,
            fixture("stadsmuur.geojson"),
            "{what}: the test did not break the body"
        );
        let r = run_cut(
            GEOJSON,
            plan(&[drop(&["HTML"])]),
            &bytes,
            &[bytes.len() / 3],
        );
        assert!(
            matches!(r, Err((TransformError::Malformed { .. }, _))),
            "{what}: {:?}",
            r.map(|_| ())
        );
    }
}

#[test]
fn a_record_larger_than_the_limit_fails() {
    let input = fixture("wo2_oorlogsschade.geojson");
    let small = plan(&[drop(&["ID"])]).with_max_record_bytes(2_000);
    let r = run_cut(GEOJSON, small, &input, &[100_000, 200_000]);
    match r {
        Err((TransformError::RecordTooLarge { limit, .. }, sent)) => {
            assert_eq!(limit, 2_000);
            // What was sent is a prefix of the collection, never closed into a valid document.
            assert!(serde_json::from_slice::<serde_json::Value>(&sent).is_err());
        }
        other => panic!("expected RecordTooLarge, got {:?}", other.map(|_| ())),
    }
    let r = run(
        CSV,
        plan(&[drop(&["a"])]).with_max_record_bytes(10),
        b"a,b\n1,\"0123456789\"\n",
    );
    assert!(matches!(r, Err(TransformError::RecordTooLarge { .. })));
}

fn stream_of(chunks: Vec<Result<Bytes, std::io::Error>>) -> ByteStream {
    Box::pin(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn the_stream_yields_transformed_chunks_and_ends_with_an_error_on_bad_input() {
    let input = fixture("stadsmuur.geojson");
    let (a, b) = input.split_at(3000);
    let chunks = vec![Ok(Bytes::copy_from_slice(a)), Ok(Bytes::copy_from_slice(b))];
    let mut s = transform::apply(GEOJSON, stream_of(chunks), geo_plan()).unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        assert!(!chunk.is_empty(), "no empty chunks are sent");
        out.extend_from_slice(&chunk);
    }
    assert_eq!(out, run_ok(GEOJSON, geo_plan(), &input));

    let chunks = vec![
        Ok(Bytes::copy_from_slice(a)),
        // A NUL byte is invalid inside a string and outside one alike.
        Ok(Bytes::from_static(b"\x00 not json \x00")),
        Ok(Bytes::copy_from_slice(b)),
    ];
    let mut s = transform::apply(GEOJSON, stream_of(chunks), geo_plan()).unwrap();
    let mut error = None;
    while let Some(chunk) = s.next().await {
        if let Err(e) = chunk {
            error = Some(e);
        }
    }
    let error = error.expect("the stream reports the bad input");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.get_ref().is_some_and(|e| e.is::<TransformError>()));

    // An upstream failure passes through and ends the stream.
    let chunks = vec![
        Ok(Bytes::copy_from_slice(a)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "upstream reset",
        )),
        Ok(Bytes::copy_from_slice(b)),
    ];
    let items: Vec<_> = transform::apply(GEOJSON, stream_of(chunks), geo_plan())
        .unwrap()
        .collect()
        .await;
    let last = items.last().unwrap();
    assert_eq!(
        last.as_ref().unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );

    // A body that ends early ends in an error too.
    let chunks = vec![Ok(Bytes::copy_from_slice(a))];
    let items: Vec<_> = transform::apply(GEOJSON, stream_of(chunks), geo_plan())
        .unwrap()
        .collect()
        .await;
    assert!(items.last().unwrap().is_err());
}
