//! Compact-JWS plumbing shared by client assertions and access tokens. We read the header
//! ourselves (so the algorithm is pinned before any library sees the token) and let
//! jsonwebtoken do only the signature; claims are checked by the callers against their `now`.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

pub(crate) type JsonObject = Map<String, Value>;

/// Latest NumericDate we accept (year 5138): keeps millisecond arithmetic far from overflow.
const MAX_NUMERIC_DATE: f64 = 1e11;

/// The header of a compact JWS, decoded but not yet trusted.
pub(crate) struct UnverifiedHeader(pub(crate) JsonObject);

/// Splits `token` into exactly three base64url parts and decodes the header as a JSON
/// object. `None` means "not a compact JWS"; the caller picks the error.
pub(crate) fn decode_header(token: &str) -> Option<UnverifiedHeader> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    decode_object(header).map(UnverifiedHeader)
}

fn decode_object(part: &str) -> Option<JsonObject> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

impl UnverifiedHeader {
    pub(crate) fn str_field(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

/// Checks the signature with exactly one algorithm and returns the payload as a JSON object.
/// jsonwebtoken's own claim checks are switched off: they read the wall clock and do not
/// know iSHARE's rules, so each caller validates the claims it needs.
pub(crate) fn verify_signature(
    token: &str,
    alg: Algorithm,
    key: &DecodingKey,
) -> Result<JsonObject, JwtError> {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    jsonwebtoken::decode::<JsonObject>(token, key, &validation).map(|data| data.claims)
}

/// What went wrong in [`verify_signature`], reduced to what callers distinguish.
pub(crate) enum SignatureFailure {
    BadSignature,
    AlgorithmRejected,
    Malformed,
}

pub(crate) fn classify(error: &JwtError) -> SignatureFailure {
    match error.kind() {
        ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) => SignatureFailure::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            SignatureFailure::AlgorithmRejected
        }
        _ => SignatureFailure::Malformed,
    }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, integer or not. Returned in
/// milliseconds so that float senders (python-ishare) and integer senders compare alike.
pub(crate) fn numeric_date_millis(value: &Value) -> Option<i64> {
    let seconds = value.as_f64()?;
    if !seconds.is_finite() || !(0.0..MAX_NUMERIC_DATE).contains(&seconds) {
        return None;
    }
    // The range check above keeps this conversion exact enough and free of overflow.
    Some((seconds * 1000.0).round() as i64)
}

pub(crate) fn millis_to_datetime(millis: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
}
