//! Compiles the typed model once, at load, into the form the request path evaluates: action sets as bit
//! masks, dates as integers, any combination of dateTime constraints as one interval index, day/hour
//! operands as bit masks, and value sets ready for lookup. Type errors (an operator that makes no sense for
//! its operand) are found here and reported like parse errors.

use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::{
    Atomic, ConflictStrategy, Constraint, Duty, LeftOperand, LogicalOp, Operator, Policy,
    PolicyKind, Reference, RightOperand, Rule, RuleKind,
};
use super::obligation::DutySpec;
use super::parse::{PolicyError, PolicyErrors, parse_policy};
use super::time::{IntervalSet, Nanos, XsdDuration};

/// A policy ready for evaluation. Immutable; share it as `Arc<CompiledPolicy>`.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub(crate) id: String,
    pub(crate) uid: Option<String>,
    pub(crate) version: String,
    pub(crate) kind: PolicyKind,
    pub(crate) conflict: ConflictStrategy,
    pub(crate) profiles: Vec<String>,
    pub(crate) permissions: Vec<CompiledRule>,
    pub(crate) prohibitions: Vec<CompiledRule>,
    pub(crate) obligations: Vec<CompiledRule>,
    pub(crate) needs: Needs,
}

/// What a policy reads from a request, so that the caller fetches only that (counters in particular).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// `context.time` (dateTime, dayOfWeek, hourOfDay).
    pub time: bool,
    pub purpose: bool,
    pub recipient: bool,
    pub spatial: bool,
    pub event: bool,
    pub elapsed_time: bool,
    /// `context.types`, for `isA`.
    pub types: bool,
    /// Counting windows of `count` constraints, each to be supplied in `context.count` under its key.
    pub counters: Vec<CounterWindow>,
    /// Subject properties that duty parameters take their values from.
    pub subject_properties: Vec<String>,
}

/// One use counter a policy needs: how many times the subject already exercised the action on the target
/// within `period` before now (`None`: ever). The caller supplies it as `context.count[key]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterWindow {
    /// The `unit` written on the `count` constraint (an xsd:duration such as `P1D`), or `total`.
    pub key: String,
    pub period: Option<XsdDuration>,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) label: Arc<str>,
    pub(crate) actions: ActionMatch,
    pub(crate) targets: Vec<RefMatch>,
    pub(crate) assignees: Vec<RefMatch>,
    /// The rule's constraints, all of which must hold; `None` when it has none.
    pub(crate) condition: Option<Cond>,
    pub(crate) duties: Vec<CompiledDuty>,
}

#[derive(Debug)]
pub(crate) enum ActionMatch {
    Any,
    /// Bits of the actions the rule names; a request action matches when one of its ancestors is set.
    Mask(u64),
    /// Actions with refinements: each bit with the condition that narrows it.
    Refined(Vec<(u64, Option<Cond>)>),
}

#[derive(Debug)]
pub(crate) enum RefMatch {
    Individual(Box<str>),
    Collection(Box<str>),
}

#[derive(Debug)]
pub(crate) struct CompiledDuty {
    pub(crate) uid: Option<Box<str>>,
    pub(crate) label: Arc<str>,
    pub(crate) spec: DutySpec,
}

#[derive(Debug)]
pub(crate) enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    ExactlyOne(Vec<Cond>),
    Leaf { label: Arc<str>, check: Check },
}

#[derive(Debug)]
pub(crate) enum Check {
    /// Instants where the (possibly combined) dateTime constraint holds.
    Time(IntervalSet),
    /// Bit d-1 set: the constraint holds on ISO day d.
    DayOfWeek(u8),
    /// Bit h set: the constraint holds in hour h.
    HourOfDay(u32),
    Count {
        window: usize,
        pred: NumPred,
    },
    Elapsed(NumPred),
    Text {
        operand: TextOperand,
        op: TextOp,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOperand {
    Purpose,
    Recipient,
    Spatial,
    Event,
}

impl TextOperand {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TextOperand::Purpose => "purpose",
            TextOperand::Recipient => "recipient",
            TextOperand::Spatial => "spatial",
            TextOperand::Event => "event",
        }
    }
}

#[derive(Debug)]
pub(crate) enum TextOp {
    Eq(Box<str>),
    Neq(Box<str>),
    IsA(Box<str>),
    HasPart(StrSet),
    IsPartOf(StrSet),
    IsAllOf(StrSet),
    IsAnyOf(StrSet),
    IsNoneOf(StrSet),
}

