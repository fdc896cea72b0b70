//! Reads an ODRL 2.2 policy in compact JSON-LD into the typed model. Strict by design: an unknown property,
//! term, operand, operator or action is an error naming the source and the rule, never something skipped,
//! because a skipped constraint would widen what the policy permits.

use serde_json::Value;

use super::model::{
    ActionRef, Atomic, ConflictStrategy, Constraint, Duty, LeftOperand, LogicalOp, Operator,
    Policy, PolicyKind, Reference, RightOperand, Rule, RuleKind,
};
use super::time::{XsdDuration, parse_date, parse_datetime};
use super::vocab::{self, Term};

/// One problem in one policy: which source, which rule (or `policy`), what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {rule}: {message}")]
pub struct PolicyError {
    pub source_name: String,
    pub rule: String,
    pub message: String,
}

/// Every problem found in one policy; a policy with any problem is not loaded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PolicyErrors(pub Vec<PolicyError>);

/// Metadata prefixes whose properties carry no policy semantics and may appear anywhere.
const ANNOTATION_PREFIXES: &[&str] = &[
    "dct:", "dcterms:", "rdfs:", "skos:", "schema:", "foaf:", "vcard:", "cc:",
];
const ANNOTATION_NAMESPACES: &[&str] = &[
    "http://purl.org/dc/terms/",
    "http://www.w3.org/2000/01/rdf-schema#",
    "http://www.w3.org/2004/02/skos/core#",
    "http://schema.org/",
];

const ODRL_CONTEXTS: &[&str] = &[
    "http://www.w3.org/ns/odrl.jsonld",
    "https://www.w3.org/ns/odrl.jsonld",
];

fn is_annotation(key: &str) -> bool {
    ANNOTATION_PREFIXES.iter().any(|p| key.starts_with(p))
        || ANNOTATION_NAMESPACES.iter().any(|p| key.starts_with(p))
}

type Res<T> = Result<T, String>;

/// Parses a policy document. `source_name` (usually the file name) is put in every error.
pub fn parse_policy(source_name: &str, doc: &Value) -> Result<Policy, PolicyErrors> {
    let mut p = Parser {
        source: source_name.to_owned(),
        prefixes: Vec::new(),
        errors: Vec::new(),
    };
    let policy = p.policy(doc);
    match policy {
        Some(policy) if p.errors.is_empty() => Ok(policy),
        _ => Err(PolicyErrors(p.errors)),
    }
}

struct Parser {
    source: String,
    /// Prefixes declared inline in `@context`.
    prefixes: Vec<(String, String)>,
    errors: Vec<PolicyError>,
}

/// Properties a policy may set for all its rules (ODRL 2.2 §2.7.1 policy-level inheritance).
#[derive(Default)]
struct Inherited {
    actions: Option<Value>,
    target: Option<Value>,
    assignee: Option<Value>,
    assigner: Option<Value>,
}

impl Parser {
    fn error(&mut self, rule: &str, message: impl Into<String>) {
        self.errors.push(PolicyError {
            source_name: self.source.clone(),
            rule: rule.to_owned(),
            message: message.into(),
        });
    }

