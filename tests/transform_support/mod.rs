//! Shared by the stream-transform test binaries: fixtures, obligations, and running a body through
//! the transform in chosen chunks.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::BytesMut;
use sha2::{Digest, Sha256};
use sluis::policy::Obligation;
use sluis::source::transform::{TransformError, TransformPlan, Transformer};

pub const KEY: &[u8] = b"sluis test pseudonym key 0001";
pub const OTHER_KEY: &[u8] = b"sluis test pseudonym key 0002";

pub const GEOJSON: &str = "application/geo+json";
pub const JSON: &str = "application/json";
pub const CSV: &str = "text/csv; charset=utf-8";

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/transform/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn names(fields: &[&str]) -> Arc<[String]> {
    fields.iter().map(|f| f.to_string()).collect()
}

pub fn drop(fields: &[&str]) -> Obligation {
    Obligation::DropFields {
        duty: "urn:test:drop".into(),
        fields: names(fields),
    }
}

pub fn pseudonymise(fields: &[&str]) -> Obligation {
    Obligation::PseudonymiseFields {
        duty: "urn:test:pseudonymise".into(),
        fields: names(fields),
    }
}

pub fn filter(property: &str, allowed: &[&str]) -> Obligation {
    Obligation::FilterRows {
        duty: "urn:test:filter".into(),
        property: property.into(),
        allowed: names(allowed),
    }
}

pub fn plan(obligations: &[Obligation]) -> TransformPlan {
    plan_with_key(obligations, KEY)
}

pub fn plan_with_key(obligations: &[Obligation], key: &[u8]) -> TransformPlan {
    TransformPlan::from_obligations(obligations, key)
        .expect("supported obligations")
        .expect("a plan")
}

/// Runs `input` through the transform, cut at `cuts` (ascending byte positions).
pub fn run_cut(
    media_type: &str,
    plan: TransformPlan,
    input: &[u8],
    cuts: &[usize],
) -> Result<Vec<u8>, (TransformError, Vec<u8>)> {
    let mut t = Transformer::new(media_type, plan).map_err(|e| (e, Vec::new()))?;
    let mut out = BytesMut::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        if let Err(e) = t.feed(&input[start..cut], &mut out) {
            return Err((e, out.to_vec()));
        }
        start = cut;
    }
    match t.finish(&mut out) {
        Ok(()) => Ok(out.to_vec()),
        Err(e) => Err((e, out.to_vec())),
    }
}

pub fn run(media_type: &str, plan: TransformPlan, input: &[u8]) -> Result<Vec<u8>, TransformError> {
    run_cut(media_type, plan, input, &[]).map_err(|(e, _)| e)
}

pub fn run_ok(media_type: &str, plan: TransformPlan, input: &[u8]) -> Vec<u8> {
    match run(media_type, plan, input) {
        Ok(out) => out,
        Err(e) => panic!("transform failed: {e}"),
    }
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        let text = String::from_utf8_lossy(bytes);
        panic!(
            "output is not JSON ({e}): {}",
            text.chars().take(600).collect::<String>()
        )
    })
}

/// The expected pseudonym, computed here from RFC 2104 independently of the crate's code.
pub fn pseudonym(key: &[u8], value: &str) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(value.as_bytes())
        .finalize();
    let outer = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize();
    hex::encode(&outer[..16])
}

/// A small deterministic generator (xorshift64*) for cut positions: reproducible failures.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `count` ascending cut positions in `0..=len`.
    pub fn cuts(&mut self, len: usize, count: usize) -> Vec<usize> {
        let mut c: Vec<usize> = (0..count).map(|_| self.below(len + 1)).collect();
        c.sort_unstable();
        c
    }
}

/// A GeoJSON FeatureCollection of trees shaped like Nijmegen's tree register (WFS layer
/// `extern_BOR_Groen:GRN_BOMEN`), generated on the fly and read in fixed-size chunks that cut
/// records, strings and UTF-8 sequences wherever they fall. Never held whole in memory.
pub struct Trees {
    next: u64,
    /// Stop starting features once this many bytes were produced.
    target: u64,
    produced: u64,
    pending: Vec<u8>,
    at: usize,
    closed: bool,
    pub features: u64,
}

