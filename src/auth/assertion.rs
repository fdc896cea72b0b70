//! iSHARE client assertions (RFC 7523 `private_key_jwt` with an x5c chain): verification as the
//! token endpoint needs it, and signing for tests and developer tooling. Replay detection is
//! not done here: the caller records `(party_id, jti)` in its database (see [`VerifiedAssertion`]).

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use openssl::x509::X509;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::auth::jws::{self, JsonObject, SignatureFailure};
use crate::auth::trust::{ChainError, subject_text};
use crate::auth::{CLOCK_SKEW_SECS, CertThumbprint, PartyId, TrustStore};

/// The `client_assertion_type` form value that announces an iSHARE client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest assertion we look at. A PKIoverheid chain of four 4096-bit certificates, base64
/// encoded twice (x5c inside the base64url header), comes to about 14 KiB; 32 KiB leaves room
/// without letting a client make us parse megabytes.
pub const MAX_ASSERTION_LEN: usize = 32 * 1024;

/// iSHARE fixes the assertion lifetime (`exp - iat`) at 30 seconds.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 30;

const MAX_X5C_CERTS: usize = 6;
/// Bounded so that the caller's replay table has a bounded key.
const MAX_JTI_LEN: usize = 256;
const MIN_RSA_BITS: u32 = 2048;

/// x5c is plain base64 (RFC 7515 §4.1.6), but some clients drop the padding; both are fine.
const X5C_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A client assertion that passed every check except replay.
///
/// **The caller must still reject replays**: insert `(party_id, jti)` into a table with a
/// unique constraint and keep the row until [`VerifiedAssertion::replay_window_end`]; a
/// conflict means the assertion was used before and must be refused with
/// [`AssertionError::Replayed`]. Doing this in the shared database makes it hold across replicas.
#[derive(Debug, Clone)]
pub struct VerifiedAssertion {
    pub party_id: PartyId,
    pub jti: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// SHA-256 of the leaf certificate's DER, for the audit record and admin views.
    pub leaf_thumbprint: CertThumbprint,
    /// The leaf's subject as one line, for logs.
    pub leaf_subject: String,
}

impl VerifiedAssertion {
    /// After this instant the assertion is refused as expired anyway, so its jti may be forgotten.
    pub fn replay_window_end(&self) -> DateTime<Utc> {
        self.expires_at + TimeDelta::seconds(CLOCK_SKEW_SECS)
    }
}