    fn policy(&mut self, doc: &Value) -> Option<Policy> {
        let Some(obj) = doc.as_object() else {
            self.error("policy", "a policy must be a JSON object");
            return None;
        };
        if let Some(ctx) = obj.get("@context")
            && let Err(e) = self.context(ctx)
        {
            self.error("policy", e);
        }
        let mut uid = None;
        let mut kind = None;
        let mut conflict = ConflictStrategy::default();
        let mut profiles = Vec::new();
        let mut inherited = Inherited::default();
        let mut rule_lists: Vec<(RuleKind, &Value)> = Vec::new();
        for (key, value) in obj {
            let result: Res<()> = (|| {
                match key.as_str() {
                    "@context" => {}
                    "@id" | "uid" => uid = Some(self.iri(value)?),
                    "@type" => kind = Some(policy_kind(value)?),
                    k if is_annotation(k) => {}
                    k => match vocab::term(k) {
                        Term::Odrl("uid") => uid = Some(self.iri(value)?),
                        Term::Odrl("profile") => {
                            for v in as_list(value) {
                                profiles.push(self.iri(v)?);
                            }
                        }
                        Term::Odrl("conflict") => conflict = conflict_strategy(&self.iri(value)?)?,
                        Term::Odrl("permission") => rule_lists.push((RuleKind::Permission, value)),
                        Term::Odrl("prohibition") => {
                            rule_lists.push((RuleKind::Prohibition, value))
                        }
                        Term::Odrl("obligation") => rule_lists.push((RuleKind::Obligation, value)),
                        Term::Odrl("action") => inherited.actions = Some(value.clone()),
                        Term::Odrl("target") => inherited.target = Some(value.clone()),
                        Term::Odrl("assignee") => inherited.assignee = Some(value.clone()),
                        Term::Odrl("assigner") => inherited.assigner = Some(value.clone()),
                        Term::Odrl("inheritFrom") => {
                            return Err(
                                "inheritFrom is not supported: write the policy out in full".into(),
                            );
                        }
                        _ => return Err(format!("unknown policy property '{k}'")),
                    },
                }
                Ok(())
            })();
            if let Err(e) = result {
                self.error("policy", e);
            }
        }
        let Some(kind) = kind else {
            self.error("policy", "missing @type (Set, Offer or Agreement)");
            return None;
        };
        let mut rules = Vec::new();
        for (rule_kind, list) in rule_lists {
            for (i, value) in as_list(list).enumerate() {
                let position = format!("{}[{i}]", rule_kind.as_str());
                let name = rule_name(&position, value);
                match self.rule(rule_kind, &position, &name, value, &inherited) {
                    Ok(rule) => rules.push(rule),
                    Err(e) => self.error(&name, e),
                }
            }
        }
        if rules.is_empty() && self.errors.is_empty() {
            self.error(
                "policy",
                "a policy needs at least one permission, prohibition or obligation",
            );
        }
        // ODRL 2.2 §2.1: an Offer names its assigner, an Agreement its assigner and assignee (on the policy
        // or on every rule).
        for rule in &rules {
            let name = rule.name.clone();
            if matches!(kind, PolicyKind::Offer | PolicyKind::Agreement)
                && rule.assigners.is_empty()
            {
                self.error(&name, format!("an {kind:?} needs an assigner"));
            }
            if kind == PolicyKind::Agreement && rule.assignees.is_empty() {
                self.error(&name, "an Agreement needs an assignee");
            }
        }
        Some(Policy {
            uid,
            kind,
            conflict,
            profiles,
            rules,
        })
    }

    fn context(&mut self, ctx: &Value) -> Res<()> {
        for item in as_list(ctx) {
            match item {
                // Remote contexts are not fetched; the ODRL one is built in, others only add terms the strict
                // property check rejects anyway.
                Value::String(s) if ODRL_CONTEXTS.contains(&s.as_str()) => {}
                Value::String(_) => {}
                Value::Object(map) => {
                    for (prefix, ns) in map {
                        match ns {
                            Value::String(ns) => self.prefixes.push((prefix.clone(), ns.clone())),
                            _ => {
                                return Err(format!(
                                    "@context term '{prefix}': only prefix declarations are supported"
                                ));
                            }
                        }
                    }
                }
                _ => return Err("@context must be a string, an object or a list of them".into()),
            }
        }
        Ok(())
    }

    fn iri(&self, v: &Value) -> Res<String> {
        match v {
            Value::String(s) => Ok(vocab::expand_iri(s, &self.prefixes)),
            Value::Object(m) => match m.get("@id") {
                Some(Value::String(s)) if m.len() == 1 => Ok(vocab::expand_iri(s, &self.prefixes)),
                _ => Err(format!("expected an IRI, got {v}")),
            },
            _ => Err(format!("expected an IRI, got {v}")),
        }
    }

