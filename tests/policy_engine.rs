//! Behaviour of the ODRL policy engine as a policy author and an enforcement point see it: every operator,
//! left operand and logical form, the action hierarchy, collections, conflict strategies, obligations,
//! strictness at load, denials with reasons, the CLI and the hot-reloading store.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluis::policy::{
    CompiledPolicy, Context, DenyReason, Entity, Obligation, PolicyStore, Request, RequestTime,
    cli, evaluate_json,
};

const ALICE: &str = "http://example.org/alice";
const X: &str = "http://example.org/x";

fn compile(policy: Value) -> CompiledPolicy {
    CompiledPolicy::from_json("test.json", &policy, "v1")
        .unwrap_or_else(|e| panic!("policy rejected: {e}"))
}

fn load_error(policy: Value) -> String {
    match CompiledPolicy::from_json("bad.json", &policy, "v1") {
        Ok(_) => panic!("policy was accepted: {policy}"),
        Err(e) => e.to_string(),
    }
}

fn set(rules: Value) -> Value {
    let mut p = json!({"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "uid": "urn:test:policy"});
    if let (Some(obj), Some(extra)) = (p.as_object_mut(), rules.as_object()) {
        obj.extend(extra.clone());
    }
    p
}

/// Alice may read x when `constraint` holds.
fn with_constraint(constraint: Value) -> CompiledPolicy {
    compile(set(json!({"permission": [{
        "uid": "urn:test:perm", "assignee": ALICE, "action": "read", "target": X, "constraint": [constraint]
    }]})))
}

fn atom(left: &str, op: &str, right: Value) -> Value {
    json!({"uid": format!("urn:test:c:{left}:{op}"), "leftOperand": left, "operator": op, "rightOperand": right})
}

fn request(context: Value) -> Value {
    json!({
        "subject": {"type": "party", "id": ALICE},
        "action": {"name": "read"},
        "resource": {"type": "asset", "id": X},
        "context": context
    })
}

fn respond(p: &CompiledPolicy, req: Value) -> Value {
    evaluate_json(p, &req).unwrap_or_else(|e| panic!("request rejected: {e}"))
}

fn allowed(p: &CompiledPolicy, context: Value) -> bool {
    let r = respond(p, request(context));
    r["decision"]
        .as_bool()
        .unwrap_or_else(|| panic!("no decision in {r}"))
}

fn dt(s: &str) -> Value {
    json!({"@value": s, "@type": "xsd:dateTime"})
}

// ---------------------------------------------------------------------------------------------- operators

#[test]
fn datetime_comparisons_respect_their_boundaries() {
    let at = "2024-06-01T12:00:00Z";
    let cases = [
        ("eq", "2024-06-01T12:00:00Z", true),
        ("eq", "2024-06-01T12:00:00.001Z", false),
        ("neq", "2024-06-01T12:00:00Z", false),
        ("neq", "2024-06-01T12:00:01Z", true),
        ("lt", "2024-06-01T12:00:00Z", false),
        ("lt", "2024-06-01T11:59:59.999Z", true),
        ("lteq", "2024-06-01T12:00:00Z", true),
        ("gt", "2024-06-01T12:00:00Z", false),
        ("gt", "2024-06-01T12:00:00.001Z", true),
        ("gteq", "2024-06-01T12:00:00Z", true),
        ("gteq", "2024-06-01T11:59:59.999Z", false),
    ];
    for (op, request_time, expected) in cases {
        let p = with_constraint(atom("dateTime", op, dt(at)));
        assert_eq!(
            allowed(&p, json!({"time": request_time})),
            expected,
            "{request_time} {op} {at}"
        );
    }
    // The same instant written in another offset is the same instant.
    let p = with_constraint(atom("dateTime", "eq", dt(at)));
    assert!(allowed(&p, json!({"time": "2024-06-01T14:00:00+02:00"})));
}

#[test]
fn xsd_date_covers_the_whole_day() {
    let date = json!({"@value": "2024-06-01", "@type": "xsd:date"});
    let p = with_constraint(atom("dateTime", "eq", date.clone()));
    assert!(allowed(&p, json!({"time": "2024-06-01T23:59:59Z"})));
    assert!(!allowed(&p, json!({"time": "2024-06-02T00:00:00Z"})));
    let p = with_constraint(atom("dateTime", "lteq", date.clone()));
    assert!(allowed(&p, json!({"time": "2024-06-01T18:00:00Z"})));
    assert!(!allowed(&p, json!({"time": "2024-06-02T00:00:00Z"})));
    let p = with_constraint(atom("dateTime", "gt", date));
    assert!(!allowed(&p, json!({"time": "2024-06-01T18:00:00Z"})));
    assert!(allowed(&p, json!({"time": "2024-06-02T00:00:00Z"})));
}

#[test]
fn purpose_supports_every_set_operator() {
    let a = "urn:sluis:purpose:a";
    let b = "urn:sluis:purpose:b";
    let cases = [
        (atom("purpose", "eq", json!(a)), a, true),
        (atom("purpose", "eq", json!({"@id": a})), b, false),
        (atom("purpose", "neq", json!(a)), b, true),
        (atom("purpose", "neq", json!(a)), a, false),
        (atom("purpose", "isAnyOf", json!([a, b])), b, true),
        (atom("purpose", "isAnyOf", json!([a])), b, false),
        (atom("purpose", "isNoneOf", json!([a])), b, true),
        (atom("purpose", "isNoneOf", json!([a, b])), b, false),
        (atom("purpose", "isAllOf", json!([a])), a, true),
        (atom("purpose", "isAllOf", json!([a, b])), a, false),
        (atom("purpose", "isPartOf", json!([a, b])), a, true),
        (atom("purpose", "hasPart", json!(a)), a, true),
        (atom("purpose", "hasPart", json!(b)), a, false),
    ];
    for (constraint, purpose, expected) in cases {
        let p = with_constraint(constraint.clone());
        assert_eq!(
            allowed(&p, json!({"purpose": purpose})),
            expected,
            "{constraint} with purpose {purpose}"
        );
    }
}

#[test]
fn is_a_uses_the_classes_the_caller_supplies() {
    let p = with_constraint(atom("purpose", "isA", json!("urn:sluis:purpose:onderzoek")));
    assert!(p.needs().types);
    assert!(allowed(
        &p,
        json!({"purpose": "urn:x:p", "types": {"urn:x:p": ["urn:sluis:purpose:onderzoek"]}})
    ));
    assert!(!allowed(
        &p,
        json!({"purpose": "urn:x:p", "types": {"urn:x:p": ["urn:other"]}})
    ));
    assert!(allowed(
        &p,
        json!({"purpose": "urn:sluis:purpose:onderzoek"})
    ));
}

#[test]
fn recipient_is_compared_as_an_iri() {
    let p = with_constraint(atom(
        "recipient",
        "eq",
        json!("https://example.org/party/gemeente"),
    ));
    assert!(allowed(
        &p,
        json!({"recipient": "https://example.org/party/gemeente"})
    ));
    assert!(!allowed(
        &p,
        json!({"recipient": "https://example.org/party/other"})
    ));
}

#[test]
fn spatial_cbs_codes_nest_for_is_part_of_and_has_part() {
    let p = with_constraint(atom("spatial", "isPartOf", json!(["GM0268"])));
    assert!(allowed(&p, json!({"spatial": "WK026801"})));
    assert!(allowed(&p, json!({"spatial": "BU02680101"})));
    assert!(allowed(&p, json!({"spatial": "GM0268"})));
    assert!(!allowed(&p, json!({"spatial": "WK036301"})));
    let p = with_constraint(atom("spatial", "hasPart", json!("BU02680101")));
    assert!(allowed(&p, json!({"spatial": "WK026801"})));
    assert!(!allowed(&p, json!({"spatial": "WK026802"})));
    let p = with_constraint(atom("spatial", "isAnyOf", json!(["WK026801", "WK026802"])));
    assert!(allowed(&p, json!({"spatial": "WK026802"})));
    assert!(
        !allowed(&p, json!({"spatial": "BU02680101"})),
        "isAnyOf is membership, not nesting"
    );
}

#[test]
fn event_is_a_set_of_events_in_effect() {
    let p = with_constraint(atom("event", "isAllOf", json!(["urn:e:a", "urn:e:b"])));
    assert!(allowed(
        &p,
        json!({"event": ["urn:e:b", "urn:e:a", "urn:e:c"]})
    ));
    assert!(!allowed(&p, json!({"event": ["urn:e:a"]})));
    let p = with_constraint(atom("event", "eq", json!("urn:e:a")));
    assert!(allowed(&p, json!({"event": "urn:e:a"})));
    assert!(!allowed(&p, json!({"event": []})));
}

#[test]
fn count_reads_the_counter_of_its_window() {
    let mut c = atom("count", "lt", json!(100));
    c["unit"] = json!("P1D");
    let p = with_constraint(c);
    let needs = p.needs();
    assert_eq!(needs.counters.len(), 1);
    assert_eq!(needs.counters[0].key, "P1D");
    assert_eq!(
        needs.counters[0].period.map(|d| d.nanos),
        Some(86_400_000_000_000)
    );
    assert!(allowed(&p, json!({"count": {"P1D": 99}})));
    assert!(!allowed(&p, json!({"count": {"P1D": 100}})));
    assert!(
        !allowed(&p, json!({"count": {"total": 1}})),
        "another window's counter is not this one"
    );
    let p = with_constraint(atom("count", "lteq", json!(3)));
    assert_eq!(p.needs().counters[0].key, "total");
    assert!(allowed(&p, json!({"count": 3})));
    assert!(!allowed(&p, json!({"count": 4})));
}

#[test]
fn elapsed_time_compares_durations() {
    let p = with_constraint(atom(
        "elapsedTime",
        "lteq",
        json!({"@value": "P30D", "@type": "xsd:duration"}),
    ));
    assert!(allowed(&p, json!({"elapsedTime": "P30D"})));
    assert!(allowed(&p, json!({"elapsedTime": "PT3H"})));
    assert!(!allowed(&p, json!({"elapsedTime": "P30DT1S"})));
    assert!(allowed(&p, json!({"elapsedTime": 3600})));
    let err = load_error(set(
        json!({"permission": [{"uid": "urn:test:r", "action": "read",
        "constraint": [atom("elapsedTime", "lt", json!("P1M"))]}]}),
    ));
    assert!(err.contains("urn:test:r") && err.contains("days"), "{err}");
}

#[test]
fn day_of_week_and_hour_of_day_use_the_request_offset() {
    let office = json!({"uid": "urn:test:office", "and": [
        atom("sluis:dayOfWeek", "lteq", json!(5)),
        atom("sluis:hourOfDay", "gteq", json!(9)),
        atom("hourOfDay", "lt", json!(17))
    ]});
    let p = with_constraint(office);
    assert!(
        allowed(&p, json!({"time": "2024-06-03T09:00:00+02:00"})),
        "Monday 09:00"
    );
    assert!(
        !allowed(&p, json!({"time": "2024-06-03T17:00:00+02:00"})),
        "Monday 17:00"
    );
    assert!(
        !allowed(&p, json!({"time": "2024-06-01T10:00:00+02:00"})),
        "Saturday"
    );
    // 08:30 UTC is 10:30 in Amsterdam summer time: the offset the caller writes the time in decides.
    assert!(
        !allowed(&p, json!({"time": "2024-06-03T08:30:00Z"})),
        "08:30 as written"
    );
    assert!(
        allowed(&p, json!({"time": "2024-06-03T10:30:00+02:00"})),
        "the same instant, local"
    );
    let p = with_constraint(atom("dayOfWeek", "isAnyOf", json!([6, 7])));
    assert!(
        allowed(&p, json!({"time": "2024-06-02T10:00:00Z"})),
        "Sunday"
    );
    assert!(
        !allowed(&p, json!({"time": "2024-06-04T10:00:00Z"})),
        "Tuesday"
    );
}

// -------------------------------------------------------------------------------------------- logical forms

#[test]
fn logical_constraints_and_or_xone_and_sequence_nest() {
    let a = atom("purpose", "eq", json!("urn:p:a"));
    let b = atom("recipient", "eq", json!("urn:r:b"));
    let ctx = |p: &str, r: &str| json!({"purpose": p, "recipient": r});

    let and = with_constraint(json!({"and": [a, b]}));
    assert!(allowed(&and, ctx("urn:p:a", "urn:r:b")));
    assert!(!allowed(&and, ctx("urn:p:a", "urn:r:z")));

    let seq = with_constraint(json!({"andSequence": {"@list": [a, b]}}));
    assert!(allowed(&seq, ctx("urn:p:a", "urn:r:b")));
    assert!(!allowed(&seq, ctx("urn:p:z", "urn:r:b")));

    let or = with_constraint(json!({"or": [a, b]}));
    assert!(allowed(&or, ctx("urn:p:z", "urn:r:b")));
    assert!(!allowed(&or, ctx("urn:p:z", "urn:r:z")));

    let xone = with_constraint(json!({"xone": [a, b]}));
    assert!(allowed(&xone, ctx("urn:p:a", "urn:r:z")));
    assert!(
        !allowed(&xone, ctx("urn:p:a", "urn:r:b")),
        "both hold: not exactly one"
    );
    assert!(!allowed(&xone, ctx("urn:p:z", "urn:r:z")));

    let nested = with_constraint(json!({"or": [
        {"and": [a, b]},
        {"and": [atom("purpose", "eq", json!("urn:p:c")), {"xone": [b, atom("spatial", "eq", json!("GM0268"))]}]}
    ]}));
    let full = |p: &str, r: &str, s: &str| json!({"purpose": p, "recipient": r, "spatial": s});
    assert!(allowed(&nested, full("urn:p:a", "urn:r:b", "GM0000")));
    assert!(allowed(&nested, full("urn:p:c", "urn:r:z", "GM0268")));
    assert!(!allowed(&nested, full("urn:p:c", "urn:r:b", "GM0268")));
    assert!(!allowed(&nested, full("urn:p:d", "urn:r:b", "GM0268")));
}

#[test]
fn combined_time_windows_keep_or_and_xone_semantics() {
    let window = |from: &str, to: &str| json!({"and": [atom("dateTime", "gteq", dt(from)), atom("dateTime", "lt", dt(to))]});
    let w1 = window("2024-01-01T00:00:00Z", "2024-01-10T00:00:00Z");
    let w2 = window("2024-01-05T00:00:00Z", "2024-01-15T00:00:00Z");
    let or = with_constraint(json!({"or": [w1, w2]}));
    let xone = with_constraint(json!({"xone": [w1, w2]}));
    for (t, in_or, in_xone) in [
        ("2023-12-31T23:59:59Z", false, false),
        ("2024-01-02T00:00:00Z", true, true),
        ("2024-01-07T00:00:00Z", true, false),
        ("2024-01-12T00:00:00Z", true, true),
        ("2024-01-15T00:00:00Z", false, false),
    ] {
        assert_eq!(allowed(&or, json!({"time": t})), in_or, "or at {t}");
        assert_eq!(allowed(&xone, json!({"time": t})), in_xone, "xone at {t}");
    }
}

#[test]
fn the_262_window_policy_permits_inside_a_window_and_denies_outside() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance/odrl/testcase-063-big-policy-OoO.json");
    let vector: Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let p = compile(vector["policy"].clone());
    assert!(
        allowed(&p, json!({"time": "2024-02-12T11:20:10.999Z"})),
        "Monday 11:20"
    );
    assert!(
        !allowed(&p, json!({"time": "2024-02-12T17:00:00Z"})),
        "lt 17:00 is exclusive"
    );
    assert!(
        !allowed(&p, json!({"time": "2024-02-12T09:00:00Z"})),
        "gt 09:00 is exclusive"
    );
    assert!(
        allowed(&p, json!({"time": "2024-12-31T16:59:59.999Z"})),
        "last window"
    );
    assert!(
        !allowed(&p, json!({"time": "2025-01-02T12:00:00Z"})),
        "2025"
    );
}

// ------------------------------------------------------------------------------------ actions and parties

#[test]
fn use_covers_its_descendants_but_not_transfer_actions() {
    let p = compile(set(
        json!({"permission": [{"uid": "urn:test:use", "action": "use"}]}),
    ));
    let ask = |action: &str| {
        let mut r = request(json!({}));
        r["action"]["name"] = json!(action);
        respond(&p, r)["decision"] == json!(true)
    };
    for a in [
        "use",
        "read",
        "write",
        "distribute",
        "print",
        "display",
        "textToSpeech",
        "odrl:read",
    ] {
        assert!(ask(a), "use should cover {a}");
    }
    assert!(ask("http://www.w3.org/ns/odrl/2/modify"));
    for a in ["sell", "give", "transfer", "frobnicate"] {
        assert!(!ask(a), "use must not cover {a}");
    }
    let t = compile(set(
        json!({"permission": [{"uid": "urn:test:transfer", "action": "odrl:transfer"}]}),
    ));
    let mut r = request(json!({}));
    r["action"]["name"] = json!("sell");
    assert_eq!(respond(&t, r)["decision"], json!(true));
    let read_only = compile(set(
        json!({"permission": [{"uid": "urn:test:read", "action": "read"}]}),
    ));
    let mut r = request(json!({}));
    r["action"]["name"] = json!("use");
    assert_eq!(
        respond(&read_only, r)["decision"],
        json!(false),
        "read does not grant all of use"
    );
}

#[test]
fn collections_match_through_part_of_and_plain_iris_do_not() {
    let p = compile(set(json!({"permission": [{
        "uid": "urn:test:group",
        "action": "read",
        "assignee": {"@type": "PartyCollection", "uid": "urn:sluis:group:gemeenten"},
        "target": {"@type": "odrl:AssetCollection", "@id": "urn:sluis:collection:erfgoed"}
    }]})));
    let req = |subject_part_of: Value, resource_part_of: Value| {
        json!({
            "subject": {"type": "party", "id": "urn:p:nijmegen", "properties": {"partOf": subject_part_of}},
            "action": {"name": "read"},
            "resource": {"type": "asset", "id": "urn:a:x", "properties": {"partOf": resource_part_of}}
        })
    };
    let yes = respond(
        &p,
        req(
            json!(["urn:sluis:group:gemeenten"]),
            json!("urn:sluis:collection:erfgoed"),
        ),
    );
    assert_eq!(yes["decision"], json!(true));
    let no = respond(
        &p,
        req(
            json!(["urn:sluis:group:bedrijven"]),
            json!(["urn:sluis:collection:erfgoed"]),
        ),
    );
    assert_eq!(no["decision"], json!(false));
    let no = respond(&p, req(json!(["urn:sluis:group:gemeenten"]), json!([])));
    assert_eq!(no["decision"], json!(false));

    let individual = compile(set(
        json!({"permission": [{"uid": "urn:test:ind", "action": "read",
        "assignee": "urn:sluis:group:gemeenten"}]}),
    ));
    let r = respond(
        &individual,
        req(json!(["urn:sluis:group:gemeenten"]), json!([])),
    );
    assert_eq!(
        r["decision"],
        json!(false),
        "an IRI assignee names a party, not a collection"
    );
}

#[test]
fn policy_level_target_and_assignee_apply_to_every_rule() {
    let p = compile(set(json!({
        "target": X, "assignee": ALICE,
        "permission": [{"uid": "urn:test:p", "action": "read"}]
    })));
    assert!(allowed(&p, json!({})));
    let mut r = request(json!({}));
    r["subject"]["id"] = json!("http://example.org/bob");
    assert_eq!(respond(&p, r)["decision"], json!(false));
}

// ------------------------------------------------------------------------------------------- conflicts

fn conflicting(strategy: Option<&str>) -> CompiledPolicy {
    let mut p = set(json!({
        "permission": [{"uid": "urn:test:allow", "action": "read"}],
        "prohibition": [{"uid": "urn:test:forbid", "action": "use"}]
    }));
    if let Some(s) = strategy {
        p["conflict"] = json!(s);
    }
    compile(p)
}

#[test]
fn conflict_strategy_decides_between_permission_and_prohibition() {
    let r = respond(&conflicting(None), request(json!({})));
    assert_eq!(r["decision"], json!(false));
    assert_eq!(r["context"]["reason"], json!("prohibited"));
    assert_eq!(
        r["context"]["findings"][0]["rule"],
        json!("urn:test:forbid")
    );

    let r = respond(&conflicting(Some("prohibit")), request(json!({})));
    assert_eq!(r["decision"], json!(false));

    let r = respond(&conflicting(Some("perm")), request(json!({})));
    assert_eq!(r["decision"], json!(true));
    assert_eq!(r["context"]["permitted_by"], json!("urn:test:allow"));

    let r = respond(&conflicting(Some("odrl:invalid")), request(json!({})));
    assert_eq!(r["decision"], json!(false));
    assert_eq!(r["context"]["reason"], json!("conflict"));
}

// ------------------------------------------------------------------------------------------ obligations

fn duty_action(name: &str, refinement: Value) -> Value {
    json!({"rdf:value": {"@id": name}, "refinement": refinement})
}

#[test]
fn sluis_profile_duties_become_typed_obligations() {
    let p = compile(set(json!({"permission": [{
        "uid": "urn:test:p", "action": "read",
        "duty": [
            {"uid": "urn:d:drop", "action": duty_action("sluis:dropFields",
                json!([{"leftOperand": "sluis:field", "operator": "isAnyOf", "rightOperand": ["bsn", "naam"]}]))},
            {"uid": "urn:d:pseudo", "action": duty_action("https://w3id.org/sluis/odrl#pseudonymiseFields",
                json!([{"leftOperand": "sluis:field", "operator": "eq", "rightOperand": "adres"}]))},
            {"uid": "urn:d:rows", "action": duty_action("sluis:filterRows", json!([
                {"leftOperand": "sluis:rowProperty", "operator": "eq", "rightOperand": "wijkcode"},
                {"leftOperand": "sluis:rowValue", "operator": "isAnyOf", "rightOperand": ["WK026801"]}]))},
            {"uid": "urn:d:own", "action": duty_action("sluis:filterRows", json!([
                {"leftOperand": "sluis:rowProperty", "operator": "eq", "rightOperand": "wijkcode"},
                {"leftOperand": "sluis:rowValue", "operator": "isAnyOf", "rightOperandReference": "sluis:subject.wijkcodes"}]))},
            {"uid": "urn:d:attr", "action": duty_action("attribute", json!([
                {"leftOperand": "sluis:license", "operator": "eq", "rightOperand": "CC-BY-4.0"},
                {"leftOperand": "sluis:attributionText", "operator": "eq", "rightOperand": "Gemeente Nijmegen"}]))},
            {"uid": "urn:d:pay", "action": "compensate"}
        ]
    }]})));
    assert_eq!(p.needs().subject_properties, vec!["wijkcodes".to_owned()]);
    let mut r = request(json!({}));
    r["subject"]["properties"] = json!({"wijkcodes": ["WK026801", "WK026802"]});
    let req = sluis::policy::parse_request(&r).unwrap_or_else(|e| panic!("{e}"));
    let d = p.evaluate(&req);
    assert!(d.allowed);
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        d.obligations,
        vec![
            Obligation::DropFields {
                duty: "urn:d:drop".into(),
                fields: strings(&["bsn", "naam"]).into()
            },
            Obligation::PseudonymiseFields {
                duty: "urn:d:pseudo".into(),
                fields: strings(&["adres"]).into()
            },
            Obligation::FilterRows {
                duty: "urn:d:rows".into(),
                property: "wijkcode".into(),
                allowed: strings(&["WK026801"]).into()
            },
            Obligation::FilterRows {
                duty: "urn:d:own".into(),
                property: "wijkcode".into(),
                allowed: strings(&["WK026801", "WK026802"]).into()
            },
            Obligation::Attribution {
                duty: "urn:d:attr".into(),
                license: Some("CC-BY-4.0".into()),
                text: Some("Gemeente Nijmegen".into())
            },
            Obligation::Action {
                duty: "urn:d:pay".into(),
                action: "http://www.w3.org/ns/odrl/2/compensate".into()
            },
        ]
    );
    let json = respond(&p, r.clone());
    assert_eq!(
        json["context"]["obligations"][0],
        json!({"type": "dropFields", "duty": "urn:d:drop", "fields": ["bsn", "naam"]})
    );
    assert_eq!(
        json["context"]["obligations"][3]["allowed"],
        json!(["WK026801", "WK026802"])
    );

    // Fulfilled duties are not returned; a violated one deactivates the permission.
    r["context"] = json!({"duties": {"urn:d:pay": "Fulfilled"}});
    assert_eq!(
        respond(&p, r.clone())["context"]["obligations"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    r["context"] = json!({"duties": {"urn:d:pay": "Violated"}});
    let denied = respond(&p, r.clone());
    assert_eq!(denied["decision"], json!(false));
    assert_eq!(
        denied["context"]["findings"][0]["constraint"],
        json!("urn:d:pay")
    );

    // Without the subject property the filter cannot be built: deny, saying which property.
    r["context"] = json!({});
    r["subject"]["properties"] = json!({});
    let denied = respond(&p, r);
    assert_eq!(denied["decision"], json!(false));
    assert_eq!(denied["context"]["reason"], json!("undecidable"));
    assert!(denied.to_string().contains("wijkcodes"), "{denied}");
}

#[test]
fn policy_level_obligations_join_a_grant_and_a_violation_denies() {
    let p = compile(set(json!({
        "permission": [{"uid": "urn:test:p", "action": "read"}],
        "obligation": [{"uid": "urn:test:o", "action": duty_action("sluis:dropFields",
            json!([{"leftOperand": "sluis:field", "operator": "eq", "rightOperand": "bsn"}]))}]
    })));
    let r = respond(&p, request(json!({})));
    assert_eq!(r["context"]["obligations"][0]["type"], json!("dropFields"));
    let r = respond(&p, request(json!({"duties": {"urn:test:o": "Violated"}})));
    assert_eq!(r["decision"], json!(false));
    assert_eq!(r["context"]["reason"], json!("obligation_violated"));
}

#[test]
fn the_demo_policy_grants_gemeenten_for_their_purposes_only() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/oorlogsschade.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let p =
        CompiledPolicy::from_bytes("oorlogsschade.json", &bytes).unwrap_or_else(|e| panic!("{e}"));
    let ask = |groups: Value, purpose: &str| {
        respond(
            &p,
            json!({
                "subject": {"type": "party", "id": "urn:sluis:party:nijmegen", "properties": {"partOf": groups}},
                "action": {"name": "read"},
                "resource": {"type": "asset", "id": "urn:sluis:product:oorlogsschade"},
                "context": {"purpose": purpose}
            }),
        )
    };
    let gemeenten = json!(["urn:sluis:group:gemeenten"]);
    let ok = ask(gemeenten.clone(), "urn:sluis:purpose:erfgoedbeheer");
    assert_eq!(ok["decision"], json!(true));
    assert_eq!(
        ok["context"]["obligations"][0]["type"],
        json!("attribution")
    );
    assert_eq!(
        ask(gemeenten.clone(), "urn:sluis:purpose:beleidsonderzoek")["decision"],
        json!(true)
    );
    let commercial = ask(gemeenten.clone(), "urn:sluis:purpose:commercieel");
    assert_eq!(commercial["context"]["reason"], json!("prohibited"));
    assert_eq!(
        ask(gemeenten, "urn:sluis:purpose:marketing")["context"]["reason"],
        json!("no_permission")
    );
    assert_eq!(
        ask(json!([]), "urn:sluis:purpose:erfgoedbeheer")["decision"],
        json!(false)
    );
}

// ------------------------------------------------------------------------------------------- strictness

fn one_rule(constraint: Value) -> Value {
    set(json!({"permission": [
        {"uid": "urn:test:fine", "action": "read"},
        {"uid": "urn:test:broken", "action": "read", "constraint": [constraint]}
    ]}))
}

#[test]
fn unknown_terms_and_malformed_constraints_fail_the_load_naming_file_and_rule() {
    let cases = [
        (
            one_rule(atom("shoeSize", "eq", json!(42))),
            "unknown left operand 'shoeSize'",
        ),
        (
            one_rule(atom("purpose", "resembles", json!("x"))),
            "unknown operator 'resembles'",
        ),
        (
            one_rule(json!({"leftOperand": "purpose", "operator": "eq"})),
            "missing rightOperand",
        ),
        (
            one_rule(atom("purpose", "lt", json!("x"))),
            "operator lt does not apply to purpose",
        ),
        (
            one_rule(atom("dateTime", "lt", dt("2024-01-01T00:00:00"))),
            "time zone",
        ),
        (
            one_rule(atom(
                "dateTime",
                "lt",
                json!({"@value": "2024", "@type": "xsd:string"}),
            )),
            "xsd:dateTime",
        ),
        (
            one_rule(atom("sluis:dayOfWeek", "eq", json!(8))),
            "out of range",
        ),
        (one_rule(json!({"or": []})), "at least one operand"),
        (
            one_rule(json!({"and": [atom("purpose", "eq", json!("x"))], "leftOperand": "purpose"})),
            "not both",
        ),
        (
            one_rule(atom("sluis:field", "eq", json!("bsn"))),
            "only valid in a duty",
        ),
    ];
    for (policy, expected) in cases {
        let err = load_error(policy);
        assert!(
            err.contains("bad.json: permission[1] (urn:test:broken)"),
            "{err}"
        );
        assert!(err.contains(expected), "wanted '{expected}' in: {err}");
        assert!(!err.contains("urn:test:fine"), "{err}");
    }
}

#[test]
fn unknown_actions_properties_and_missing_parties_are_errors() {
    let err = load_error(set(
        json!({"permission": [{"uid": "urn:t:a", "action": "teleport"}]}),
    ));
    assert!(
        err.contains("urn:t:a") && err.contains("unknown action 'teleport'"),
        "{err}"
    );
    // A misspelt key would otherwise drop its constraints and widen the grant.
    let err = load_error(set(
        json!({"permission": [{"action": "read", "constraints": []}]}),
    ));
    assert!(
        err.contains("permission[0]") && err.contains("'constraints'"),
        "{err}"
    );
    let err = load_error(set(
        json!({"permission": [{"action": "read"}], "conflict": "maybe"}),
    ));
    assert!(err.contains("policy: unknown conflict strategy"), "{err}");
    let mut offer = set(json!({"permission": [{"uid": "urn:t:o", "action": "read"}]}));
    offer["@type"] = json!("Offer");
    assert!(load_error(offer).contains("needs an assigner"));
    let err = load_error(set(
        json!({"permission": [{"uid": "urn:t:d", "action": "read",
        "duty": [{"uid": "urn:t:duty", "action": duty_action("sluis:dropFields", json!([]))}]}]}),
    ));
    assert!(
        err.contains("urn:t:d") && err.contains("at least one sluis:field"),
        "{err}"
    );
    let err = load_error(json!({"@type": "Set", "permission": []}));
    assert!(err.contains("at least one"), "{err}");
}

#[test]
fn missing_context_denies_with_the_missing_key() {
    let p = with_constraint(atom("dateTime", "lt", dt("2030-01-01T00:00:00Z")));
    let r = respond(&p, request(json!({})));
    assert_eq!(r["decision"], json!(false));
    assert_eq!(r["context"]["reason"], json!("undecidable"));
    assert_eq!(
        r["context"]["findings"][0]["message"],
        json!("context.time missing")
    );
    assert_eq!(
        r["context"]["findings"][0]["constraint"],
        json!("urn:test:c:dateTime:lt")
    );
    // An unevaluable prohibition denies even when a permission holds.
    let p = compile(set(json!({
        "permission": [{"uid": "urn:t:p", "action": "read"}],
        "prohibition": [{"uid": "urn:t:x", "action": "read", "constraint": [atom("purpose", "eq", json!("urn:p:bad"))]}]
    })));
    let r = respond(&p, request(json!({})));
    assert_eq!(r["decision"], json!(false));
    assert!(
        r["context"]["reason_admin"]["en"]
            .as_str()
            .is_some_and(|s| s.contains("context.purpose missing")),
        "{r}"
    );
    assert_eq!(
        respond(&p, request(json!({"purpose": "urn:p:ok"})))["decision"],
        json!(true)
    );
}

#[test]
fn malformed_requests_are_rejected_not_decided() {
    let p = with_constraint(atom("purpose", "eq", json!("urn:p")));
    for bad in [
        json!({"action": {"name": "read"}, "resource": {"id": X}}),
        json!({"subject": {"id": ALICE}, "resource": {"id": X}}),
        request(json!({"time": "yesterday"})),
        request(json!({"purpose": 7})),
        request(json!({"duties": {"urn:d": "Maybe"}})),
    ] {
        assert!(evaluate_json(&p, &bad).is_err(), "accepted {bad}");
    }
}

#[test]
fn a_denial_names_the_rule_and_the_failing_constraint() {
    let p = with_constraint(json!({"uid": "urn:test:both", "and": [
        atom("purpose", "eq", json!("urn:p:a")),
        atom("recipient", "eq", json!("urn:r:b"))
    ]}));
    let r = respond(
        &p,
        request(json!({"purpose": "urn:p:a", "recipient": "urn:r:z"})),
    );
    assert_eq!(r["context"]["reason"], json!("no_permission"));
    let findings = r["context"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(findings.len(), 1, "{r}");
    assert_eq!(findings[0]["rule"], json!("urn:test:perm"));
    assert_eq!(findings[0]["constraint"], json!("urn:test:c:recipient:eq"));
}

// ------------------------------------------------------------------------------------ typed entry point

#[test]
fn the_typed_request_decides_like_the_json_one() {
    let p = with_constraint(atom("purpose", "isAnyOf", json!(["urn:p:a", "urn:p:b"])));
    let req = Request {
        subject: Entity {
            id: ALICE,
            ..Entity::default()
        },
        action: "read",
        resource: Entity {
            id: X,
            ..Entity::default()
        },
        context: Context {
            purpose: Some("urn:p:b"),
            time: RequestTime::parse("2024-01-01T00:00:00Z").ok(),
            ..Context::default()
        },
    };
    let d = p.evaluate(&req);
    assert!(d.allowed);
    assert_eq!(d.permitted_by.as_deref(), Some("urn:test:perm"));
    let denied = p.evaluate(&Request {
        action: "sell",
        ..req
    });
    assert!(!denied.allowed);
    assert_eq!(
        denied.denial.map(|d| d.reason),
        Some(DenyReason::NoPermission)
    );
}

// ------------------------------------------------------------------------------------------------- CLI

#[test]
fn cli_check_and_eval_exit_codes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    let req = dir.path().join("req.json");
    write(
        &good,
        &set(json!({"permission": [{"uid": "urn:t:p", "action": "read"}]})),
    );
    write(
        &bad,
        &set(json!({"permission": [{"uid": "urn:t:p", "action": "dance"}]})),
    );
    write(&req, &request(json!({})));
    assert_eq!(cli::check(std::slice::from_ref(&good)), 0);
    assert_eq!(cli::check(&[good.clone(), bad.clone()]), 2);
    assert_eq!(cli::check(&[dir.path().join("absent.json")]), 2);
    assert_eq!(cli::eval(&good, &req), 0);
    assert_eq!(cli::eval(&bad, &req), 2);
    assert_eq!(cli::eval(&good, &bad), 2, "a policy is not a request");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/oorlogsschade.json");
    assert_eq!(cli::check(&[demo]), 0);
}

// ----------------------------------------------------------------------------------------------- store

fn write(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
}

fn policy_for(action: &str) -> Value {
    set(json!({"permission": [{"uid": "urn:t:p", "action": action}]}))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn may(store: &PolicyStore, id: &str, action: &str) -> Option<bool> {
    let p = store.get(id)?;
    let mut r = request(json!({}));
    r["action"]["name"] = json!(action);
    evaluate_json(&p, &r).ok()?["decision"].as_bool()
}

#[test]
fn store_refuses_to_start_with_an_invalid_policy() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(&dir.path().join("a.json"), &policy_for("read"));
    write(&dir.path().join("b.json"), &policy_for("juggle"));
    let err = match PolicyStore::open(dir.path()) {
        Ok(_) => panic!("store opened with an invalid policy"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("b.json: permission[0] (urn:t:p): unknown action 'juggle'"),
        "{err}"
    );
}

#[test]
fn store_hot_reloads_and_keeps_the_last_valid_version() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file: PathBuf = dir.path().join("demo.json");
    write(&file, &policy_for("read"));
    std::fs::write(dir.path().join("notes.txt"), "not a policy").unwrap_or_else(|e| panic!("{e}"));
    let store = PolicyStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    store
        .watch(Duration::from_millis(50))
        .unwrap_or_else(|e| panic!("{e}"));
    let first = store
        .get("demo")
        .map(|p| p.version().to_owned())
        .unwrap_or_default();
    assert_eq!(first.len(), 64, "sha256 hex version");
    assert!(store.get("demo.json").is_some());
    assert_eq!(may(&store, "demo", "read"), Some(true));
    assert_eq!(may(&store, "demo", "write"), Some(false));

    write(&file, &policy_for("write"));
    wait_until("the edit to load", || {
        may(&store, "demo", "write") == Some(true)
    });
    assert_ne!(
        store.get("demo").map(|p| p.version().to_owned()),
        Some(first)
    );

    write(&file, &policy_for("moonwalk"));
    wait_until("the invalid edit to be reported", || {
        store.status().reload_failures == 1
    });
    let status = store.status();
    assert_eq!(
        may(&store, "demo", "write"),
        Some(true),
        "last valid version stays"
    );
    assert_eq!(status.errors.len(), 1);
    assert!(
        status.errors[0].contains("demo.json") && status.errors[0].contains("moonwalk"),
        "{:?}",
        status.errors
    );

    write(&dir.path().join("second.json"), &policy_for("read"));
    wait_until("a new file to load", || store.get("second").is_some());
    assert_eq!(
        store.status().reload_failures,
        1,
        "an unchanged invalid file is counted once"
    );

    write(&file, &policy_for("read"));
    wait_until("the fix to load", || {
        may(&store, "demo", "write") == Some(false)
    });
    assert!(store.status().errors.is_empty());
    assert_eq!(store.status().policies.len(), 2);

    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
    wait_until("the removal", || store.get("demo").is_none());
}