/// Why a client assertion was refused. Messages are safe to send to the client: they name
/// the rule that failed, never key material or the assertion itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("client assertion is larger than {MAX_ASSERTION_LEN} bytes")]
    TooLarge,
    #[error("client assertion is malformed: {0}")]
    Malformed(&'static str),
    #[error("client_id is not a valid party id")]
    InvalidClientId,
    #[error("client assertion algorithm is not allowed; use RS256, RS384 or RS512")]
    AlgNotAllowed,
    #[error("client assertion header is invalid: {0}")]
    HeaderInvalid(&'static str),
    #[error("client assertion header has no x5c certificate chain")]
    MissingX5c,
    #[error("x5c certificate is invalid: {0}")]
    CertInvalid(&'static str),
    #[error("x5c certificate is outside its validity period: {0}")]
    CertOutsideValidity(String),
    #[error("x5c chain does not lead to a trusted root: {0}")]
    ChainUntrusted(String),
    #[error("client assertion signature does not verify with the x5c leaf certificate")]
    BadSignature,
    #[error("x5c leaf certificate does not belong to the client: {0}")]
    CertMismatch(&'static str),
    #[error("client assertion lacks the {0} claim")]
    MissingClaim(&'static str),
    #[error("client assertion claim {0} has an invalid value")]
    InvalidClaim(&'static str),
    #[error("client assertion iss is not the client_id")]
    WrongIssuer,
    #[error("client assertion sub is not the client_id")]
    WrongSubject,
    #[error("client assertion aud does not name this connector")]
    WrongAudience,
    #[error("client assertion lifetime (exp - iat) exceeds {MAX_ASSERTION_LIFETIME_SECS} seconds")]
    LifetimeTooLong,
    #[error("client assertion iat lies in the future")]
    IatInFuture,
    #[error("client assertion is not valid yet (nbf)")]
    NotYetValid,
    #[error("client assertion has expired")]
    Expired,
    #[error("client assertion jti has been used before")]
    Replayed,
    #[error("the certificate registered for this client cannot be read")]
    RegisteredCertInvalid,
    #[error("client assertion could not be checked")]
    Internal,
}

impl AssertionError {
    /// Stable machine-readable code for problem+json bodies and audit records.
    pub fn code(&self) -> &'static str {
        match self {
            AssertionError::TooLarge => "ASSERTION_TOO_LARGE",
            AssertionError::Malformed(_) => "ASSERTION_MALFORMED",
            AssertionError::InvalidClientId => "ASSERTION_INVALID_CLIENT_ID",
            AssertionError::AlgNotAllowed => "ASSERTION_ALG_NOT_ALLOWED",
            AssertionError::HeaderInvalid(_) => "ASSERTION_HEADER_INVALID",
            AssertionError::MissingX5c => "ASSERTION_X5C_MISSING",
            AssertionError::CertInvalid(_) => "ASSERTION_CERT_INVALID",
            AssertionError::CertOutsideValidity(_) => "ASSERTION_CERT_EXPIRED",
            AssertionError::ChainUntrusted(_) => "ASSERTION_CHAIN_UNTRUSTED",
            AssertionError::BadSignature => "ASSERTION_BAD_SIGNATURE",
            AssertionError::CertMismatch(_) => "ASSERTION_CERT_MISMATCH",
            AssertionError::MissingClaim(_) => "ASSERTION_MISSING_CLAIM",
            AssertionError::InvalidClaim(_) => "ASSERTION_INVALID_CLAIM",
            AssertionError::WrongIssuer => "ASSERTION_WRONG_ISSUER",
            AssertionError::WrongSubject => "ASSERTION_WRONG_SUBJECT",
            AssertionError::WrongAudience => "ASSERTION_WRONG_AUDIENCE",
            AssertionError::LifetimeTooLong => "ASSERTION_LIFETIME_TOO_LONG",
            AssertionError::IatInFuture => "ASSERTION_IAT_IN_FUTURE",
            AssertionError::NotYetValid => "ASSERTION_NOT_YET_VALID",
            AssertionError::Expired => "ASSERTION_EXPIRED",
            AssertionError::Replayed => "ASSERTION_REPLAYED",
            AssertionError::RegisteredCertInvalid => "ASSERTION_REGISTERED_CERT_INVALID",
            AssertionError::Internal => "ASSERTION_INTERNAL",
        }
    }

    /// The OAuth 2.0 `error` member (RFC 6749 §5.2). A request we cannot even parse is
    /// `invalid_request`; a well-formed assertion that fails a check is `invalid_client`,
    /// as RFC 7523 §3.2 prescribes for invalid client JWTs.
    pub fn oauth_error(&self) -> &'static str {
        match self {
            AssertionError::TooLarge
            | AssertionError::Malformed(_)
            | AssertionError::InvalidClientId => "invalid_request",
            _ => "invalid_client",
        }
    }

    /// True when the failure is ours (bad registered certificate, OpenSSL trouble), not the
    /// client's: answer 500 and log it as an error rather than a refused client.
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            AssertionError::RegisteredCertInvalid | AssertionError::Internal
        )
    }
}

/// Verifies an iSHARE client assertion presented by `client_id` to us (`our_party_id`).
///
/// `registered_cert_pem` is the certificate registered for the consumer, if any: then the x5c
/// leaf must be exactly that certificate. Without one, the leaf's subject `serialNumber` must
/// equal the client id (how iSHARE and PKIoverheid certificates carry the organisation id).
///
/// Order of checks: size, header, chain, signature, claims, identity; the first failure wins.
pub fn verify_client_assertion(
    assertion: &str,
    client_id: &str,
    our_party_id: &PartyId,
    trust: &TrustStore,
    registered_cert_pem: Option<&str>,
    now: DateTime<Utc>,
) -> Result<VerifiedAssertion, AssertionError> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return Err(AssertionError::TooLarge);
    }
    let client = PartyId::parse(client_id).map_err(|_| AssertionError::InvalidClientId)?;
    let header = jws::decode_header(assertion).ok_or(AssertionError::Malformed(
        "expected three base64url parts with a JSON object header",
    ))?;
    let alg = pinned_algorithm(&header)?;
    let chain = x5c_chain(&header)?;
    let (leaf, intermediates) = chain.split_first().ok_or(AssertionError::MissingX5c)?;

    match trust.verify_chain(leaf, intermediates, now) {
        // A chain of one means the leaf itself is an anchor: anchors are CAs, not clients.
        Ok(len) if len < 2 => {
            return Err(AssertionError::ChainUntrusted(
                "the leaf certificate is a trust anchor itself".into(),
            ));
        }
        Ok(_) => {}
        Err(ChainError::OutsideValidity(reason)) => {
            return Err(AssertionError::CertOutsideValidity(reason));
        }
        Err(ChainError::Untrusted(reason)) => return Err(AssertionError::ChainUntrusted(reason)),
        Err(ChainError::Internal) => return Err(AssertionError::Internal),
    }

    let key = leaf_decoding_key(leaf)?;
    let claims =
        jws::verify_signature(assertion, alg, &key).map_err(|e| match jws::classify(&e) {
            SignatureFailure::BadSignature => AssertionError::BadSignature,
            SignatureFailure::AlgorithmRejected => AssertionError::AlgNotAllowed,
            SignatureFailure::Malformed => {
                AssertionError::Malformed("signature or payload cannot be decoded")
            }
        })?;

    let checked = check_claims(&claims, &client, our_party_id, now)?;
    let leaf_der = leaf.to_der().map_err(|_| AssertionError::Internal)?;
    check_leaf_identity(leaf, &leaf_der, &client, registered_cert_pem)?;

    Ok(VerifiedAssertion {
        party_id: client,
        jti: checked.jti,
        issued_at: checked.issued_at,
        expires_at: checked.expires_at,
        leaf_thumbprint: CertThumbprint::of_der(&leaf_der),
        leaf_subject: subject_text(leaf),
    })
}