    fn rule(
        &mut self,
        kind: RuleKind,
        position: &str,
        name: &str,
        value: &Value,
        inherited: &Inherited,
    ) -> Res<Rule> {
        let obj = value.as_object().ok_or("a rule must be an object")?;
        let label = match obj.get("uid").or_else(|| obj.get("@id")) {
            Some(v) => self.iri(v)?,
            None => position.to_owned(),
        };
        let mut rule = Rule {
            kind,
            label: label.clone(),
            name: name.to_owned(),
            actions: Vec::new(),
            targets: Vec::new(),
            assignees: Vec::new(),
            assigners: Vec::new(),
            constraints: Vec::new(),
            duties: Vec::new(),
        };
        let (mut saw_action, mut saw_target, mut saw_assignee, mut saw_assigner) =
            (false, false, false, false);
        for (key, v) in obj {
            match key.as_str() {
                "@id" | "uid" => {}
                "@type" => {
                    let expected = match kind {
                        RuleKind::Permission => "Permission",
                        RuleKind::Prohibition => "Prohibition",
                        RuleKind::Obligation => "Duty",
                    };
                    let t = self.iri(v)?;
                    let ok = matches!(vocab::term(&t), Term::Odrl(x) if x == expected || (kind == RuleKind::Obligation && x == "Obligation"));
                    if !ok {
                        return Err(format!("@type '{t}' does not match a {}", kind.as_str()));
                    }
                }
                k if is_annotation(k) => {}
                k => match vocab::term(k) {
                    Term::Odrl("uid") => {}
                    Term::Odrl("action") => {
                        saw_action = true;
                        rule.actions = self.actions(v, &label, kind == RuleKind::Obligation)?;
                    }
                    Term::Odrl("target") => {
                        saw_target = true;
                        rule.targets = self.references(v, "AssetCollection")?;
                    }
                    Term::Odrl("assignee") => {
                        saw_assignee = true;
                        rule.assignees = self.references(v, "PartyCollection")?;
                    }
                    Term::Odrl("assigner") => {
                        saw_assigner = true;
                        rule.assigners = self.references(v, "PartyCollection")?;
                    }
                    Term::Odrl("constraint") => {
                        for (i, c) in as_list(v).enumerate() {
                            rule.constraints.push(self.constraint(
                                c,
                                &format!("constraint[{i}]"),
                                false,
                            )?);
                        }
                    }
                    Term::Odrl("duty") if kind == RuleKind::Permission => {
                        for (i, d) in as_list(v).enumerate() {
                            rule.duties
                                .push(self.duty(d, &format!("{label}.duty[{i}]"))?);
                        }
                    }
                    Term::Odrl(t @ ("remedy" | "consequence" | "failure")) => {
                        return Err(format!("'{t}' is not supported by Sluis"));
                    }
                    _ => return Err(format!("unknown {} property '{k}'", kind.as_str())),
                },
            }
        }
        if !saw_action && let Some(a) = &inherited.actions {
            rule.actions = self.actions(a, &label, kind == RuleKind::Obligation)?;
        }
        if !saw_target && let Some(t) = &inherited.target {
            rule.targets = self.references(t, "AssetCollection")?;
        }
        if !saw_assignee && let Some(a) = &inherited.assignee {
            rule.assignees = self.references(a, "PartyCollection")?;
        }
        if !saw_assigner && let Some(a) = &inherited.assigner {
            rule.assigners = self.references(a, "PartyCollection")?;
        }
        if kind == RuleKind::Obligation {
            // A policy-level obligation's action is the duty to perform, carried like a permission's duty.
            if rule.actions.len() != 1 {
                return Err("an obligation needs exactly one action (the duty to perform)".into());
            }
            let action = rule.actions.remove(0);
            check_duty_action(&action)?;
            rule.duties.push(Duty {
                uid: Some(label.clone()).filter(|l| l != position),
                label: label.clone(),
                action,
            });
        }
        Ok(rule)
    }

    fn duty(&mut self, v: &Value, path: &str) -> Res<Duty> {
        let obj = v
            .as_object()
            .ok_or_else(|| format!("{path}: a duty must be an object"))?;
        let uid = match obj.get("uid").or_else(|| obj.get("@id")) {
            Some(u) => Some(self.iri(u)?),
            None => None,
        };
        let label = uid.clone().unwrap_or_else(|| path.to_owned());
        let mut action = None;
        for (key, value) in obj {
            match key.as_str() {
                "@id" | "uid" => {}
                "@type" => {
                    if !matches!(vocab::term(&self.iri(value)?), Term::Odrl("Duty")) {
                        return Err(format!("{label}: @type of a duty must be Duty"));
                    }
                }
                k if is_annotation(k) => {}
                k => match vocab::term(k) {
                    Term::Odrl("uid") => {}
                    Term::Odrl("action") => {
                        let mut actions = self.actions(value, &label, true)?;
                        if actions.len() != 1 {
                            return Err(format!("{label}: a duty has exactly one action"));
                        }
                        action = actions.pop();
                    }
                    Term::Odrl(
                        t @ ("constraint" | "consequence" | "target" | "assignee" | "assigner"),
                    ) => {
                        return Err(format!(
                            "{label}: '{t}' on a duty is not supported by Sluis"
                        ));
                    }
                    _ => return Err(format!("{label}: unknown duty property '{k}'")),
                },
            }
        }
        let action = action.ok_or_else(|| format!("{label}: a duty needs an action"))?;
        check_duty_action(&action).map_err(|e| format!("{label}: {e}"))?;
        Ok(Duty { uid, label, action })
    }