/// Integer predicates (counts, and durations in nanoseconds).
#[derive(Debug)]
pub(crate) enum NumPred {
    /// Inclusive bounds.
    Range(i128, i128),
    In(Vec<i128>),
    NotIn(Vec<i128>),
}

impl NumPred {
    pub(crate) fn holds(&self, v: i128) -> bool {
        match self {
            NumPred::Range(lo, hi) => *lo <= v && v <= *hi,
            NumPred::In(set) => set.contains(&v),
            NumPred::NotIn(set) => !set.contains(&v),
        }
    }
}

/// A sorted set of strings: linear scan when small (faster than hashing), binary search when large.
#[derive(Debug, Clone)]
pub(crate) struct StrSet(Vec<Box<str>>);

impl StrSet {
    fn new(mut items: Vec<Box<str>>) -> StrSet {
        items.sort_unstable();
        items.dedup();
        StrSet(items)
    }

    pub(crate) fn contains(&self, s: &str) -> bool {
        if self.0.len() <= 8 {
            self.0.iter().any(|i| &**i == s)
        } else {
            self.0.binary_search_by(|i| (**i).cmp(s)).is_ok()
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }
}

impl CompiledPolicy {
    /// Parses and compiles a policy from file bytes; `source_name` (the file name) names every error, and the
    /// version is the SHA-256 of the bytes.
    pub fn from_bytes(source_name: &str, bytes: &[u8]) -> Result<CompiledPolicy, PolicyErrors> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
            PolicyErrors(vec![PolicyError {
                source_name: source_name.to_owned(),
                rule: "policy".into(),
                message: format!("not valid JSON: {e}"),
            }])
        })?;
        let version = hex::encode(Sha256::digest(bytes));
        CompiledPolicy::compile(source_name, &doc, version)
    }

    /// Parses and compiles a policy already read as JSON; `version` is whatever the caller tracks it by.
    pub fn from_json(
        source_name: &str,
        doc: &Value,
        version: impl Into<String>,
    ) -> Result<CompiledPolicy, PolicyErrors> {
        CompiledPolicy::compile(source_name, doc, version.into())
    }

    fn compile(
        source_name: &str,
        doc: &Value,
        version: String,
    ) -> Result<CompiledPolicy, PolicyErrors> {
        let model = parse_policy(source_name, doc)?;
        compile_model(source_name, model, version)
    }

    /// The name the policy was loaded under (file name without `.json` in the store).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The policy's own `uid`, if it has one.
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// SHA-256 (hex) of the source bytes, or the caller's version for `from_json`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    pub fn conflict(&self) -> ConflictStrategy {
        self.conflict
    }

    /// The ODRL profiles the policy declares.
    pub fn profiles(&self) -> &[String] {
        &self.profiles
    }

    /// What the policy reads from a request.
    pub fn needs(&self) -> &Needs {
        &self.needs
    }

    pub(crate) fn set_id(&mut self, id: &str) {
        id.clone_into(&mut self.id);
    }
}

