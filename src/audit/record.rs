//! The audit record and its place in a hash chain. The hash covers a canonical, length-prefixed
//! encoding of every field plus the previous record's hash, so changing, removing, inserting or
//! reordering a record breaks the chain at that point.

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash that precedes the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Permit,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Deny => "deny",
        }
    }
}

/// What the request path knows about one request, before it joins a chain.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub transaction_id: Uuid,
    pub time_us: i64,
    pub party_id: Option<String>,
    pub product: Option<String>,
    pub action: String,
    pub purpose: Option<String>,
    pub decision: Decision,
    pub reasons: Vec<String>,
    pub policy_id: Option<String>,
    pub policy_version: Option<String>,
    pub status: u16,
    pub method: String,
    pub path: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

/// An entry placed in a chain: what is stored.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub chain: String,
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    pub fn chain(entry: AuditEntry, chain: &str, seq: i64, prev_hash: &str) -> Self {
        let hash = record_hash(&entry, chain, seq, prev_hash);
        Self {
            entry,
            chain: chain.to_string(),
            seq,
            prev_hash: prev_hash.to_string(),
            hash,
        }
    }

    pub fn reasons_json(&self) -> String {
        serde_json::to_string(&self.entry.reasons).unwrap_or_else(|_| "[]".into())
    }
}

/// SHA-256 over the canonical encoding: each field as a 4-byte big-endian length and its bytes
/// (absent fields as length 0xFFFFFFFF), in a fixed order, then the previous hash.
pub fn record_hash(e: &AuditEntry, chain: &str, seq: i64, prev_hash: &str) -> String {
    fn field(h: &mut Sha256, v: Option<&[u8]>) {
        match v {
            Some(b) => {
                h.update((b.len() as u32).to_be_bytes());
                h.update(b);
            }
            None => h.update(u32::MAX.to_be_bytes()),
        }
    }
    let mut h = Sha256::new();
    let mut txid = Uuid::encode_buffer();
    field(&mut h, Some(chain.as_bytes()));
    field(&mut h, Some(&seq.to_be_bytes()));
    field(
        &mut h,
        Some(
            e.transaction_id
                .hyphenated()
                .encode_lower(&mut txid)
                .as_bytes(),
        ),
    );
    field(&mut h, Some(&e.time_us.to_be_bytes()));
    field(&mut h, e.party_id.as_deref().map(str::as_bytes));
    field(&mut h, e.product.as_deref().map(str::as_bytes));
    field(&mut h, Some(e.action.as_bytes()));
    field(&mut h, e.purpose.as_deref().map(str::as_bytes));
    field(&mut h, Some(e.decision.as_str().as_bytes()));
    h.update((e.reasons.len() as u32).to_be_bytes());
    for r in &e.reasons {
        field(&mut h, Some(r.as_bytes()));
    }
    field(&mut h, e.policy_id.as_deref().map(str::as_bytes));
    field(&mut h, e.policy_version.as_deref().map(str::as_bytes));
    field(&mut h, Some(&e.status.to_be_bytes()));
    field(&mut h, Some(e.method.as_bytes()));
    field(&mut h, Some(e.path.as_bytes()));
    field(&mut h, e.trace_id.as_deref().map(str::as_bytes));
    field(&mut h, e.span_id.as_deref().map(str::as_bytes));
    field(&mut h, Some(prev_hash.as_bytes()));
    hex::encode(h.finalize())
}

/// A permitted anonymous read, for tests.
#[cfg(test)]
pub(crate) fn sample_entry() -> AuditEntry {
    AuditEntry {
        transaction_id: Uuid::nil(),
        time_us: 1,
        party_id: None,
        product: Some("stadsmuur".into()),
        action: "read".into(),
        purpose: None,
        decision: Decision::Permit,
        reasons: vec![],
        policy_id: None,
        policy_version: None,
        status: 200,
        method: "GET".into(),
        path: "/products/stadsmuur".into(),
        trace_id: None,
        span_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        sample_entry()
    }

    #[test]
    fn every_field_and_the_link_change_the_hash() {
        let base = record_hash(&entry(), "c", 1, GENESIS_HASH);
        let mut e = entry();
        e.status = 404;
        assert_ne!(base, record_hash(&e, "c", 1, GENESIS_HASH));
        let mut e = entry();
        e.party_id = Some(String::new());
        assert_ne!(
            base,
            record_hash(&e, "c", 1, GENESIS_HASH),
            "None differs from empty"
        );
        let mut e = entry();
        e.reasons = vec!["a".into()];
        assert_ne!(base, record_hash(&e, "c", 1, GENESIS_HASH));
        assert_ne!(base, record_hash(&entry(), "c", 2, GENESIS_HASH));
        assert_ne!(base, record_hash(&entry(), "c", 1, &"1".repeat(64)));
        assert_eq!(base, record_hash(&entry(), "c", 1, GENESIS_HASH));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = entry();
        a.method = "GE".into();
        a.path = "T/x".into();
        let mut b = entry();
        b.method = "GET".into();
        b.path = "/x".into();
        assert_ne!(
            record_hash(&a, "c", 1, GENESIS_HASH),
            record_hash(&b, "c", 1, GENESIS_HASH)
        );
    }
}
