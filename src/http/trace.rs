//! W3C trace context: the incoming `traceparent` gives the trace id; each request gets its own
//! span id, so the audit record ties into the caller's trace.

/// Trace id (32 hex) and this request's span id (16 hex).
pub fn trace_ids(traceparent: Option<&str>) -> (String, String) {
    let trace_id = traceparent
        .and_then(parse_traceparent)
        .unwrap_or_else(|| random_hex(16));
    (trace_id, random_hex(8))
}

/// `version-traceid-parentid-flags`, lowercase hex, all-zero ids invalid (W3C Trace Context §3.2).
fn parse_traceparent(v: &str) -> Option<String> {
    let mut parts = v.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2)
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if trace.bytes().all(|b| b == b'0') || parent.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace.to_string())
}

/// Random lowercase hex (at most 16 bytes) from a v4 UUID's random bits.
fn random_hex(bytes: usize) -> String {
    let mut out = hex::encode(uuid::Uuid::new_v4().as_bytes());
    out.truncate(bytes * 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_and_rejects_invalid_traceparent() {
        let t = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_ids(Some(t)).0, "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "garbage",
        ] {
            assert_ne!(
                trace_ids(Some(bad)).0,
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
            assert_eq!(trace_ids(Some(bad)).0.len(), 32);
        }
        assert_eq!(trace_ids(None).1.len(), 16);
    }
}