fn compile_model(
    source_name: &str,
    model: Policy,
    version: String,
) -> Result<CompiledPolicy, PolicyErrors> {
    let mut compiler = Compiler {
        needs: Needs::default(),
    };
    let mut errors = Vec::new();
    let mut permissions = Vec::new();
    let mut prohibitions = Vec::new();
    let mut obligations = Vec::new();
    for rule in &model.rules {
        match compiler.rule(rule) {
            Ok(compiled) => match rule.kind {
                RuleKind::Permission => permissions.push(compiled),
                RuleKind::Prohibition => prohibitions.push(compiled),
                RuleKind::Obligation => obligations.push(compiled),
            },
            Err(message) => errors.push(PolicyError {
                source_name: source_name.to_owned(),
                rule: rule.name.clone(),
                message,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(PolicyErrors(errors));
    }
    Ok(CompiledPolicy {
        id: source_name.to_owned(),
        uid: model.uid,
        version,
        kind: model.kind,
        conflict: model.conflict,
        profiles: model.profiles,
        permissions,
        prohibitions,
        obligations,
        needs: compiler.needs,
    })
}

struct Compiler {
    needs: Needs,
}

impl Compiler {
    fn rule(&mut self, rule: &Rule) -> Result<CompiledRule, String> {
        let actions = if rule.kind == RuleKind::Obligation || rule.actions.is_empty() {
            ActionMatch::Any
        } else if rule.actions.iter().all(|a| a.refinements.is_empty()) {
            ActionMatch::Mask(rule.actions.iter().fold(0, |m, a| m | 1 << a.id))
        } else {
            let mut refined = Vec::new();
            for a in &rule.actions {
                refined.push((1u64 << a.id, self.all(&a.refinements)?));
            }
            ActionMatch::Refined(refined)
        };
        let duties = rule
            .duties
            .iter()
            .map(|d| self.duty(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompiledRule {
            label: Arc::from(rule.label.as_str()),
            actions,
            targets: rule.targets.iter().map(ref_match).collect(),
            assignees: rule.assignees.iter().map(ref_match).collect(),
            condition: self.all(&rule.constraints)?,
            duties,
        })
    }

    fn duty(&mut self, duty: &Duty) -> Result<CompiledDuty, String> {
        let spec = DutySpec::compile(&duty.action).map_err(|e| format!("{}: {e}", duty.label))?;
        if let Some(p) = spec.subject_property()
            && !self.needs.subject_properties.iter().any(|s| s == p)
        {
            self.needs.subject_properties.push(p.to_owned());
        }
        Ok(CompiledDuty {
            uid: duty.uid.as_deref().map(Box::from),
            label: Arc::from(duty.label.as_str()),
            spec,
        })
    }

    /// The conjunction of a constraint list (a rule's or a refinement's).
    fn all(&mut self, constraints: &[Constraint]) -> Result<Option<Cond>, String> {
        let mut items = constraints
            .iter()
            .map(|c| self.constraint(c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match items.len() {
            0 => None,
            1 => items.pop(),
            _ => Some(merge_times(Cond::All(items), "constraint")),
        })
    }

    fn constraint(&mut self, c: &Constraint) -> Result<Cond, String> {
        match c {
            Constraint::Atomic(a) => {
                let check = self.atomic(a).map_err(|e| format!("{}: {e}", a.label))?;
                Ok(Cond::Leaf {
                    label: Arc::from(a.label.as_str()),
                    check,
                })
            }
            Constraint::Logical { label, op, items } => {
                let items = items
                    .iter()
                    .map(|c| self.constraint(c))
                    .collect::<Result<Vec<_>, _>>()?;
                // andSequence fixes an order of checking; at one decision instant it holds exactly when
                // all its operands hold.
                let cond = match op {
                    LogicalOp::And | LogicalOp::AndSequence => Cond::All(items),
                    LogicalOp::Or => Cond::Any(items),
                    LogicalOp::Xone => Cond::ExactlyOne(items),
                };
                Ok(merge_times(cond, label))
            }
        }
    }

    fn atomic(&mut self, a: &Atomic) -> Result<Check, String> {
        let op = a.op;
        let not_for = || format!("operator {} does not apply to {}", op.name(), a.left.name());
        if a.unit.is_some() && a.left != LeftOperand::Count {
            return Err(format!(
                "unit is only used on count, not on {}",
                a.left.name()
            ));
        }
        if let RightOperand::Reference(r) = &a.right {
            return Err(format!(
                "rightOperandReference ({r}) is only supported in sluis:filterRows"
            ));
        }
        match a.left {
            LeftOperand::DateTime => {
                self.needs.time = true;
                Ok(Check::Time(time_set(op, &a.right).ok_or_else(not_for)?))
            }
            LeftOperand::DayOfWeek => {
                self.needs.time = true;
                let pred = num_pred(op, &a.right, 1).ok_or_else(not_for)?;
                check_range(&a.right, 1, 7, "dayOfWeek (1 = Monday ... 7 = Sunday)")?;
                Ok(Check::DayOfWeek(
                    (1..=7)
                        .filter(|d| pred.holds(*d))
                        .fold(0u8, |m, d| m | 1 << (d - 1)),
                ))
            }
            LeftOperand::HourOfDay => {
                self.needs.time = true;
                let pred = num_pred(op, &a.right, 1).ok_or_else(not_for)?;
                check_range(&a.right, 0, 23, "hourOfDay (0-23)")?;
                Ok(Check::HourOfDay(
                    (0..=23)
                        .filter(|h| pred.holds(*h))
                        .fold(0u32, |m, h| m | 1 << h),
                ))
            }
            LeftOperand::Count => {
                check_range(&a.right, 0, i128::from(i64::MAX), "count")?;
                let pred = num_pred(op, &a.right, 1).ok_or_else(not_for)?;
                let (key, period) = match &a.unit {
                    None => ("total".to_owned(), None),
                    Some(u) => {
                        let d = XsdDuration::parse(u)
                            .map_err(|e| format!("unit of count must be a period: {e}"))?;
                        if d.months < 0 || d.nanos < 0 || (d.months == 0 && d.nanos == 0) {
                            return Err(format!(
                                "unit of count must be a positive period, not {u}"
                            ));
                        }
                        (u.clone(), Some(d))
                    }
                };
                let window = match self.needs.counters.iter().position(|c| c.key == key) {
                    Some(i) => i,
                    None => {
                        self.needs.counters.push(CounterWindow { key, period });
                        self.needs.counters.len() - 1
                    }
                };
                Ok(Check::Count { window, pred })
            }
            LeftOperand::ElapsedTime => {
                self.needs.elapsed_time = true;
                Ok(Check::Elapsed(
                    elapsed_pred(op, &a.right)?.ok_or_else(not_for)?,
                ))
            }
            LeftOperand::Purpose
            | LeftOperand::Recipient
            | LeftOperand::Spatial
            | LeftOperand::Event => {
                let operand = match a.left {
                    LeftOperand::Purpose => {
                        self.needs.purpose = true;
                        TextOperand::Purpose
                    }
                    LeftOperand::Recipient => {
                        self.needs.recipient = true;
                        TextOperand::Recipient
                    }
                    LeftOperand::Spatial => {
                        self.needs.spatial = true;
                        TextOperand::Spatial
                    }
                    _ => {
                        self.needs.event = true;
                        TextOperand::Event
                    }
                };
                if op == Operator::IsA {
                    self.needs.types = true;
                }
                Ok(Check::Text {
                    operand,
                    op: text_op(op, &a.right)?.ok_or_else(not_for)?,
                })
            }
            LeftOperand::Field
            | LeftOperand::RowProperty
            | LeftOperand::RowValue
            | LeftOperand::License
            | LeftOperand::AttributionText => Err(format!("{} is a duty parameter", a.left.name())),
        }
    }
}

fn ref_match(r: &Reference) -> RefMatch {
    match r {
        Reference::Individual(iri) => RefMatch::Individual(iri.as_str().into()),
        Reference::Collection { uid, .. } => RefMatch::Collection(uid.as_str().into()),
    }
}

/// Decides from (operands containing an instant, operand count) whether the combination contains it.
type KeepFn = fn(usize, usize) -> bool;

/// Collapses a logical node whose operands are all time sets into one time set, so that any and/or/xone
/// tree over dateTime (the 262-window policy) is answered by one binary search.
fn merge_times(cond: Cond, label: &str) -> Cond {
    let (items, keep): (&Vec<Cond>, KeepFn) = match &cond {
        Cond::All(items) => (items, |n, total| n == total),
        Cond::Any(items) => (items, |n, _| n >= 1),
        Cond::ExactlyOne(items) => (items, |n, _| n == 1),
        Cond::Leaf { .. } => return cond,
    };
    let sets: Option<Vec<&IntervalSet>> = items
        .iter()
        .map(|c| match c {
            Cond::Leaf {
                check: Check::Time(s),
                ..
            } => Some(s),
            _ => None,
        })
        .collect();
    match sets {
        Some(sets) if !sets.is_empty() => {
            let total = sets.len();
            let merged = IntervalSet::combine(&sets, |n| keep(n, total));
            Cond::Leaf {
                label: Arc::from(label),
                check: Check::Time(merged),
            }
        }
        _ => cond,
    }
}

fn time_set(op: Operator, right: &RightOperand) -> Option<IntervalSet> {
    // Instants are integers (ns), so "after b" is "from b + 1" and every set is made of half-open intervals.
    let (start, end): (Nanos, Nanos) = match right {
        RightOperand::DateTime(b) => (*b, *b + 1),
        RightOperand::Date(s, e) => (*s, *e),
        _ => return None,
    };
    let set = match op {
        Operator::Eq => IntervalSet::between(Some(start), Some(end)),
        Operator::Neq => {
            IntervalSet::combine(&[&IntervalSet::between(Some(start), Some(end))], |n| n == 0)
        }
        Operator::Lt => IntervalSet::between(None, Some(start)),
        Operator::Lteq => IntervalSet::between(None, Some(end)),
        Operator::Gt => IntervalSet::between(Some(end), None),
        Operator::Gteq => IntervalSet::between(Some(start), None),
        _ => return None,
    };
    Some(set)
}

fn integers(right: &RightOperand) -> Option<Vec<i128>> {
    match right {
        RightOperand::Integer(n) => Some(vec![i128::from(*n)]),
        RightOperand::List(items) => items
            .iter()
            .map(|i| match i {
                RightOperand::Integer(n) => Some(i128::from(*n)),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn check_range(right: &RightOperand, lo: i128, hi: i128, what: &str) -> Result<(), String> {
    match integers(right) {
        Some(values) if values.iter().all(|v| (lo..=hi).contains(v)) => Ok(()),
        Some(_) => Err(format!("value out of range for {what}")),
        None => Err(format!("{what} needs integer values")),
    }
}

/// `step` is the smallest difference between two values (1 for integers and for nanoseconds).
fn num_pred(op: Operator, right: &RightOperand, step: i128) -> Option<NumPred> {
    let values = integers(right)?;
    scalar_pred(op, &values, step)
}

fn scalar_pred(op: Operator, values: &[i128], step: i128) -> Option<NumPred> {
    let single = match values {
        [v] => Some(*v),
        _ => None,
    };
    Some(match op {
        Operator::Eq => NumPred::Range(single?, single?),
        Operator::Neq => NumPred::NotIn(vec![single?]),
        Operator::Lt => NumPred::Range(i128::MIN, single? - step),
        Operator::Lteq => NumPred::Range(i128::MIN, single?),
        Operator::Gt => NumPred::Range(single? + step, i128::MAX),
        Operator::Gteq => NumPred::Range(single?, i128::MAX),
        Operator::IsAnyOf => NumPred::In(values.to_vec()),
        Operator::IsNoneOf => NumPred::NotIn(values.to_vec()),
        _ => return None,
    })
}

fn elapsed_pred(op: Operator, right: &RightOperand) -> Result<Option<NumPred>, String> {
    let durations: Vec<&XsdDuration> = match right {
        RightOperand::Duration(d) => vec![d],
        RightOperand::List(items) => items
            .iter()
            .map(|i| match i {
                RightOperand::Duration(d) => Ok(d),
                _ => Err("elapsedTime needs xsd:duration values".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("elapsedTime needs an xsd:duration".into()),
    };
    if durations.iter().any(|d| d.months != 0) {
        return Err(
            "years and months have no fixed length: write the duration in days (P30D)".into(),
        );
    }
    let nanos: Vec<i128> = durations.iter().map(|d| d.nanos).collect();
    Ok(scalar_pred(op, &nanos, 1))
}

fn texts(right: &RightOperand) -> Result<Vec<Box<str>>, String> {
    match right {
        RightOperand::Text(s) => Ok(vec![s.as_str().into()]),
        RightOperand::List(items) => items
            .iter()
            .map(|i| match i {
                RightOperand::Text(s) => Ok(s.as_str().into()),
                other => Err(format!(
                    "expected a string or IRI in the list, got {other:?}"
                )),
            })
            .collect(),
        other => Err(format!(
            "expected a string, an IRI or a list of them, got {other:?}"
        )),
    }
}

fn text_op(op: Operator, right: &RightOperand) -> Result<Option<TextOp>, String> {
    let single = || -> Result<Box<str>, String> {
        match right {
            RightOperand::Text(s) => Ok(s.as_str().into()),
            _ => Err(format!("{} compares with one value, not a list", op.name())),
        }
    };
    let set = || texts(right).map(StrSet::new);
    Ok(Some(match op {
        Operator::Eq => TextOp::Eq(single()?),
        Operator::Neq => TextOp::Neq(single()?),
        Operator::IsA => TextOp::IsA(single()?),
        Operator::HasPart => TextOp::HasPart(set()?),
        Operator::IsPartOf => TextOp::IsPartOf(set()?),
        Operator::IsAllOf => TextOp::IsAllOf(set()?),
        Operator::IsAnyOf => TextOp::IsAnyOf(set()?),
        Operator::IsNoneOf => TextOp::IsNoneOf(set()?),
        Operator::Lt | Operator::Lteq | Operator::Gt | Operator::Gteq => return Ok(None),
    }))
}
