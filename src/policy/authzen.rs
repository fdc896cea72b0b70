//! The AuthZEN Access Evaluation face of the engine: reads an evaluation request from JSON into the typed
//! [`Request`] (borrowing from the JSON, copying no strings) and writes the decision as
//! `{"decision": bool, "context": {...}}`. HTTP is not this module's business.

use serde_json::{Map, Value, json};

use super::compile::CompiledPolicy;
use super::eval::{Context, Decision, DenyReason, DutyState, Entity, Request};
use super::time::{RequestTime, XsdDuration};

/// A request that is not a well-formed AuthZEN evaluation request (HTTP 400, CLI exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {0}")]
pub struct RequestError(pub String);

fn bad(msg: impl Into<String>) -> RequestError {
    RequestError(msg.into())
}

/// Reads an AuthZEN evaluation request. Context keys Sluis does not know are left alone (an AuthZEN
/// context may carry more); keys it knows must have the right type.
pub fn parse_request(v: &Value) -> Result<Request<'_>, RequestError> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad("the request must be a JSON object"))?;
    let action = obj
        .get("action")
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad("action.name (a string) is required"))?;
    Ok(Request {
        subject: entity(obj.get("subject"), "subject")?,
        action,
        resource: entity(obj.get("resource"), "resource")?,
        context: match obj.get("context") {
            None | Some(Value::Null) => Context::default(),
            Some(Value::Object(m)) => context(m)?,
            Some(_) => return Err(bad("context must be an object")),
        },
    })
}

fn entity<'a>(v: Option<&'a Value>, what: &str) -> Result<Entity<'a>, RequestError> {
    let obj = v
        .and_then(Value::as_object)
        .ok_or_else(|| bad(format!("{what} (an object with an id) is required")))?;
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{what}.id (a string) is required")))?;
    let mut e = Entity {
        id,
        ..Entity::default()
    };
    match obj.get("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(props)) => {
            for (k, val) in props {
                if k == "partOf" {
                    e.part_of = strings(val).ok_or_else(|| {
                        bad(format!("{what}.properties.partOf: strings expected"))
                    })?;
                } else if let Some(list) = strings(val) {
                    // Properties that are not strings cannot be duty parameters; they are simply not offered.
                    e.properties.push((k.as_str(), list));
                }
            }
        }
        Some(_) => return Err(bad(format!("{what}.properties must be an object"))),
    }
    Ok(e)
}

/// A string or a list of strings.
fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

fn context(m: &Map<String, Value>) -> Result<Context<'_>, RequestError> {
    let text = |key: &str| -> Result<Option<&str>, RequestError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(bad(format!("context.{key} must be a string"))),
        }
    };
    let mut ctx = Context {
        time: text("time")?
            .map(RequestTime::parse)
            .transpose()
            .map_err(|e| bad(format!("context.time: {e}")))?,
        purpose: text("purpose")?,
        recipient: text("recipient")?,
        spatial: text("spatial")?,
        ..Context::default()
    };
    if let Some(v) = m.get("event").filter(|v| !v.is_null()) {
        ctx.events = Some(
            strings(v).ok_or_else(|| bad("context.event must be a string or a list of strings"))?,
        );
    }
    ctx.elapsed_time = match m.get("elapsedTime") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(XsdDuration::parse(s).map_err(|e| bad(format!("context.elapsedTime: {e}")))?)
        }
        Some(Value::Number(n)) => {
            let secs = n.as_u64().ok_or_else(|| {
                bad("context.elapsedTime in seconds must be a whole non-negative number")
            })?;
            Some(XsdDuration {
                months: 0,
                nanos: i128::from(secs) * 1_000_000_000,
            })
        }
        Some(_) => {
            return Err(bad(
                "context.elapsedTime must be an xsd:duration or seconds",
            ));
        }
    };
    match m.get("count") {
        None | Some(Value::Null) => {}
        // A bare number is the all-time count.
        Some(Value::Number(n)) => {
            ctx.counts.push((
                "total",
                n.as_u64()
                    .ok_or_else(|| bad("context.count must be a whole number"))?,
            ));
        }
        Some(Value::Object(counts)) => {
            for (k, v) in counts {
                let n = v
                    .as_u64()
                    .ok_or_else(|| bad(format!("context.count.{k} must be a whole number")))?;
                ctx.counts.push((k.as_str(), n));
            }
        }
        Some(_) => {
            return Err(bad(
                "context.count must be a number or an object of window → number",
            ));
        }
    }
    match m.get("duties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(duties)) => {
            for (uid, state) in duties {
                let state = state.as_str().and_then(DutyState::parse).ok_or_else(|| {
                    bad(format!(
                        "context.duties.{uid}: want NonSet, Fulfilled or Violated"
                    ))
                })?;
                ctx.duties.push((uid.as_str(), state));
            }
        }
        Some(_) => return Err(bad("context.duties must be an object of duty uid → state")),
    }
    match m.get("types") {
        None | Some(Value::Null) => {}
        Some(Value::Object(types)) => {
            for (value, classes) in types {
                let classes = strings(classes)
                    .ok_or_else(|| bad(format!("context.types.{value}: strings expected")))?;
                ctx.types.push((value.as_str(), classes));
            }
        }
        Some(_) => return Err(bad("context.types must be an object of value → classes")),
    }
    Ok(ctx)
}

