//! Decision time of the Sluis ODRL engine next to cedar-policy and regorus (Rego) on the same three policies:
//! (a) one rule, alice may read x; (b) the demo policy (party collection + purpose isAnyOf + prohibition);
//! (c) the 262 weekday-window policy of conformance vector 063, at an instant outside (the vector's own
//! request) and inside a window. Each engine gets its policy prepared beforehand, as it would be at load.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use cedar_policy::{
    Authorizer, Context as CedarContext, Decision as CedarDecision, Entities, EntityUid, PolicySet,
};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use sluis::policy::{CompiledPolicy, Context, Entity, Request, RequestTime, evaluate_json};

const DEMO_PRODUCT: &str = "urn:sluis:product:oorlogsschade";
const GEMEENTEN: &str = "urn:sluis:group:gemeenten";

fn manifest_file(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn uid(s: &str) -> EntityUid {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

struct Cedar {
    policies: PolicySet,
    entities: Entities,
    request: cedar_policy::Request,
}

impl Cedar {
    fn new(
        src: &str,
        entities: Value,
        principal: &str,
        action: &str,
        resource: &str,
        context: Value,
    ) -> Cedar {
        let policies: PolicySet = src.parse().unwrap_or_else(|e| panic!("cedar policy: {e}"));
        let entities =
            Entities::from_json_value(entities, None).unwrap_or_else(|e| panic!("entities: {e}"));
        let context =
            CedarContext::from_json_value(context, None).unwrap_or_else(|e| panic!("context: {e}"));
        let request =
            cedar_policy::Request::new(uid(principal), uid(action), uid(resource), context, None)
                .unwrap_or_else(|e| panic!("request: {e}"));
        Cedar {
            policies,
            entities,
            request,
        }
    }

    fn decide(&self, authorizer: &Authorizer) -> bool {
        authorizer
            .is_authorized(&self.request, &self.policies, &self.entities)
            .decision()
            == CedarDecision::Allow
    }
}

struct Rego {
    engine: regorus::Engine,
    compiled: regorus::CompiledPolicy,
    input: regorus::Value,
}

impl Rego {
    fn new(src: &str, input: &Value) -> Rego {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("sluis.rego".into(), src.into())
            .unwrap_or_else(|e| panic!("rego: {e}"));
        let compiled = engine
            .compile_with_entrypoint(&"data.sluis.allow".into())
            .unwrap_or_else(|e| panic!("rego compile: {e}"));
        let input = regorus::Value::from_json_str(&input.to_string())
            .unwrap_or_else(|e| panic!("input: {e}"));
        Rego {
            engine,
            compiled,
            input,
        }
    }

    fn decide_engine(&mut self) -> bool {
        self.engine.set_input(self.input.clone());
        self.engine
            .eval_rule("data.sluis.allow".into())
            .map(|v| v == regorus::Value::from(true))
            .unwrap_or(false)
    }

    fn decide_compiled(&self) -> bool {
        self.compiled
            .eval_with_input(self.input.clone())
            .map(|v| v == regorus::Value::from(true))
            .unwrap_or(false)
    }
}

/// One policy in all engines, with the request each one decides and the answer all must agree on.
struct Case {
    name: &'static str,
    sluis: CompiledPolicy,
    request_json: Value,
    expected: bool,
    cedar: Vec<(&'static str, Cedar)>,
    rego: Rego,
}

fn typed(v: &Value) -> Request<'_> {
    sluis::policy::parse_request(v).unwrap_or_else(|e| panic!("{e}"))
}

fn case_a() -> Case {
    let policy = json!({
        "@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "uid": "urn:bench:a",
        "permission": [{"uid": "urn:bench:a:1", "assignee": "alice", "action": "read", "target": "x"}]
    });
    let request_json = json!({
        "subject": {"type": "party", "id": "alice"}, "action": {"name": "read"},
        "resource": {"type": "asset", "id": "x"}, "context": {}
    });
    let cedar = Cedar::new(
        r#"permit(principal == User::"alice", action == Action::"read", resource == Asset::"x");"#,
        json!([]),
        r#"User::"alice""#,
        r#"Action::"read""#,
        r#"Asset::"x""#,
        json!({}),
    );
    let rego = Rego::new(
        "package sluis\nimport rego.v1\ndefault allow := false\nallow if {\n  input.subject.id == \"alice\"\n  \
         input.action.name == \"read\"\n  input.resource.id == \"x\"\n}\n",
        &request_json,
    );
    Case {
        name: "a_one_rule",
        sluis: CompiledPolicy::from_json("a.json", &policy, "bench")
            .unwrap_or_else(|e| panic!("{e}")),
        request_json,
        expected: true,
        cedar: vec![("cedar", cedar)],
        rego,
    }
}

fn case_b() -> Case {
    let sluis = CompiledPolicy::from_bytes(
        "oorlogsschade.json",
        &manifest_file("policies/oorlogsschade.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let request_json = json!({
        "subject": {"type": "party", "id": "urn:sluis:party:nijmegen", "properties": {"partOf": [GEMEENTEN]}},
        "action": {"name": "read"},
        "resource": {"type": "asset", "id": DEMO_PRODUCT},
        "context": {"time": "2025-03-01T10:00:00Z", "purpose": "urn:sluis:purpose:erfgoedbeheer"}
    });
    let cedar = Cedar::new(
        r#"
        permit(principal in Group::"gemeenten", action == Action::"read", resource == Product::"oorlogsschade")
        when { ["urn:sluis:purpose:beleidsonderzoek", "urn:sluis:purpose:erfgoedbeheer"].contains(context.purpose) };
        forbid(principal, action, resource == Product::"oorlogsschade")
        when { context.purpose == "urn:sluis:purpose:commercieel" };
        "#,
        json!([{"uid": {"type": "User", "id": "nijmegen"}, "attrs": {}, "parents": [{"type": "Group", "id": "gemeenten"}]}]),
        r#"User::"nijmegen""#,
        r#"Action::"read""#,
        r#"Product::"oorlogsschade""#,
        json!({"purpose": "urn:sluis:purpose:erfgoedbeheer"}),
    );
    let rego = Rego::new(
        r#"package sluis
import rego.v1
default allow := false
purposes := {"urn:sluis:purpose:beleidsonderzoek", "urn:sluis:purpose:erfgoedbeheer"}
deny if {
  input.resource.id == "urn:sluis:product:oorlogsschade"
  input.context.purpose == "urn:sluis:purpose:commercieel"
}
allow if {
  not deny
  "urn:sluis:group:gemeenten" in input.subject.properties.partOf
  input.action.name == "read"
  input.resource.id == "urn:sluis:product:oorlogsschade"
  input.context.purpose in purposes
}
"#,
        &request_json,
    );
    Case {
        name: "b_demo",
        sluis,
        request_json,
        expected: true,
        cedar: vec![("cedar", cedar)],
        rego,
    }
}

/// The windows of vector 063 as (after, before) pairs of RFC 3339 strings, read from the ODRL itself.
fn windows(policy: &Value) -> Vec<(String, String)> {
    let or = policy["permission"][0]["constraint"][0]["or"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    or.iter()
        .map(|w| {
            let bound = |op: &str| {
                w["and"]
                    .as_array()
                    .and_then(|a| a.iter().find(|c| c["operator"] == op))
                    .and_then(|c| c["rightOperand"]["@value"].as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| panic!("window without {op}: {w}"))
            };
            (bound("gt"), bound("lt"))
        })
        .collect()
}

fn epoch_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .timestamp_millis()
}

fn case_c(name: &'static str, time: &str, expected: bool) -> Case {
    let vector: Value = serde_json::from_slice(&manifest_file(
        "tests/conformance/odrl/testcase-063-big-policy-OoO.json",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let windows = windows(&vector["policy"]);
    assert_eq!(windows.len(), 262);
    let mut request_json = vector["request"].clone();
    request_json["context"]["time"] = json!(time);

    let head = r#"permit(principal == User::"alice", action == Action::"read", resource == Asset::"x") when { "#;
    let epoch: Vec<String> = windows
        .iter()
        .map(|(after, before)| {
            format!(
                "(context.t > {} && context.t < {})",
                epoch_ms(after),
                epoch_ms(before)
            )
        })
        .collect();
    let literal: Vec<String> = windows
        .iter()
        .map(|(after, before)| {
            format!(
                "(context.time > datetime(\"{after}\") && context.time < datetime(\"{before}\"))"
            )
        })
        .collect();
    let ids = (r#"User::"alice""#, r#"Action::"read""#, r#"Asset::"x""#);
    // One permit per window: the natural Cedar form, and no 262-deep `||` expression (which
    // exceeds Cedar's evaluation stack guard in unoptimised test builds).
    let policy_set = |conds: &[String]| {
        conds
            .iter()
            .map(|c| format!("{head}{c} }};"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let cedar_epoch = Cedar::new(
        &policy_set(&epoch),
        json!([]),
        ids.0,
        ids.1,
        ids.2,
        json!({"t": epoch_ms(time)}),
    );
    let cedar_datetime = Cedar::new(
        &policy_set(&literal),
        json!([]),
        ids.0,
        ids.1,
        ids.2,
        json!({"time": {"__extn": {"fn": "datetime", "arg": time}}}),
    );
    let ns = |s: &str| i128::from(epoch_ms(s)) * 1_000_000;
    let mut rego = String::from(
        "package sluis\nimport rego.v1\ndefault allow := false\nt := time.parse_rfc3339_ns(input.context.time)\n",
    );
    for (after, before) in &windows {
        rego.push_str(&format!(
            "in_window if {{\n  t > {}\n  t < {}\n}}\n",
            ns(after),
            ns(before)
        ));
    }
    rego.push_str(
        "allow if {\n  input.subject.id == \"http://example.org/alice\"\n  input.action.name == \"read\"\n  \
         input.resource.id == \"http://example.org/x\"\n  in_window\n}\n",
    );
    Case {
        name,
        sluis: CompiledPolicy::from_json("063.json", &vector["policy"], "bench")
            .unwrap_or_else(|e| panic!("{e}")),
        request_json,
        expected,
        cedar: vec![
            ("cedar_epoch", cedar_epoch),
            ("cedar_datetime", cedar_datetime),
        ],
        rego: Rego::new(&rego, &request_json_for_rego(time)),
    }
}

fn request_json_for_rego(time: &str) -> Value {
    json!({
        "subject": {"type": "party", "id": "http://example.org/alice"}, "action": {"name": "read"},
        "resource": {"type": "asset", "id": "http://example.org/x"}, "context": {"time": time}
    })
}

fn bench(c: &mut Criterion) {
    let authorizer = Authorizer::new();
    let cases = vec![
        case_a(),
        case_b(),
        case_c("c_262_windows_outside", "2024-02-12T05:20:10.999Z", false),
        case_c("c_262_windows_inside", "2024-02-12T11:20:10.999Z", true),
    ];
    for mut case in cases {
        let prebuilt = typed(&case.request_json);
        // Every engine must give the same answer, or the comparison means nothing.
        assert_eq!(
            case.sluis.evaluate(&prebuilt).allowed,
            case.expected,
            "{} sluis",
            case.name
        );
        for (label, cedar) in &case.cedar {
            assert_eq!(
                cedar.decide(&authorizer),
                case.expected,
                "{} {label}",
                case.name
            );
        }
        assert_eq!(
            case.rego.decide_engine(),
            case.expected,
            "{} regorus",
            case.name
        );
        assert_eq!(
            case.rego.decide_compiled(),
            case.expected,
            "{} regorus compiled",
            case.name
        );

        let mut group = c.benchmark_group(case.name);
        group.bench_function("sluis", |b| {
            b.iter(|| black_box(case.sluis.evaluate(black_box(&prebuilt))))
        });
        // Building the typed request from plain strings, as the enforcement point does per request.
        let r = &case.request_json;
        let subject_id = r["subject"]["id"].as_str().unwrap_or_default().to_owned();
        let part_of: Vec<String> = r["subject"]["properties"]["partOf"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let action = r["action"]["name"].as_str().unwrap_or_default().to_owned();
        let resource_id = r["resource"]["id"].as_str().unwrap_or_default().to_owned();
        let time = r["context"]["time"].as_str().map(str::to_owned);
        let purpose = r["context"]["purpose"].as_str().map(str::to_owned);
        group.bench_function("sluis_building_request", |b| {
            b.iter(|| {
                let req = Request {
                    subject: Entity {
                        id: &subject_id,
                        part_of: part_of.iter().map(String::as_str).collect(),
                        properties: Vec::new(),
                    },
                    action: &action,
                    resource: Entity {
                        id: &resource_id,
                        ..Entity::default()
                    },
                    context: Context {
                        time: time.as_deref().and_then(|t| RequestTime::parse(t).ok()),
                        purpose: purpose.as_deref(),
                        ..Context::default()
                    },
                };
                black_box(case.sluis.evaluate(&req))
            })
        });
        group.bench_function("sluis_json", |b| {
            b.iter(|| black_box(evaluate_json(&case.sluis, black_box(&case.request_json))))
        });
        for (label, cedar) in &case.cedar {
            group.bench_function(*label, |b| b.iter(|| black_box(cedar.decide(&authorizer))));
        }
        group.bench_function("regorus", |b| {
            b.iter(|| black_box(case.rego.decide_engine()))
        });
        group.bench_function("regorus_compiled", |b| {
            b.iter(|| black_box(case.rego.decide_compiled()))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
