//! Test PKI and JWS forging for the auth tests: real OpenSSL keys and certificates, and
//! hand-made tokens (independent of the code under test) so attacks can be tried for real.
// Shared by several test binaries; each uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Time, Asn1Type};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use serde_json::{Value, json};
use sluis::auth::{PartyId, TrustStore};

pub const OUR_ID: &str = "did:ishare:EU.NL.NTRNL-00000001";
pub const CLIENT_ID: &str = "EU.EORI.NL123456789";
pub const OTHER_PARTY: &str = "EU.EORI.NL999999999";

pub fn our_id() -> PartyId {
    PartyId::parse(OUR_ID).unwrap()
}

pub fn client_id() -> PartyId {
    PartyId::parse(CLIENT_ID).unwrap()
}

/// RSA key generation is the slow part; one set per test binary is plenty.
pub struct Keys {
    pub root: PKey<Private>,
    pub other_root: PKey<Private>,
    pub intermediate: PKey<Private>,
    pub leaf: PKey<Private>,
    pub other_leaf: PKey<Private>,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        root: rsa_key(2048),
        other_root: rsa_key(2048),
        intermediate: rsa_key(2048),
        leaf: rsa_key(2048),
        other_leaf: rsa_key(2048),
    })
}

pub fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

pub fn key_pem(key: &PKey<Private>) -> String {
    String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap()
}

pub fn cert_pem(cert: &X509) -> String {
    String::from_utf8(cert.to_pem().unwrap()).unwrap()
}

pub struct CertSpec<'a> {
    pub cn: &'a str,
    pub serial_number: Option<&'a str>,
    pub ca: bool,
    /// Validity relative to now, in days.
    pub from_days: i64,
    pub until_days: i64,
}

impl<'a> CertSpec<'a> {
    pub fn ca(cn: &'a str) -> Self {
        CertSpec {
            cn,
            serial_number: None,
            ca: true,
            from_days: -1,
            until_days: 365,
        }
    }

    pub fn leaf(cn: &'a str, party: &'a str) -> Self {
        CertSpec {
            cn,
            serial_number: Some(party),
            ca: false,
            from_days: -1,
            until_days: 365,
        }
    }
}

/// Issues a certificate for `key`; self-signed when `issuer` is `None`.
pub fn make_cert(
    spec: &CertSpec,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Test")
        .unwrap();
    if let Some(serial) = spec.serial_number {
        // Raw UTF8String, so tests can smuggle bytes (NUL) PrintableString would refuse.
        name.append_entry_by_nid_with_type(Nid::SERIALNUMBER, serial, Asn1Type::UTF8STRING)
            .unwrap();
    }
    name.append_entry_by_nid(Nid::COMMONNAME, spec.cn).unwrap();
    let name = name.build();

    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&*name, |(c, _)| c.subject_name()))
        .unwrap();
    b.set_pubkey(key).unwrap();
    let day = 86_400;
    let now = Utc::now().timestamp();
    b.set_not_before(&Asn1Time::from_unix(now + spec.from_days * day).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + spec.until_days * day).unwrap())
        .unwrap();
    if spec.ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        b.append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .unwrap();
    b.build()
}

pub fn write_trust_dir(dir: &Path, anchors: &[&X509]) -> TrustStore {
    std::fs::create_dir_all(dir).unwrap();
    for (i, anchor) in anchors.iter().enumerate() {
        std::fs::write(
            dir.join(format!("anchor-{i}.pem")),
            anchor.to_pem().unwrap(),
        )
        .unwrap();
    }
    TrustStore::load_dir(dir).unwrap()
}

/// A trusted root, a consumer leaf under it (serialNumber = CLIENT_ID) and the trust store.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub trust: TrustStore,
    pub root: X509,
    pub leaf: X509,
}

pub fn pki() -> Pki {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let root = make_cert(&CertSpec::ca("Test Root CA"), &k.root, None);
    let leaf = make_cert(
        &CertSpec::leaf("consumer", CLIENT_ID),
        &k.leaf,
        Some((&root, &k.root)),
    );
    let trust = write_trust_dir(&dir.path().join("trust"), &[&root]);
    Pki {
        dir,
        trust,
        root,
        leaf,
    }
}

pub fn x5c(chain: &[&X509]) -> Value {
    Value::Array(
        chain
            .iter()
            .map(|c| Value::String(STANDARD.encode(c.to_der().unwrap())))
            .collect(),
    )
}

pub fn rs256_header(chain: &[&X509]) -> Value {
    json!({"alg": "RS256", "typ": "JWT", "x5c": x5c(chain)})
}

/// Valid iSHARE claims from CLIENT_ID to OUR_ID, issued at `now`.
pub fn claims(now: DateTime<Utc>) -> Value {
    let iat = now.timestamp();
    json!({
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": OUR_ID,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": iat,
        "exp": iat + 30,
    })
}

pub enum Sig<'a> {
    Rsa(MessageDigest, &'a PKey<Private>),
    Hmac256(&'a [u8]),
    Empty,
}

pub fn b64url_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Builds a compact JWS by hand, whatever the header says.
pub fn jws(header: &Value, claims: &Value, sig: Sig) -> String {
    let input = format!("{}.{}", b64url_json(header), b64url_json(claims));
    let signature = match sig {
        Sig::Rsa(digest, key) => {
            let mut s = Signer::new(digest, key).unwrap();
            s.update(input.as_bytes()).unwrap();
            s.sign_to_vec().unwrap()
        }
        Sig::Hmac256(secret) => {
            let key = PKey::hmac(secret).unwrap();
            let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
            s.update(input.as_bytes()).unwrap();
            s.sign_to_vec().unwrap()
        }
        Sig::Empty => Vec::new(),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

pub fn rs256(header: &Value, claims: &Value, key: &PKey<Private>) -> String {
    jws(header, claims, Sig::Rsa(MessageDigest::sha256(), key))
}

/// Decodes the payload of a compact JWS (no checks): for tampering tests.
pub fn payload_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Replaces part `index` (0 header, 1 payload, 2 signature) of a compact JWS.
pub fn replace_part(token: &str, index: usize, new: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = new;
    parts.join(".")
}