/// Evaluates a JSON AuthZEN request and returns the JSON response.
pub fn evaluate_json(policy: &CompiledPolicy, request: &Value) -> Result<Value, RequestError> {
    let req = parse_request(request)?;
    let decision = policy.evaluate(&req);
    Ok(response_json(policy, &decision))
}

/// The AuthZEN response for a decision: which rule permitted and the obligations, or why it was denied.
pub fn response_json(policy: &CompiledPolicy, decision: &Decision) -> Value {
    let mut ctx = Map::new();
    ctx.insert("policy".into(), json!(policy.id()));
    if let Some(uid) = policy.uid() {
        ctx.insert("policy_uid".into(), json!(uid));
    }
    ctx.insert("policy_version".into(), json!(policy.version()));
    if let Some(rule) = &decision.permitted_by {
        ctx.insert("permitted_by".into(), json!(&**rule));
        ctx.insert(
            "obligations".into(),
            Value::Array(decision.obligations.iter().map(|o| o.to_json()).collect()),
        );
    }
    if let Some(denial) = &decision.denial {
        ctx.insert("reason".into(), json!(denial.reason.as_str()));
        ctx.insert(
            "reason_admin".into(),
            json!({"en": summary(denial.reason, &denial.findings)}),
        );
        let findings: Vec<Value> = denial
            .findings
            .iter()
            .map(|f| {
                let mut o = json!({"rule": &*f.rule, "kind": f.kind, "message": f.message});
                if let (Some(c), Some(map)) = (&f.constraint, o.as_object_mut()) {
                    map.insert("constraint".into(), json!(&**c));
                }
                o
            })
            .collect();
        ctx.insert("findings".into(), Value::Array(findings));
    }
    json!({"decision": decision.allowed, "context": ctx})
}

fn summary(reason: DenyReason, findings: &[super::eval::Finding]) -> String {
    let head = match reason {
        DenyReason::Prohibited => "denied by a prohibition",
        DenyReason::NoPermission => "no permission grants this request",
        DenyReason::Undecidable => "the policy cannot be evaluated for this request",
        DenyReason::Conflict => {
            "a permission and a prohibition both apply and the policy's conflict strategy is invalid"
        }
        DenyReason::ObligationViolated => "a policy obligation is violated",
    };
    // Name the finding that decided it, when one stands out.
    let decisive = findings.iter().find(|f| match reason {
        DenyReason::Prohibited => f.kind == "prohibition",
        DenyReason::Undecidable => f.message.contains("missing"),
        DenyReason::ObligationViolated => f.kind == "obligation",
        _ => false,
    });
    match decisive {
        Some(f) => format!("{head}: {} {}: {}", f.kind, f.rule, f.message),
        None => head.to_owned(),
    }
}
