//! An audit record as the database holds it, and its two readings: the JSON view the API
//! answers with (INTERFACE.md field names), and the entry the verifier re-hashes, which accepts
//! only the canonical form the writer produced.

use serde::Serialize;
use uuid::Uuid;

use super::record::{AuditEntry, Decision};

/// Every column, in the order `SELECT_COLUMNS` names them.
pub const SELECT_COLUMNS: &str = "transaction_id, chain_id, seq, time_us, party_id, product, \
    action, purpose, decision, reasons, policy_id, policy_version, status, method, path, \
    trace_id, span_id, prev_hash, hash";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredRecord {
    pub transaction_id: String,
    pub chain_id: String,
    pub seq: i64,
    pub time_us: i64,
    pub party_id: Option<String>,
    pub product: Option<String>,
    pub action: String,
    pub purpose: Option<String>,
    pub decision: String,
    pub reasons: String,
    pub policy_id: Option<String>,
    pub policy_version: Option<String>,
    pub status: i32,
    pub method: String,
    pub path: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The record as the API shows it.
#[derive(Debug, Serialize)]
pub struct RecordView<'a> {
    pub transaction_id: &'a str,
    pub time: String,
    pub party_id: Option<&'a str>,
    pub product: Option<&'a str>,
    pub action: &'a str,
    pub purpose: Option<&'a str>,
    pub decision: &'a str,
    pub reasons: serde_json::Value,
    pub policy_id: Option<&'a str>,
    pub policy_version: Option<&'a str>,
    pub status: i32,
    pub method: &'a str,
    pub path: &'a str,
    pub trace_id: Option<&'a str>,
    pub span_id: Option<&'a str>,
    pub chain: &'a str,
    pub seq: i64,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

/// The CSV export's columns, in order.
pub const CSV_HEADER: &str = "transaction_id,time,party_id,product,action,purpose,decision,\
    reasons,policy_id,policy_version,status,method,path,trace_id,span_id,chain,seq,prev_hash,hash\r\n";

/// Microseconds since the epoch as RFC 3339 with microseconds, UTC.
pub fn rfc3339(time_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(time_us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

impl StoredRecord {
    pub fn view(&self) -> RecordView<'_> {
        RecordView {
            transaction_id: &self.transaction_id,
            time: rfc3339(self.time_us),
            party_id: self.party_id.as_deref(),
            product: self.product.as_deref(),
            action: &self.action,
            purpose: self.purpose.as_deref(),
            decision: &self.decision,
            // Stored as a JSON array by the writer; anything else is shown as the text it is.
            reasons: serde_json::from_str(&self.reasons)
                .unwrap_or_else(|_| serde_json::Value::String(self.reasons.clone())),
            policy_id: self.policy_id.as_deref(),
            policy_version: self.policy_version.as_deref(),
            status: self.status,
            method: &self.method,
            path: &self.path,
            trace_id: self.trace_id.as_deref(),
            span_id: self.span_id.as_deref(),
            chain: &self.chain_id,
            seq: self.seq,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }

    /// One CSV line (RFC 4180, CRLF), appended to `out`.
    pub fn write_csv(&self, out: &mut String) {
        let seq = self.seq.to_string();
        let status = self.status.to_string();
        let time = rfc3339(self.time_us);
        let fields: [Option<&str>; 19] = [
            Some(&self.transaction_id),
            Some(&time),
            self.party_id.as_deref(),
            self.product.as_deref(),
            Some(&self.action),
            self.purpose.as_deref(),
            Some(&self.decision),
            Some(&self.reasons),
            self.policy_id.as_deref(),
            self.policy_version.as_deref(),
            Some(&status),
            Some(&self.method),
            Some(&self.path),
            self.trace_id.as_deref(),
            self.span_id.as_deref(),
            Some(&self.chain_id),
            Some(&seq),
            Some(&self.prev_hash),
            Some(&self.hash),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(f) = f {
                csv_cell(out, f);
            }
        }
        out.push_str("\r\n");
    }

    /// The entry as the writer hashed it, or what about the stored form is not canonical
    /// (a stored form the writer never produces is itself evidence of editing).
    pub fn entry(&self) -> Result<AuditEntry, String> {
        let transaction_id = Uuid::parse_str(&self.transaction_id)
            .ok()
            .filter(|u| u.hyphenated().to_string() == self.transaction_id)
            .ok_or("transaction_id is not a canonical UUID")?;
        let decision = match self.decision.as_str() {
            "permit" => Decision::Permit,
            "deny" => Decision::Deny,
            _ => return Err("decision is neither permit nor deny".into()),
        };
        let reasons: Vec<String> = serde_json::from_str(&self.reasons)
            .ok()
            .filter(|r: &Vec<String>| {
                serde_json::to_string(r).is_ok_and(|canonical| canonical == self.reasons)
            })
            .ok_or("reasons are not the canonical JSON array")?;
        let status = u16::try_from(self.status).map_err(|_| "status is out of range")?;
        Ok(AuditEntry {
            transaction_id,
            time_us: self.time_us,
            party_id: self.party_id.clone(),
            product: self.product.clone(),
            action: self.action.clone(),
            purpose: self.purpose.clone(),
            decision,
            reasons,
            policy_id: self.policy_id.clone(),
            policy_version: self.policy_version.clone(),
            status,
            method: self.method.clone(),
            path: self.path.clone(),
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
        })
    }
}

/// Quotes when needed; a cell that a spreadsheet would run as a formula (client-controlled text
/// such as a purpose header) is prefixed with `'` so that opening the export cannot execute it.
fn csv_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || value.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_cell(&mut out, "plain");
        out.push('|');
        csv_cell(&mut out, "a,\"b\"");
        out.push('|');
        csv_cell(&mut out, "=HYPERLINK(\"x\")");
        assert_eq!(out, "plain|\"a,\"\"b\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"");
    }
}
