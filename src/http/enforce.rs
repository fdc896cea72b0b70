//! The policy enforcement point on the data path: builds the AuthZEN-shaped request from the
//! consumer, the product and the request context, asks the product's compiled policy, and turns
//! the decision into reasons for the audit record and obligations for the response.

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName};

use crate::consumer::Consumer;
use crate::error::ApiError;
use crate::policy::{
    CompiledPolicy, Context, Decision, Entity, Obligation, Request, RequestTime, XsdDuration,
};
use crate::source::transform::TransformPlan;

/// The request header in which a consumer declares the purpose of its request. A `HeaderName`,
/// not a string: looking a header up by a string builds (and, for a name HTTP does not define,
/// allocates) the name on every request.
pub const PURPOSE_HEADER: HeaderName = HeaderName::from_static("sluis-purpose");

/// The response header that carries a policy's attribution text.
pub const ATTRIBUTION_HEADER: HeaderName = HeaderName::from_static("sluis-attribution");

/// The IRI by which policies name a product (`target`).
pub fn product_iri(id: &str) -> String {
    format!("urn:sluis:product:{id}")
}

/// The purpose IRI declared in `Sluis-Purpose`, if any (and if it is readable).
pub fn declared_purpose(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(&PURPOSE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// Evaluates `policy` for `consumer` reading `target` (a product's [`product_iri`]) at `now`,
/// with the consumer's earlier uses per counting window.
pub fn decide(
    policy: &CompiledPolicy,
    consumer: &Consumer,
    target: &str,
    purpose: Option<&str>,
    counts: &[(&str, u64)],
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Decision {
    let request = Request {
        subject: Entity {
            id: consumer.party_id.as_str(),
            part_of: consumer.groups.iter().map(String::as_str).collect(),
            properties: consumer
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
                .collect(),
        },
        action: "read",
        resource: Entity {
            id: target,
            part_of: Vec::new(),
            properties: Vec::new(),
        },
        context: Context {
            time: Some(RequestTime::from_datetime(&now)),
            purpose,
            counts: counts.to_vec(),
            ..Default::default()
        },
    };
    policy.evaluate(&request)
}

/// The start of the counting window that contains `now`: fixed windows of the period's length
/// aligned to the Unix epoch (`P1D`: UTC days), calendar months for month periods, and one
/// window for all time (`total`). `None` for a period that mixes months and days (no fixed grid).
pub fn window_start(
    period: Option<&XsdDuration>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<i64> {
    use chrono::Datelike;
    let Some(p) = period else { return Some(0) };
    match (p.months, p.nanos) {
        (m, 0) if m > 0 => {
            let month = i64::from(now.year()) * 12 + i64::from(now.month0());
            Some(month - month.rem_euclid(m))
        }
        (0, n) if n >= 1_000_000_000 => {
            let secs = i64::try_from(n / 1_000_000_000).ok()?;
            let t = now.timestamp();
            Some(t - t.rem_euclid(secs))
        }
        _ => None,
    }
}

/// The reasons of a denial, one line each, for the problem body and the audit record.
pub fn denial_reasons(decision: &Decision) -> Vec<String> {
    let Some(denial) = &decision.denial else {
        return vec!["denied".into()];
    };
    let mut out = vec![denial.reason.as_str().to_string()];
    out.extend(denial.findings.iter().map(|f| match &f.constraint {
        Some(c) => format!("{} {} ({c}): {}", f.kind, f.rule, f.message),
        None => format!("{} {}: {}", f.kind, f.rule, f.message),
    }));
    out
}

/// What a permitted request must carry: response headers for attribution and a transform plan
/// for the data (fields dropped or pseudonymised, rows filtered). An obligation the enforcement
/// point cannot fulfil refuses the request — data is never served without it.
pub struct Fulfilment {
    pub headers: Vec<(HeaderName, String)>,
    pub reasons: Vec<String>,
    pub plan: Option<TransformPlan>,
}

pub fn fulfil(decision: &Decision, pseudonym_key: &[u8]) -> Result<Fulfilment, ApiError> {
    let mut f = Fulfilment {
        headers: Vec::new(),
        // Concatenated rather than formatted: this runs on every permitted request.
        reasons: decision
            .permitted_by
            .iter()
            .map(|r| ["permitted_by ", r].concat())
            .collect(),
        plan: TransformPlan::from_obligations(&decision.obligations, pseudonym_key).map_err(
            |e| ApiError::PolicyDenied {
                reasons: vec![format!("an obligation cannot be fulfilled: {}", e.0)],
            },
        )?,
    };
    for o in &decision.obligations {
        if let Obligation::Attribution { license, text, .. } = o {
            if let Some(l) = license {
                f.headers.push((
                    header::LINK,
                    ["<", &header_safe(l), ">; rel=\"license\""].concat(),
                ));
            }
            if let Some(t) = text {
                f.headers.push((ATTRIBUTION_HEADER, header_safe(t)));
            }
        }
        f.reasons
            .push(["obligation ", o.duty(), ": ", o.kind()].concat());
    }
    Ok(f)
}

/// The key that pseudonymises a product's fields for one consumer: derived from the connector's
/// secret, so it is stable across restarts and replicas, and different per product and consumer,
/// so pseudonyms cannot be joined across consumers.
pub fn pseudonym_key(secret: &[u8; 32], product: &str, party_id: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(secret);
    h.update((product.len() as u32).to_be_bytes());
    h.update(product.as_bytes());
    h.update(party_id.as_bytes());
    h.finalize().into()
}

/// Percent-encodes what a header value may not carry (controls, non-ASCII), keeping it readable.
fn header_safe(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn attribution_becomes_headers_and_every_obligation_a_reason() {
        let decision = Decision {
            allowed: true,
            permitted_by: Some("urn:p:permission:1".into()),
            obligations: vec![
                Obligation::Attribution {
                    duty: "urn:p:duty:attribution".into(),
                    license: Some("https://creativecommons.org/licenses/by/4.0/".into()),
                    // A dash, a newline and a percent sign cannot go into a header as they are.
                    text: Some(Arc::from("Gemeente Nijmegen – 100%\nopen")),
                },
                Obligation::DropFields {
                    duty: "urn:p:duty:drop".into(),
                    fields: Arc::from(vec!["eigenaar".to_string()]),
                },
            ],
            denial: None,
        };
        let f = fulfil(&decision, &[7; 32]).unwrap();
        assert_eq!(
            f.headers,
            vec![
                (
                    header::LINK,
                    "<https://creativecommons.org/licenses/by/4.0/>; rel=\"license\"".to_string()
                ),
                (
                    ATTRIBUTION_HEADER,
                    "Gemeente Nijmegen %E2%80%93 100%25%0Aopen".to_string()
                ),
            ]
        );
        assert_eq!(
            f.reasons,
            vec![
                "permitted_by urn:p:permission:1",
                "obligation urn:p:duty:attribution: attribution",
                "obligation urn:p:duty:drop: dropFields",
            ]
        );
        assert!(f.plan.is_some(), "the dropped field becomes a transform");
    }
}
