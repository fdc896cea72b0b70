//! Throughput of the stream transform on a real WFS response (Nijmegen's WO2 war damage layer,
//! 682 KB, 1565 polygons), fed in 64 KiB chunks as the file source reads it, against relaying the
//! same chunks untouched.

use std::sync::Arc;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluis::policy::Obligation;
use sluis::source::transform::{TransformPlan, Transformer};

const CHUNK: usize = 64 * 1024;
const KEY: &[u8] = b"bench pseudonym key, 32 bytes..";

fn body() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/transform/wo2_oorlogsschade.geojson"
    );
    std::fs::read(path).expect("the WO2 fixture")
}

fn names(v: &[&str]) -> Arc<[String]> {
    v.iter().map(|s| s.to_string()).collect()
}

fn plan(obligations: &[Obligation]) -> TransformPlan {
    TransformPlan::from_obligations(obligations, KEY)
        .expect("supported")
        .expect("a plan")
}

fn transform(input: &[u8], plan: &TransformPlan, out: &mut BytesMut) -> usize {
    let mut t = Transformer::new("application/geo+json", plan.clone()).expect("GeoJSON");
    let mut total = 0;
    for chunk in input.chunks(CHUNK) {
        t.feed(chunk, out).expect("valid input");
        total += out.len();
        out.clear();
    }
    t.finish(out).expect("complete input");
    total + out.len()
}

fn bench(c: &mut Criterion) {
    let input = body();
    let drop_categorie = Obligation::DropFields {
        duty: "d".into(),
        fields: names(&["CATEGORIE"]),
    };
    let filter = Obligation::FilterRows {
        duty: "f".into(),
        property: "CATEGORIE".into(),
        allowed: names(&["Bombardement 22 feb"]),
    };
    let pseudonymise = Obligation::PseudonymiseFields {
        duty: "p".into(),
        fields: names(&["ID"]),
    };
    let plans = [
        (
            "drop+filter",
            plan(&[drop_categorie.clone(), filter.clone()]),
        ),
        ("filter", plan(&[filter])),
        ("drop", plan(&[drop_categorie])),
        ("pseudonymise", plan(&[pseudonymise])),
    ];

    let mut g = c.benchmark_group("transform/wo2_oorlogsschade");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("pass-through", |b| {
        let mut out = BytesMut::new();
        b.iter(|| {
            // What is done without obligations: each chunk handed on as it is.
            let mut total = 0;
            for chunk in input.chunks(CHUNK) {
                out.extend_from_slice(chunk);
                total += out.len();
                out.clear();
            }
            std::hint::black_box(total)
        })
    });
    for (name, p) in &plans {
        g.bench_function(*name, |b| {
            let mut out = BytesMut::new();
            b.iter(|| std::hint::black_box(transform(&input, p, &mut out)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
