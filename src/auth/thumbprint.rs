//! SHA-256 thumbprint of a DER certificate: the value RFC 8705 binds access tokens to
//! (`cnf.x5t#S256`) and the fingerprint we log for client certificates.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertThumbprint([u8; 32]);

impl CertThumbprint {
    /// Thumbprint of a certificate in DER form (the bytes a TLS stack hands out).
    pub fn of_der(der: &[u8]) -> CertThumbprint {
        CertThumbprint(Sha256::digest(der).into())
    }

    /// Parses the `x5t#S256` form (base64url without padding, RFC 8705 §3.1).
    pub fn from_base64url(value: &str) -> Option<CertThumbprint> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .ok()
            .map(CertThumbprint)
    }

    /// The `x5t#S256` form.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Lower-case hex, the usual form for fingerprints in logs and admin views.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison: binding checks run on attacker-chosen certificates and must
    /// not reveal how many leading bytes matched.
    pub fn matches(&self, other: &CertThumbprint) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for CertThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertThumbprint({})", self.to_hex())
    }
}

impl fmt::Display for CertThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
