//! Trust anchors for x5c chains: the root CA certificates of the data space (iSHARE's trusted
//! list, a PKIoverheid root, or the development CA), loaded from a folder of PEM files, and
//! chain verification against them with OpenSSL.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use openssl::asn1::Asn1Time;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509StoreContext, X509VerifyResult};

/// Deepest chain we build (leaf, intermediates, root). Real iSHARE/PKIoverheid chains have
/// three or four certificates; the cap bounds work on hostile input.
const MAX_CHAIN_DEPTH: u32 = 6;

/// The configured trust anchors. Cheap to share behind an `Arc`; immutable once loaded.
pub struct TrustStore {
    anchors: Vec<X509>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    #[error("cannot read trust anchor folder {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read trust anchor file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("trust anchor file {path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("trust anchor file {path} is not valid PEM X.509: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error(
        "trust anchor file {path}: certificate {subject} is not self-signed; only root CAs can be trust anchors"
    )]
    NotSelfSigned { path: PathBuf, subject: String },
    #[error("trust anchor folder {path} holds no certificates")]
    Empty { path: PathBuf },
}

/// Why a chain did not verify, in words safe to return to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChainError {
    /// Some certificate in the chain is outside its validity period.
    OutsideValidity(String),
    /// Anything else: unknown root, non-CA intermediate, bad signature, ...
    Untrusted(String),
    /// OpenSSL could not even set up the check.
    Internal,
}

impl TrustStore {
    /// Loads every PEM certificate in `dir` (not recursive; hidden files are skipped so that
    /// editor and Kubernetes `..data` leftovers do not break start-up). Each anchor must be
    /// self-signed: we do not allow partial chains, so an intermediate as anchor would
    /// never match. An empty folder is an error because it would make every client fail.
    pub fn load_dir(dir: &Path) -> Result<TrustStore, TrustStoreError> {
        let entries = fs::read_dir(dir).map_err(|source| TrustStoreError::ReadDir {
            path: dir.to_owned(),
            source,
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| TrustStoreError::ReadDir {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden && path.is_file() {
                paths.push(path);
            }
        }
        // Sorted so that errors and logs are reproducible across file systems.
        paths.sort();

        let mut anchors = Vec::new();
        for path in paths {
            anchors.extend(load_file(&path)?);
        }
        if anchors.is_empty() {
            return Err(TrustStoreError::Empty {
                path: dir.to_owned(),
            });
        }
        warn_about_expired(&anchors);
        Ok(TrustStore { anchors })
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Verifies `leaf` plus `intermediates` (as presented, possibly including the root) up to
    /// one of our anchors, at time `now`. Returns the length of the verified chain.
    pub(crate) fn verify_chain(
        &self,
        leaf: &X509,
        intermediates: &[X509],
        now: DateTime<Utc>,
    ) -> Result<usize, ChainError> {
        let store = self.store_at(now).map_err(|_| ChainError::Internal)?;
        let mut untrusted = Stack::new().map_err(|_| ChainError::Internal)?;
        for cert in intermediates {
            untrusted
                .push(cert.clone())
                .map_err(|_| ChainError::Internal)?;
        }
        let mut ctx = X509StoreContext::new().map_err(|_| ChainError::Internal)?;
        let outcome = ctx
            .init(&store, leaf, &untrusted, |c| {
                let ok = c.verify_cert()?;
                let chain_len = c.chain().map(|chain| chain.len()).unwrap_or(0);
                Ok((ok, c.error(), chain_len))
            })
            .map_err(|_| ChainError::Internal)?;
        match outcome {
            (true, _, chain_len) => Ok(chain_len),
            (false, error, _) => Err(classify(error)),
        }
    }

    fn store_at(&self, now: DateTime<Utc>) -> Result<openssl::x509::store::X509Store, ()> {
        // A store per call: the verification time is a store parameter, and the caller's
        // `now` must win over the wall clock so that tests and replays are deterministic.
        let mut builder = X509StoreBuilder::new().map_err(|_| ())?;
        for anchor in &self.anchors {
            builder.add_cert(anchor.clone()).map_err(|_| ())?;
        }
        let mut param = X509VerifyParam::new().map_err(|_| ())?;
        // time_t is 32 bits on some targets; refuse rather than wrap there.
        #[allow(clippy::useless_conversion)]
        let when = now.timestamp().try_into().map_err(|_| ())?;
        param.set_time(when);
        param.set_depth(MAX_CHAIN_DEPTH as i32);
        builder.set_param(&param).map_err(|_| ())?;
        Ok(builder.build())
    }
}

fn load_file(path: &Path) -> Result<Vec<X509>, TrustStoreError> {
    let pem = fs::read(path).map_err(|source| TrustStoreError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(TrustStoreError::NoCertificate {
            path: path.to_owned(),
        });
    }
    let certs = X509::stack_from_pem(&pem).map_err(|e| TrustStoreError::BadPem {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    for cert in &certs {
        let self_signed = cert.issued(cert) == X509VerifyResult::OK
            && cert
                .public_key()
                .and_then(|key| cert.verify(&key))
                .unwrap_or(false);
        if !self_signed {
            return Err(TrustStoreError::NotSelfSigned {
                path: path.to_owned(),
                subject: subject_text(cert),
            });
        }
    }
    Ok(certs)
}

fn warn_about_expired(anchors: &[X509]) {
    let Ok(now) = Asn1Time::days_from_now(0) else {
        return;
    };
    for anchor in anchors {
        if anchor.not_after() < now {
            tracing::warn!(subject = %subject_text(anchor), "trust anchor has expired; chains to it will fail");
        }
    }
}

/// One-line subject for messages, e.g. `CN=Sluis development CA, O=Sluis`.
pub(crate) fn subject_text(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn classify(error: X509VerifyResult) -> ChainError {
    let text = error.error_string().to_owned();
    // Numeric codes from OpenSSL's x509_vfy.h; stable across 1.1 and 3.x.
    const CERT_NOT_YET_VALID: i32 = 9;
    const CERT_HAS_EXPIRED: i32 = 10;
    match error.as_raw() {
        CERT_NOT_YET_VALID | CERT_HAS_EXPIRED => ChainError::OutsideValidity(text),
        _ => ChainError::Untrusted(text),
    }
}