pub const WIJKEN: [(&str, &str); 9] = [
    ("WK026801", "Nijmegen-Centrum"),
    ("WK026802", "Nijmegen-Oost"),
    ("WK026803", "Nijmegen-Oud-West"),
    ("WK026804", "Nijmegen-Nieuw-West"),
    ("WK026805", "Nijmegen-Midden"),
    ("WK026806", "Nijmegen-Zuid"),
    ("WK026807", "Dukenburg"),
    ("WK026808", "Lindenholt"),
    ("WK026809", "Nijmegen-Noord"),
];

const SOORTEN: [&str; 6] = [
    "Quercus robur",
    "Tilia \u{d7} europaea",
    "Platanus \u{d7} hispanica",
    "Acer pseudoplatanus",
    "Fagus sylvatica 'Atropunicea'",
    "Betula pendula",
];

const STRATEN: [&str; 6] = [
    "Groesbeekseweg",
    "Sint Annastraat",
    "Kr\u{f6}llerlaan",
    "Berg en Dalseweg",
    "\u{2019}s-Gravensweg",
    "Daalseweg",
];

impl Trees {
    pub fn new(target_bytes: u64) -> Self {
        let mut pending = Vec::new();
        pending.extend_from_slice(br#"{"type":"FeatureCollection","features":["#);
        Self {
            next: 0,
            target: target_bytes,
            produced: 0,
            pending,
            at: 0,
            closed: false,
            features: 0,
        }
    }

    /// The wijk of tree `i`: tests count the trees of a wijk without keeping them.
    pub fn wijk(i: u64) -> usize {
        (i % 9) as usize
    }

    fn push_feature(&mut self) {
        use std::io::Write;
        let i = self.next;
        self.next += 1;
        let (code, naam) = WIJKEN[Self::wijk(i)];
        let lon = 5.80 + (i % 1000) as f64 * 0.00021;
        let lat = 51.79 + (i / 1000 % 1000) as f64 * 0.00013;
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            self.pending,
            "{sep}{{\"type\":\"Feature\",\"id\":\"GRN_BOMEN.{i}\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{lon:.8},{lat:.8}]}},\
             \"geometry_name\":\"GEOMETRIE\",\"properties\":{{\"ID\":{i},\"BOOMSOORT\":\"{}\",\"PLANTJAAR\":{},\
             \"WIJKNAAM\":\"{naam}\",\"WIJKCODE\":\"{code}\",\"STRAATNAAM\":\"{}\",\"KROONDIAMETER\":\"{}-{} m\",\
             \"HOOGTE_EXACT\":{}.{},\"STAMDIAMETER\":{},\"DATUM_BIJGEWERKT\":\"2024-0{}-1{}T08:30:00Z\"}}}}",
            SOORTEN[(i % 6) as usize],
            1900 + i % 124,
            STRATEN[(i / 7 % 6) as usize],
            i % 9,
            i % 9 + 3,
            3 + i % 25,
            i % 10,
            10 + i % 90,
            1 + i % 9,
            i % 10,
        );
        self.features += 1;
    }

    /// Fills `buf` completely (except at the end); returns how many bytes were written.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            if self.at == self.pending.len() {
                self.pending.clear();
                self.at = 0;
                if self.produced < self.target {
                    self.push_feature();
                } else if !self.closed {
                    self.closed = true;
                    self.pending.extend_from_slice(b"],\"numberMatched\":0}");
                } else {
                    break;
                }
            }
            let take = (buf.len() - n).min(self.pending.len() - self.at);
            buf[n..n + take].copy_from_slice(&self.pending[self.at..self.at + take]);
            self.at += take;
            n += take;
            self.produced += take as u64;
        }
        n
    }
}