/// Reads `alg` ourselves so that `none`, HMAC and every non-RSA algorithm are refused
/// before any key is chosen: the key comes from the token, so the algorithm must not.
fn pinned_algorithm(header: &jws::UnverifiedHeader) -> Result<Algorithm, AssertionError> {
    let alg = match header.str_field("alg") {
        Some("RS256") => Algorithm::RS256,
        Some("RS384") => Algorithm::RS384,
        Some("RS512") => Algorithm::RS512,
        Some(_) => return Err(AssertionError::AlgNotAllowed),
        None => return Err(AssertionError::HeaderInvalid("alg is missing")),
    };
    if let Some(typ) = header.get("typ") {
        // typ is a media type, so compared case-insensitively (RFC 7515 §4.1.9).
        if !typ.as_str().is_some_and(|t| t.eq_ignore_ascii_case("JWT")) {
            return Err(AssertionError::HeaderInvalid("typ must be JWT"));
        }
    }
    // We implement no JWS extensions, so any critical one must make us refuse (RFC 7515 §4.1.11).
    if header.has("crit") {
        return Err(AssertionError::HeaderInvalid(
            "crit extensions are not supported",
        ));
    }
    Ok(alg)
}

fn x5c_chain(header: &jws::UnverifiedHeader) -> Result<Vec<X509>, AssertionError> {
    let entries = match header.get("x5c") {
        None | Some(Value::Null) => return Err(AssertionError::MissingX5c),
        Some(Value::Array(entries)) if entries.is_empty() => {
            return Err(AssertionError::MissingX5c);
        }
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(AssertionError::CertInvalid("x5c must be an array")),
    };
    if entries.len() > MAX_X5C_CERTS {
        return Err(AssertionError::CertInvalid(
            "x5c holds too many certificates",
        ));
    }
    entries
        .iter()
        .map(|entry| {
            let b64 = entry
                .as_str()
                .ok_or(AssertionError::CertInvalid("x5c entries must be strings"))?;
            let der = X5C_BASE64
                .decode(b64)
                .map_err(|_| AssertionError::CertInvalid("x5c entry is not base64"))?;
            X509::from_der(&der)
                .map_err(|_| AssertionError::CertInvalid("x5c entry is not a DER certificate"))
        })
        .collect()
}