    /// Parses `action`; `duty` tells whether refinements are duty parameters or narrow the rule's action.
    fn actions(&mut self, v: &Value, label: &str, duty: bool) -> Res<Vec<ActionRef>> {
        let mut out = Vec::new();
        for item in as_list(v) {
            let (name, refinement) = match item {
                Value::String(s) => (s.as_str(), None),
                Value::Object(m) => {
                    let mut name = None;
                    let mut refinement = None;
                    for (k, val) in m {
                        match k.as_str() {
                            "@id"
                            | "rdf:value"
                            | "value"
                            | "http://www.w3.org/1999/02/22-rdf-syntax-ns#value" => {
                                name = match val {
                                    Value::String(s) => Some(s.as_str()),
                                    Value::Object(o) => o.get("@id").and_then(Value::as_str),
                                    _ => None,
                                };
                            }
                            k if matches!(vocab::term(k), Term::Odrl("refinement")) => {
                                refinement = Some(val)
                            }
                            k if is_annotation(k) => {}
                            k => return Err(format!("unknown action property '{k}'")),
                        }
                    }
                    (
                        name.ok_or_else(|| format!("action without a name: {item}"))?,
                        refinement,
                    )
                }
                _ => return Err(format!("an action must be a term or an object, got {item}")),
            };
            let id = vocab::action_id(name).ok_or_else(|| format!("unknown action '{name}'"))?;
            let mut refinements = Vec::new();
            if let Some(r) = refinement {
                for (i, c) in as_list(r).enumerate() {
                    let path =
                        format!("{label}.action[{}].refinement[{i}]", vocab::action_name(id));
                    refinements.push(self.constraint(c, &path, duty)?);
                }
            }
            out.push(ActionRef { id, refinements });
        }
        if out.is_empty() {
            return Err(
                "an empty action list permits nothing: leave `action` out for any action".into(),
            );
        }
        Ok(out)
    }

    fn references(&self, v: &Value, collection_type: &str) -> Res<Vec<Reference>> {
        let mut out = Vec::new();
        for item in as_list(v) {
            out.push(match item {
                Value::String(s) => Reference::Individual(vocab::expand_iri(s, &self.prefixes)),
                Value::Object(m) => {
                    let mut uid = None;
                    let mut is_collection = false;
                    let mut source = None;
                    for (k, val) in m {
                        match k.as_str() {
                            "@id" | "uid" => uid = Some(self.iri(val)?),
                            "@type" => {
                                let t = self.iri(val)?;
                                is_collection = match vocab::term(&t) {
                                    Term::Odrl(x) if x == collection_type => true,
                                    Term::Odrl("Party" | "Asset") => false,
                                    _ => {
                                        return Err(format!(
                                            "unexpected @type '{t}' (want {collection_type})"
                                        ));
                                    }
                                };
                            }
                            k if is_annotation(k) => {}
                            k => match vocab::term(k) {
                                Term::Odrl("uid") => uid = Some(self.iri(val)?),
                                Term::Odrl("source") => source = Some(self.iri(val)?),
                                Term::Odrl("refinement") => {
                                    return Err(
                                        "refinements on collections are not supported by Sluis"
                                            .into(),
                                    );
                                }
                                _ => {
                                    return Err(format!(
                                        "unknown property '{k}' on a party or asset"
                                    ));
                                }
                            },
                        }
                    }
                    let uid = uid.ok_or_else(|| format!("party or asset without uid: {item}"))?;
                    if is_collection {
                        Reference::Collection { uid, source }
                    } else {
                        Reference::Individual(uid)
                    }
                }
                _ => {
                    return Err(format!(
                        "a party or asset must be an IRI or an object, got {item}"
                    ));
                }
            });
        }
        Ok(out)
    }

