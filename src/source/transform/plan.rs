//! What to do to each record, compiled once per request from the decision's obligations, and the
//! keyed pseudonym function.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::policy::Obligation;

/// Records (a JSON record or a CSV row) larger than this end the stream with an error: the
/// transform holds one record at a time, so this bounds its memory. A GeoJSON feature with a
/// detailed multipolygon runs to a few MB; 16 MiB leaves room without inviting abuse.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// Shorter keys would make pseudonyms guessable by anyone who tries likely values.
const MIN_KEY_BYTES: usize = 16;

/// Pseudonyms are HMAC-SHA256 truncated to this many bytes (128 bits: no collisions in practice).
const PSEUDONYM_BYTES: usize = 16;

/// An obligation or a body this connector cannot honour: the request must not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported: {0}")]
pub struct Unsupported(pub String);

/// Keep only records whose `property` has one of the `allowed` values (compared as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFilter {
    pub property: String,
    pub allowed: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldAction {
    Drop,
    Pseudonymise,
}

/// The transform for one response: fields to drop or pseudonymise and rows to keep.
#[derive(Clone)]
pub struct TransformPlan {
    fields: HashMap<String, FieldAction>,
    filters: Vec<RowFilter>,
    allowed: Vec<HashSet<String>>,
    key: Option<PseudonymKey>,
    max_record_bytes: usize,
}

impl std::fmt::Debug for TransformPlan {
    // Leaves the key out: plans end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformPlan")
            .field("fields", &self.fields)
            .field("filters", &self.filters)
            .field("max_record_bytes", &self.max_record_bytes)
            .finish_non_exhaustive()
    }
}

impl TransformPlan {
    /// The plan for `obligations`; `None` when none of them touches the data (attribution is
    /// fulfilled in headers). Any obligation that is neither is [`Unsupported`].
    ///
    /// `pseudonym_key` scopes pseudonyms: the same key yields the same pseudonyms, so choose it per
    /// connector and product (or per consumer, to keep consumers from joining their data on them).
    /// It must be at least 16 bytes when a field is to be pseudonymised.
    pub fn from_obligations(
        obligations: &[Obligation],
        pseudonym_key: &[u8],
    ) -> Result<Option<TransformPlan>, Unsupported> {
        let mut fields = HashMap::new();
        let mut filters = Vec::new();
        let mut pseudonymise = false;
        for o in obligations {
            match o {
                Obligation::DropFields { fields: names, .. } => {
                    for n in names.iter() {
                        // Dropping wins over pseudonymising: it reveals less.
                        fields.insert(n.clone(), FieldAction::Drop);
                    }
                }
                Obligation::PseudonymiseFields { fields: names, .. } => {
                    pseudonymise = true;
                    for n in names.iter() {
                        fields.entry(n.clone()).or_insert(FieldAction::Pseudonymise);
                    }
                }
                Obligation::FilterRows {
                    property, allowed, ..
                } => filters.push(RowFilter {
                    property: property.to_string(),
                    allowed: allowed.to_vec(),
                }),
                Obligation::Attribution { .. } => {}
                Obligation::Action { duty, action } => {
                    return Err(Unsupported(format!(
                        "duty {duty} ({action}) cannot be fulfilled on the data stream"
                    )));
                }
            }
        }
        if fields.is_empty() && filters.is_empty() {
            return Ok(None);
        }
        let key = if pseudonymise {
            if pseudonym_key.len() < MIN_KEY_BYTES {
                return Err(Unsupported(format!(
                    "pseudonymisation needs a key of at least {MIN_KEY_BYTES} bytes"
                )));
            }
            Some(PseudonymKey::new(pseudonym_key))
        } else {
            None
        };
        let allowed = filters
            .iter()
            .map(|f| f.allowed.iter().cloned().collect())
            .collect();
        Ok(Some(TransformPlan {
            fields,
            filters,
            allowed,
            key,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }))
    }

    /// Changes the largest record the transform accepts.
    pub fn with_max_record_bytes(mut self, limit: usize) -> Self {
        self.max_record_bytes = limit.max(1);
        self
    }

    pub fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    /// The row filters, for a source that can apply them itself (a database query).
    pub fn row_filters(&self) -> &[RowFilter] {
        &self.filters
    }

    /// This plan without its row filters, once a source has applied them; `None` if nothing is
    /// left to do.
    pub fn without_row_filters(mut self) -> Option<TransformPlan> {
        self.filters.clear();
        self.allowed.clear();
        (!self.fields.is_empty()).then_some(self)
    }

    pub(super) fn has_filters(&self) -> bool {
        !self.filters.is_empty()
    }

    pub(super) fn field_action(&self, name: &str) -> Option<FieldAction> {
        self.fields.get(name).copied()
    }

    pub(super) fn has_field_actions(&self) -> bool {
        !self.fields.is_empty()
    }

    /// The filters' property names, in order; `allows(i, value)` tests filter `i`.
    pub(super) fn filter_properties(&self) -> impl Iterator<Item = &str> {
        self.filters.iter().map(|f| f.property.as_str())
    }

    pub(super) fn allows(&self, filter: usize, value: &[u8]) -> bool {
        match (self.allowed.get(filter), std::str::from_utf8(value)) {
            (Some(set), Ok(v)) => set.contains(v),
            _ => false,
        }
    }

    /// The pseudonym of `value` as 32 hex digits. Only called for plans that pseudonymise, which
    /// always carry a key; an empty answer would be a bug, never a leak.
    pub(super) fn pseudonym(&self, value: &[u8]) -> String {
        self.key
            .as_ref()
            .map(|k| hex::encode(&k.mac(value)[..PSEUDONYM_BYTES]))
            .unwrap_or_default()
    }
}

/// HMAC-SHA256 (RFC 2104) with the padded key blocks hashed once, so each pseudonym costs two
/// SHA-256 runs over the value and the inner hash, not four.
#[derive(Clone)]
struct PseudonymKey {
    inner: Sha256,
    outer: Sha256,
}

impl PseudonymKey {
    const BLOCK: usize = 64;

    fn new(key: &[u8]) -> Self {
        let mut block = [0u8; Self::BLOCK];
        if key.len() > Self::BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut h = Sha256::new();
            h.update(block.map(|b| b ^ byte));
            h
        };
        Self {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(message);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 (short key) and 6 (key longer than a block).
        let mac = PseudonymKey::new(b"Jefe").mac(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mac = PseudonymKey::new(&[0xaa; 131])
            .mac(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