fn leaf_decoding_key(leaf: &X509) -> Result<DecodingKey, AssertionError> {
    let rsa = leaf
        .public_key()
        .and_then(|key| key.rsa())
        .map_err(|_| AssertionError::CertInvalid("leaf certificate key is not RSA"))?;
    if rsa.n().num_bits() < MIN_RSA_BITS as i32 {
        return Err(AssertionError::CertInvalid(
            "leaf certificate RSA key is shorter than 2048 bits",
        ));
    }
    Ok(DecodingKey::from_rsa_raw_components(
        &rsa.n().to_vec(),
        &rsa.e().to_vec(),
    ))
}

struct CheckedClaims {
    jti: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

fn check_claims(
    claims: &JsonObject,
    client: &PartyId,
    our_party_id: &PartyId,
    now: DateTime<Utc>,
) -> Result<CheckedClaims, AssertionError> {
    // Presence and type of every claim first, so a badly built assertion is reported as such
    // before any rule about its values.
    let iss = string_claim(claims, "iss")?;
    let sub = string_claim(claims, "sub")?;
    let aud = claims
        .get("aud")
        .ok_or(AssertionError::MissingClaim("aud"))?;
    let jti = string_claim(claims, "jti")?;
    let iat = date_claim(claims, "iat")?.ok_or(AssertionError::MissingClaim("iat"))?;
    let exp = date_claim(claims, "exp")?.ok_or(AssertionError::MissingClaim("exp"))?;
    let nbf = date_claim(claims, "nbf")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(AssertionError::InvalidClaim("jti"));
    }

    if iss != client.as_str() {
        return Err(AssertionError::WrongIssuer);
    }
    if sub != client.as_str() {
        return Err(AssertionError::WrongSubject);
    }
    if !audience_contains(aud, our_party_id)? {
        return Err(AssertionError::WrongAudience);
    }

    if exp <= iat {
        return Err(AssertionError::InvalidClaim("exp"));
    }
    // Compared in whole milliseconds: a float sender computes exp as iat + 30.0, which can
    // land a fraction of a microsecond above 30 after rounding.
    if exp - iat > MAX_ASSERTION_LIFETIME_SECS * 1000 {
        return Err(AssertionError::LifetimeTooLong);
    }
    let now_ms = now.timestamp_millis();
    let skew_ms = CLOCK_SKEW_SECS * 1000;
    if iat > now_ms + skew_ms {
        return Err(AssertionError::IatInFuture);
    }
    if nbf.is_some_and(|nbf| nbf > now_ms + skew_ms) {
        return Err(AssertionError::NotYetValid);
    }
    if now_ms >= exp + skew_ms {
        return Err(AssertionError::Expired);
    }

    Ok(CheckedClaims {
        jti: jti.to_owned(),
        issued_at: jws::millis_to_datetime(iat).ok_or(AssertionError::InvalidClaim("iat"))?,
        expires_at: jws::millis_to_datetime(exp).ok_or(AssertionError::InvalidClaim("exp"))?,
    })
}

fn string_claim<'a>(claims: &'a JsonObject, name: &'static str) -> Result<&'a str, AssertionError> {
    match claims.get(name) {
        None | Some(Value::Null) => Err(AssertionError::MissingClaim(name)),
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(AssertionError::InvalidClaim(name)),
    }
}

fn date_claim(claims: &JsonObject, name: &'static str) -> Result<Option<i64>, AssertionError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => jws::numeric_date_millis(value)
            .map(Some)
            .ok_or(AssertionError::InvalidClaim(name)),
    }
}