    /// Parses a constraint; `path` names it when it has no uid. `refinement` admits the duty parameters.
    fn constraint(&mut self, v: &Value, path: &str, refinement: bool) -> Res<Constraint> {
        let obj = v
            .as_object()
            .ok_or_else(|| format!("{path}: a constraint must be an object"))?;
        let label = match obj.get("uid").or_else(|| obj.get("@id")) {
            Some(u) => self.iri(u)?,
            None => path.to_owned(),
        };
        let at = |msg: String| format!("{path}{}: {msg}", uid_suffix(&label, path));
        let mut left = None;
        let mut op = None;
        let mut right = None;
        let mut reference = None;
        let mut unit = None;
        let mut datatype = None;
        let mut logical: Option<(LogicalOp, &Value)> = None;
        for (key, value) in obj {
            match key.as_str() {
                "@id" | "uid" => {}
                "@type" => {
                    let t = self.iri(value).map_err(at)?;
                    if !matches!(
                        vocab::term(&t),
                        Term::Odrl("Constraint" | "LogicalConstraint")
                    ) {
                        return Err(at(format!("unexpected @type '{t}'")));
                    }
                }
                k if is_annotation(k) => {}
                k => match vocab::term(k) {
                    Term::Odrl("uid") => {}
                    Term::Odrl("leftOperand") => left = Some(value),
                    Term::Odrl("operator") => op = Some(value),
                    Term::Odrl("rightOperand") => right = Some(value),
                    Term::Odrl("rightOperandReference") => reference = Some(value),
                    Term::Odrl("unit") => unit = Some(self.iri(value).map_err(at)?),
                    Term::Odrl("dataType") => datatype = Some(self.iri(value).map_err(at)?),
                    Term::Odrl(t @ ("and" | "or" | "xone" | "andSequence")) => {
                        if logical.is_some() {
                            return Err(at("a logical constraint has exactly one operator".into()));
                        }
                        let lop = match t {
                            "and" => LogicalOp::And,
                            "or" => LogicalOp::Or,
                            "xone" => LogicalOp::Xone,
                            _ => LogicalOp::AndSequence,
                        };
                        logical = Some((lop, value));
                    }
                    Term::Odrl("status") => {
                        return Err(at("'status' is not supported by Sluis".into()));
                    }
                    _ => return Err(at(format!("unknown constraint property '{k}'"))),
                },
            }
        }
        if let Some((lop, list)) = logical {
            if left.is_some() || op.is_some() || right.is_some() || reference.is_some() {
                return Err(at(
                    "a constraint is either logical or atomic, not both".into()
                ));
            }
            let list = match list {
                Value::Object(m) if m.contains_key("@list") => &m["@list"],
                other => other,
            };
            let mut items = Vec::new();
            for (i, c) in as_list(list).enumerate() {
                let name = match lop {
                    LogicalOp::And => "and",
                    LogicalOp::Or => "or",
                    LogicalOp::Xone => "xone",
                    LogicalOp::AndSequence => "andSequence",
                };
                items.push(self.constraint(c, &format!("{path}.{name}[{i}]"), refinement)?);
            }
            if items.is_empty() {
                return Err(at("a logical constraint needs at least one operand".into()));
            }
            return Ok(Constraint::Logical {
                label,
                op: lop,
                items,
            });
        }
        let left = left.ok_or_else(|| at("missing leftOperand".into()))?;
        let left_name = self.iri(left).map_err(at)?;
        let left = left_operand(&left_name)
            .ok_or_else(|| at(format!("unknown left operand '{left_name}'")))?;
        if left.is_duty_parameter() != refinement {
            return Err(at(if refinement {
                format!("left operand '{left_name}' cannot refine a duty action")
            } else {
                format!("left operand '{left_name}' is only valid in a duty action's refinement")
            }));
        }
        let op_name = self
            .iri(op.ok_or_else(|| at("missing operator".into()))?)
            .map_err(at)?;
        let op = match vocab::term(&op_name) {
            Term::Odrl(t) => Operator::from_term(t),
            _ => None,
        }
        .ok_or_else(|| at(format!("unknown operator '{op_name}'")))?;
        let right = match (right, reference) {
            (Some(r), None) => self
                .right_operand(&left, r, datatype.as_deref())
                .map_err(at)?,
            (None, Some(r)) => RightOperand::Reference(self.iri(r).map_err(at)?),
            (None, None) => return Err(at("missing rightOperand".into())),
            (Some(_), Some(_)) => {
                return Err(at(
                    "rightOperand and rightOperandReference exclude each other".into(),
                ));
            }
        };
        Ok(Constraint::Atomic(Atomic {
            label,
            left,
            op,
            right,
            unit,
        }))
    }

