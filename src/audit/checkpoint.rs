//! Signed checkpoints: a statement "chain C reached seq N with hash H at time T" signed with the
//! connector's RSA key as a compact JWS (RS256). A hash chain alone shows that nothing in its
//! middle changed; the signatures add that nobody without the key rewrote it or cut its tail.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};

/// The JWS type of checkpoint statements, so that no other token signed with the same key (an
/// access token) can pass for a checkpoint and the other way round.
const JWS_TYPE: &str = "sluis-audit-checkpoint+jwt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    /// Seq 0: a writer holding the key opened this chain.
    Genesis,
    /// Written with the batch that crossed the record threshold.
    Batch,
    /// Written when records waited longer than the checkpoint interval.
    Interval,
    /// The chain was closed cleanly: no record may follow.
    Shutdown,
    /// Retention removed the chain up to and including seq; what remains continues from hash.
    Prune,
}

impl CheckpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Genesis => "genesis",
            Self::Batch => "batch",
            Self::Interval => "interval",
            Self::Shutdown => "shutdown",
            Self::Prune => "prune",
        }
    }
}

/// What a checkpoint vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointStatement {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
    pub time_us: i64,
    pub kind: CheckpointKind,
}

/// A signed statement, ready to store.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub statement: CheckpointStatement,
    pub jws: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckpointKeyError {
    #[error("{path}: {why}")]
    Unreadable { path: String, why: String },
    #[error("not an RSA key or certificate in PEM form")]
    NotRsaPem,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Why a stored checkpoint is not to be believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadCheckpoint {
    #[error("not a compact JWS")]
    Malformed,
    #[error("not a checkpoint statement (header)")]
    WrongType,
    #[error("signature does not verify with the connector key")]
    BadSignature,
}

fn header_b64() -> String {
    URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","typ":"{JWS_TYPE}"}}"#))
}

/// Signs checkpoints with the connector key (the key that signs access tokens).
#[derive(Clone)]
pub struct CheckpointSigner {
    key: PKey<Private>,
    header: String,
}

impl CheckpointSigner {
    pub fn from_pem(pem: &[u8]) -> Result<Self, CheckpointKeyError> {
        let key = PKey::private_key_from_pem(pem).map_err(|_| CheckpointKeyError::NotRsaPem)?;
        if key.rsa().is_err() {
            return Err(CheckpointKeyError::NotRsaPem);
        }
        Ok(Self {
            key,
            header: header_b64(),
        })
    }

    pub fn from_pem_file(path: &Path) -> Result<Self, CheckpointKeyError> {
        Self::from_pem(&read(path)?)
    }

    pub fn sign(&self, statement: CheckpointStatement) -> Result<Checkpoint, CheckpointKeyError> {
        let payload = serde_json::to_vec(&statement)
            .map_err(|e| CheckpointKeyError::Signing(e.to_string()))?;
        let input = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(payload));
        let signature = Signer::new(MessageDigest::sha256(), &self.key)
            .and_then(|mut s| s.sign_oneshot_to_vec(input.as_bytes()))
            .map_err(|e| CheckpointKeyError::Signing(e.to_string()))?;
        Ok(Checkpoint {
            statement,
            jws: format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)),
        })
    }

    /// The matching verifier, for tests and for checking a key pair.
    pub fn verifier(&self) -> Result<CheckpointVerifier, CheckpointKeyError> {
        let der = self
            .key
            .public_key_to_der()
            .map_err(|_| CheckpointKeyError::NotRsaPem)?;
        let key = PKey::public_key_from_der(&der).map_err(|_| CheckpointKeyError::NotRsaPem)?;
        Ok(CheckpointVerifier { key })
    }
}

/// Checks checkpoint signatures with the connector's public key.
pub struct CheckpointVerifier {
    key: PKey<Public>,
}

impl CheckpointVerifier {
    /// Accepts the connector's private key (its public half is used), a public key, or the
    /// connector certificate, all PEM.
    pub fn from_pem(pem: &[u8]) -> Result<Self, CheckpointKeyError> {
        if let Ok(private) = CheckpointSigner::from_pem(pem) {
            return private.verifier();
        }
        let key = PKey::public_key_from_pem(pem)
            .or_else(|_| X509::from_pem(pem).and_then(|c| c.public_key()))
            .map_err(|_| CheckpointKeyError::NotRsaPem)?;
        if key.rsa().is_err() {
            return Err(CheckpointKeyError::NotRsaPem);
        }
        Ok(Self { key })
    }

    pub fn from_pem_file(path: &Path) -> Result<Self, CheckpointKeyError> {
        Self::from_pem(&read(path)?)
    }

    pub fn verify(&self, jws: &str) -> Result<CheckpointStatement, BadCheckpoint> {
        let mut parts = jws.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BadCheckpoint::Malformed);
        };
        let header_json: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(BadCheckpoint::Malformed)?;
        // Pinned: only RS256 and only our statement type; never `none` or HMAC.
        if header_json.get("alg").and_then(|v| v.as_str()) != Some("RS256")
            || header_json.get("typ").and_then(|v| v.as_str()) != Some(JWS_TYPE)
        {
            return Err(BadCheckpoint::WrongType);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| BadCheckpoint::Malformed)?;
        let signed_len = header.len() + 1 + payload.len();
        let ok = Verifier::new(MessageDigest::sha256(), &self.key)
            .and_then(|mut v| v.verify_oneshot(&signature, &jws.as_bytes()[..signed_len]))
            .unwrap_or(false);
        if !ok {
            return Err(BadCheckpoint::BadSignature);
        }
        URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(BadCheckpoint::Malformed)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointKeyError> {
    std::fs::read(path).map_err(|e| CheckpointKeyError::Unreadable {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Rsa;

    fn key_pem() -> Vec<u8> {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        key.private_key_to_pem_pkcs8().unwrap()
    }

    fn statement() -> CheckpointStatement {
        CheckpointStatement {
            chain: "c".into(),
            seq: 7,
            hash: "ab".repeat(32),
            time_us: 1,
            kind: CheckpointKind::Batch,
        }
    }

    #[test]
    fn a_signed_statement_verifies_and_a_changed_one_does_not() {
        let pem = key_pem();
        let signer = CheckpointSigner::from_pem(&pem).unwrap();
        let verifier = CheckpointVerifier::from_pem(&pem).unwrap();
        let cp = signer.sign(statement()).unwrap();
        assert_eq!(verifier.verify(&cp.jws).unwrap(), statement());

        // Another payload under the same signature.
        let mut other = statement();
        other.seq = 8;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        let parts: Vec<&str> = cp.jws.split('.').collect();
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(verifier.verify(&forged), Err(BadCheckpoint::BadSignature));

        // Signed by another key.
        let stranger = CheckpointSigner::from_pem(&key_pem()).unwrap();
        let cp2 = stranger.sign(statement()).unwrap();
        assert_eq!(verifier.verify(&cp2.jws), Err(BadCheckpoint::BadSignature));
        assert_eq!(verifier.verify("a.b"), Err(BadCheckpoint::Malformed));
    }

    #[test]
    fn only_checkpoint_headers_are_accepted() {
        let pem = key_pem();
        let verifier = CheckpointVerifier::from_pem(&pem).unwrap();
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"sluis-audit-checkpoint+jwt"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&statement()).unwrap())
        );
        assert_eq!(verifier.verify(&none), Err(BadCheckpoint::WrongType));
    }
}