/// `aud` may be one string or an array of strings (RFC 7519 §4.1.3); ours must be among them.
fn audience_contains(aud: &Value, ours: &PartyId) -> Result<bool, AssertionError> {
    match aud {
        Value::String(one) => Ok(one == ours.as_str()),
        Value::Array(many) => {
            let mut found = false;
            for item in many {
                let item = item.as_str().ok_or(AssertionError::InvalidClaim("aud"))?;
                found |= item == ours.as_str();
            }
            Ok(found)
        }
        _ => Err(AssertionError::InvalidClaim("aud")),
    }
}

/// Binds the chain to the client: a trusted chain alone proves only that *some* member of
/// the data space signed, not that it was the party named in `client_id`.
fn check_leaf_identity(
    leaf: &X509,
    leaf_der: &[u8],
    client: &PartyId,
    registered_cert_pem: Option<&str>,
) -> Result<(), AssertionError> {
    if let Some(pem) = registered_cert_pem {
        let registered = X509::from_pem(pem.as_bytes())
            .and_then(|cert| cert.to_der())
            .map_err(|_| AssertionError::RegisteredCertInvalid)?;
        return if bool::from(registered.as_slice().ct_eq(leaf_der)) {
            Ok(())
        } else {
            Err(AssertionError::CertMismatch(
                "the leaf is not the certificate registered for this client",
            ))
        };
    }
    let mut serial_numbers = leaf
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::SERIALNUMBER);
    let (Some(entry), None) = (serial_numbers.next(), serial_numbers.next()) else {
        return Err(AssertionError::CertMismatch(
            "the leaf subject must carry exactly one serialNumber",
        ));
    };
    // to_string keeps interior NUL bytes (unlike the old as_utf8), so "<client-id>\0..." in a
    // certificate cannot pass for the client id.
    let serial = entry
        .data()
        .to_string()
        .map_err(|_| AssertionError::CertMismatch("the leaf subject serialNumber is unreadable"))?;
    if serial == client.as_str() {
        Ok(())
    } else {
        Err(AssertionError::CertMismatch(
            "the leaf subject serialNumber is not the client_id",
        ))
    }
}

/// Why [`sign_client_assertion`] could not build an assertion. No key material in messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignAssertionError {
    #[error("the client key is not an RSA private key in PEM form")]
    InvalidKey,
    #[error("the certificate chain is not PEM X.509")]
    InvalidCertificate,
    #[error("the certificate chain is empty")]
    EmptyChain,
    #[error("signing the client assertion failed")]
    Signing,
}

/// Builds an iSHARE client assertion as a consumer would: RS256, `typ` JWT, `x5c` with the
/// given chain (leaf first; each PEM may hold several certificates), `iss` = `sub` =
/// `client_id`, `aud` = `audience`, a 30-second lifetime from `now` and a random `jti`.
pub fn sign_client_assertion(
    consumer_key_pem: &str,
    chain_pems: &[&str],
    client_id: &str,
    audience: &str,
    now: DateTime<Utc>,
) -> Result<String, SignAssertionError> {
    let key = EncodingKey::from_rsa_pem(consumer_key_pem.as_bytes())
        .map_err(|_| SignAssertionError::InvalidKey)?;
    let mut x5c = Vec::new();
    for pem in chain_pems {
        let certs = X509::stack_from_pem(pem.as_bytes())
            .map_err(|_| SignAssertionError::InvalidCertificate)?;
        for cert in certs {
            let der = cert
                .to_der()
                .map_err(|_| SignAssertionError::InvalidCertificate)?;
            x5c.push(STANDARD.encode(der));
        }
    }
    if x5c.is_empty() {
        return Err(SignAssertionError::EmptyChain);
    }
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.x5c = Some(x5c);
    let iat = now.timestamp();
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": iat,
        "exp": iat + MAX_ASSERTION_LIFETIME_SECS,
    });
    jsonwebtoken::encode(&header, &claims, &key).map_err(|_| SignAssertionError::Signing)
}