    fn right_operand(
        &self,
        left: &LeftOperand,
        v: &Value,
        datatype: Option<&str>,
    ) -> Res<RightOperand> {
        match v {
            Value::Array(items) => {
                let list: Res<Vec<_>> = items
                    .iter()
                    .map(|i| self.right_operand(left, i, datatype))
                    .collect();
                Ok(RightOperand::List(list?))
            }
            Value::Object(m) if m.contains_key("@list") => {
                self.right_operand(left, &m["@list"], datatype)
            }
            Value::Object(m) if m.contains_key("@id") => {
                if m.len() != 1 {
                    return Err(format!("unexpected properties beside @id in {v}"));
                }
                Ok(RightOperand::Text(self.iri(v)?))
            }
            Value::Object(m) if m.contains_key("@value") => {
                let ty = match m.get("@type") {
                    Some(t) => Some(self.iri(t)?),
                    None => None,
                };
                if m.keys()
                    .any(|k| !matches!(k.as_str(), "@value" | "@type" | "@language"))
                {
                    return Err(format!("unexpected properties in value object {v}"));
                }
                self.literal(left, &m["@value"], ty.as_deref().or(datatype))
            }
            Value::Object(_) => Err(format!(
                "a right operand object needs @value, @id or @list: {v}"
            )),
            _ => self.literal(left, v, datatype),
        }
    }

    /// Types a literal for its left operand; the datatype, when given, must fit the operand.
    fn literal(&self, left: &LeftOperand, v: &Value, datatype: Option<&str>) -> Res<RightOperand> {
        let xsd = datatype.map(|t| {
            t.strip_prefix("http://www.w3.org/2001/XMLSchema#")
                .unwrap_or(t)
        });
        let text = || match v {
            Value::String(s) => Ok(s.as_str()),
            _ => Err(format!("expected a string for {}, got {v}", left.name())),
        };
        match left {
            LeftOperand::DateTime => match xsd {
                Some("dateTime" | "dateTimeStamp") => {
                    Ok(RightOperand::DateTime(parse_datetime(text()?)?))
                }
                Some("date") => parse_date(text()?).map(|(a, b)| RightOperand::Date(a, b)),
                None => {
                    let s = text()?;
                    if s.len() > 10 {
                        Ok(RightOperand::DateTime(parse_datetime(s)?))
                    } else {
                        parse_date(s).map(|(a, b)| RightOperand::Date(a, b))
                    }
                }
                Some(t) => Err(format!(
                    "dateTime compares with xsd:dateTime or xsd:date, not {t}"
                )),
            },
            LeftOperand::ElapsedTime => match xsd {
                None | Some("duration" | "dayTimeDuration") => {
                    Ok(RightOperand::Duration(XsdDuration::parse(text()?)?))
                }
                Some(t) => Err(format!("elapsedTime compares with xsd:duration, not {t}")),
            },
            LeftOperand::Count | LeftOperand::DayOfWeek | LeftOperand::HourOfDay => {
                let integer_types = [
                    "integer",
                    "int",
                    "long",
                    "short",
                    "nonNegativeInteger",
                    "positiveInteger",
                    "unsignedInt",
                    "decimal",
                ];
                if let Some(t) = xsd
                    && !integer_types.contains(&t)
                {
                    return Err(format!("{} compares with integers, not {t}", left.name()));
                }
                let n = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                n.map(RightOperand::Integer)
                    .ok_or_else(|| format!("{} needs an integer, got {v}", left.name()))
            }
            _ => {
                if let Some(t) = xsd
                    && !matches!(t, "string" | "anyURI" | "token" | "normalizedString")
                {
                    return Err(format!(
                        "{} compares with strings or IRIs, not {t}",
                        left.name()
                    ));
                }
                let s = text()?;
                Ok(RightOperand::Text(match left {
                    // Free text and field names are literals, never IRIs to expand.
                    LeftOperand::AttributionText
                    | LeftOperand::License
                    | LeftOperand::Field
                    | LeftOperand::RowProperty
                    | LeftOperand::RowValue
                    | LeftOperand::Spatial => s.to_owned(),
                    _ => vocab::expand_iri(s, &self.prefixes),
                }))
            }
        }
    }
}

fn uid_suffix(label: &str, path: &str) -> String {
    if label == path {
        String::new()
    } else {
        format!(" ({label})")
    }
}

fn rule_name(position: &str, value: &Value) -> String {
    match value
        .get("uid")
        .or_else(|| value.get("@id"))
        .and_then(Value::as_str)
    {
        Some(uid) => format!("{position} ({uid})"),
        None => position.to_owned(),
    }
}

/// A JSON value as a list: arrays are themselves, anything else a list of one.
pub(crate) fn as_list(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(items) => Box::new(items.iter()),
        other => Box::new(std::iter::once(other)),
    }
}

fn policy_kind(v: &Value) -> Res<PolicyKind> {
    let t = v.as_str().ok_or("@type must be a string")?;
    match vocab::term(t) {
        Term::Odrl("Set" | "Policy") => Ok(PolicyKind::Set),
        Term::Odrl("Offer") => Ok(PolicyKind::Offer),
        Term::Odrl("Agreement") => Ok(PolicyKind::Agreement),
        _ => Err(format!(
            "unknown policy @type '{t}' (Set, Offer or Agreement)"
        )),
    }
}

fn conflict_strategy(s: &str) -> Res<ConflictStrategy> {
    match vocab::term(s) {
        Term::Odrl("perm") => Ok(ConflictStrategy::Perm),
        Term::Odrl("prohibit") => Ok(ConflictStrategy::Prohibit),
        Term::Odrl("invalid") => Ok(ConflictStrategy::Invalid),
        _ => Err(format!(
            "unknown conflict strategy '{s}' (perm, prohibit or invalid)"
        )),
    }
}

fn left_operand(name: &str) -> Option<LeftOperand> {
    Some(match vocab::term(name) {
        Term::Odrl("dateTime") => LeftOperand::DateTime,
        Term::Odrl("purpose") => LeftOperand::Purpose,
        Term::Odrl("recipient") => LeftOperand::Recipient,
        Term::Odrl("spatial") => LeftOperand::Spatial,
        Term::Odrl("count") => LeftOperand::Count,
        Term::Odrl("elapsedTime") => LeftOperand::ElapsedTime,
        Term::Odrl("event") => LeftOperand::Event,
        // Not ODRL terms: the bare spellings are accepted as shorthand for the Sluis profile's.
        Term::Sluis("dayOfWeek") | Term::Odrl("dayOfWeek") => LeftOperand::DayOfWeek,
        Term::Sluis("hourOfDay") | Term::Odrl("hourOfDay") => LeftOperand::HourOfDay,
        Term::Sluis("field") => LeftOperand::Field,
        Term::Sluis("rowProperty") => LeftOperand::RowProperty,
        Term::Sluis("rowValue") => LeftOperand::RowValue,
        Term::Sluis("license") => LeftOperand::License,
        Term::Sluis("attributionText") => LeftOperand::AttributionText,
        _ => return None,
    })
}

/// Duty actions the enforcement point can be told about: the Sluis profile's and every ODRL action (those
/// come back as `Obligation::Action`). Duty parameters are only meaningful on the profile's actions.
fn check_duty_action(action: &ActionRef) -> Res<()> {
    let name = vocab::action_name(action.id);
    let allowed: &[LeftOperand] = match name {
        vocab::ACTION_DROP_FIELDS | vocab::ACTION_PSEUDONYMISE_FIELDS => &[LeftOperand::Field],
        vocab::ACTION_FILTER_ROWS => &[LeftOperand::RowProperty, LeftOperand::RowValue],
        vocab::ACTION_ATTRIBUTE => &[LeftOperand::License, LeftOperand::AttributionText],
        _ => &[],
    };
    for r in &action.refinements {
        match r {
            Constraint::Atomic(a) if allowed.contains(&a.left) => {}
            Constraint::Atomic(a) => {
                return Err(format!(
                    "{}: '{}' is not a parameter of {name}",
                    a.label,
                    a.left.name()
                ));
            }
            Constraint::Logical { label, .. } => {
                return Err(format!(
                    "{label}: duty parameters are plain constraints, not logical ones"
                ));
            }
        }
    }
    Ok(())
}
