//! Evaluates a compiled policy against one request: the typed request the enforcement point builds without
//! JSON, and the decision with its explanation. Three-valued: a constraint whose input is missing is
//! "unknown", and unknown never permits. The fast path records nothing; a denial is evaluated a second time
//! to say why, so that permits pay nothing for explanations.

use std::sync::Arc;

use super::compile::{
    ActionMatch, Check, CompiledPolicy, CompiledRule, Cond, RefMatch, TextOp, TextOperand,
};
use super::model::ConflictStrategy;
use super::obligation::Obligation;
use super::time::{RequestTime, XsdDuration};
use super::vocab;

/// An access request: who (`subject`) wants to do what (`action`) with which asset (`resource`), and the
/// facts the policy's constraints read (`context`). Borrowed, so that building it copies nothing.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub subject: Entity<'a>,
    /// An ODRL action in any accepted form: `read`, `odrl:read`, `http://www.w3.org/ns/odrl/2/read`.
    pub action: &'a str,
    pub resource: Entity<'a>,
    pub context: Context<'a>,
}

/// A party or an asset as the request names it.
#[derive(Debug, Clone, Default)]
pub struct Entity<'a> {
    pub id: &'a str,
    /// Collections it belongs to (`properties.partOf`): matched against PartyCollection/AssetCollection uids.
    pub part_of: Vec<&'a str>,
    /// Other properties, as lists of strings; duty parameters (`sluis:subject.NAME`) read them.
    pub properties: Vec<(&'a str, Vec<&'a str>)>,
}

impl<'a> Entity<'a> {
    fn property(&self, name: &str) -> Option<&[&'a str]> {
        self.properties
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// The request facts constraints read. `None` means "not supplied": a constraint that needs it is unknown,
/// and the request is denied saying so.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// `context.time`: the evaluation instant (dateTime, dayOfWeek, hourOfDay).
    pub time: Option<RequestTime>,
    /// `context.purpose`: the purpose IRI the consumer declared.
    pub purpose: Option<&'a str>,
    /// `context.recipient`: the party that receives the data.
    pub recipient: Option<&'a str>,
    /// `context.spatial`: where the use happens, e.g. a CBS code (`GM0268`, `WK026801`, `BU02680101`).
    pub spatial: Option<&'a str>,
    /// `context.event`: the events in effect now.
    pub events: Option<Vec<&'a str>>,
    /// `context.elapsedTime`: time elapsed since the start of use (an xsd:duration).
    pub elapsed_time: Option<XsdDuration>,
    /// `context.count`: earlier uses per counting window key (see [`super::CounterWindow`]).
    pub counts: Vec<(&'a str, u64)>,
    /// `context.duties`: state of duties by uid.
    pub duties: Vec<(&'a str, DutyState)>,
    /// `context.types`: for `isA`, the classes each value is an instance of.
    pub types: Vec<(&'a str, Vec<&'a str>)>,
}

/// The state of a duty as the caller knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DutyState {
    /// Not yet fulfilled nor violated: the permission stands and the duty is an obligation.
    NonSet,
    /// Already done: the permission stands and the duty is not returned.
    Fulfilled,
    /// Violated: the permission is not active.
    Violated,
}

impl DutyState {
    pub fn parse(s: &str) -> Option<DutyState> {
        match s {
            "NonSet" | "Unset" | "Pending" => Some(DutyState::NonSet),
            "Fulfilled" => Some(DutyState::Fulfilled),
            "Violated" => Some(DutyState::Violated),
            _ => None,
        }
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The permission that granted the request (uid, or its position in the policy).
    pub permitted_by: Option<Arc<str>>,
    /// What the enforcement point must do before serving (only when allowed).
    pub obligations: Vec<Obligation>,
    /// Why the request was denied (only when denied).
    pub denial: Option<Denial>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    /// Every rule that did not grant, or that forbade, and why.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// An applicable prohibition holds.
    Prohibited,
    /// No permission applies and holds.
    NoPermission,
    /// A needed request value was missing or a duty could not be resolved.
    Undecidable,
    /// Permission and prohibition both hold and the policy's conflict strategy is `invalid`.
    Conflict,
    /// A policy-level obligation was violated.
    ObligationViolated,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Prohibited => "prohibited",
            DenyReason::NoPermission => "no_permission",
            DenyReason::Undecidable => "undecidable",
            DenyReason::Conflict => "conflict",
            DenyReason::ObligationViolated => "obligation_violated",
        }
    }
}

/// One reason a rule did not grant or did forbid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Arc<str>,
    /// `permission`, `prohibition` or `obligation`.
    pub kind: &'static str,
    /// The constraint concerned (uid or path), when it is about a constraint.
    pub constraint: Option<Arc<str>>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    False,
    True,
    Unknown,
}

/// Where constraint-level explanations go; `None` on the fast path.
type Notes<'n> = Option<&'n mut Vec<(Option<Arc<str>>, String)>>;

struct Env<'r, 'a> {
    req: &'r Request<'a>,
    policy: &'r CompiledPolicy,
    /// Ancestors-or-self mask of the request's action (0 for an action outside the vocabulary).
    action_mask: u64,
    action_id: Option<vocab::ActionId>,
}

/// A rule's state for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleState {
    NotApplicable,
    Holds,
    Fails,
    Unknown,
}

impl CompiledPolicy {
    /// Decides a request. Never fails: whatever cannot be evaluated denies, with the reason in `denial`.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let action_id = vocab::action_id(req.action);
        let env = Env {
            req,
            policy: self,
            action_mask: action_id.map(vocab::ancestors).unwrap_or(0),
            action_id,
        };
        match env.decide(None) {
            Ok((rule, obligations)) => Decision {
                allowed: true,
                permitted_by: Some(rule),
                obligations,
                denial: None,
            },
            Err(_) => {
                let mut findings = Vec::new();
                let reason = match env.decide(Some(&mut findings)) {
                    Err(reason) => reason,
                    // Both passes run the same code on the same input; should they ever differ, deny.
                    Ok(_) => DenyReason::Undecidable,
                };
                Decision {
                    allowed: false,
                    permitted_by: None,
                    obligations: Vec::new(),
                    denial: Some(Denial { reason, findings }),
                }
            }
        }
    }
}

impl Env<'_, '_> {
    /// The combining algorithm. With `findings`, every rule is evaluated to explain the outcome.
    fn decide(
        &self,
        mut findings: Option<&mut Vec<Finding>>,
    ) -> Result<(Arc<str>, Vec<Obligation>), DenyReason> {
        let explain = findings.is_some();
        let policy = self.policy;
        // Under `perm` a holding permission decides alone, so prohibitions are only read when none holds.
        let prohibitions_first = policy.conflict != ConflictStrategy::Perm;
        let mut prohibited = false;
        let mut prohibition_unknown = false;
        if prohibitions_first {
            (prohibited, prohibition_unknown) = self.prohibitions(findings.as_deref_mut());
            if policy.conflict == ConflictStrategy::Prohibit && !explain {
                if prohibited {
                    return Err(DenyReason::Prohibited);
                }
                if prohibition_unknown {
                    return Err(DenyReason::Undecidable);
                }
            }
        }
        let mut permission_unknown = false;
        let mut granted: Option<(Arc<str>, Vec<Obligation>)> = None;
        for rule in &policy.permissions {
            let mut notes = explain.then(Vec::new);
            let state = self.permission(rule, notes.as_mut());
            match state {
                RuleState::Holds => match self.resolve_duties(rule) {
                    Ok(obligations) => {
                        if granted.is_none() {
                            granted = Some((rule.label.clone(), obligations));
                        }
                        if !explain {
                            break;
                        }
                    }
                    Err(message) => {
                        permission_unknown = true;
                        if let Some(n) = notes.as_mut() {
                            n.push((None, message));
                        }
                    }
                },
                RuleState::Unknown => permission_unknown = true,
                RuleState::Fails | RuleState::NotApplicable => {}
            }
            if let (Some(f), Some(n)) = (findings.as_deref_mut(), notes) {
                push_findings(f, rule, "permission", n);
            }
        }
        if !prohibitions_first && (granted.is_none() || explain) {
            (prohibited, prohibition_unknown) = self.prohibitions(findings.as_deref_mut());
        }
        let Some((rule, mut obligations)) = granted else {
            return Err(if prohibited {
                DenyReason::Prohibited
            } else if permission_unknown || (prohibition_unknown && prohibitions_first) {
                DenyReason::Undecidable
            } else {
                DenyReason::NoPermission
            });
        };
        match policy.conflict {
            ConflictStrategy::Perm => {}
            ConflictStrategy::Prohibit if prohibited => return Err(DenyReason::Prohibited),
            ConflictStrategy::Invalid if prohibited => return Err(DenyReason::Conflict),
            _ if prohibition_unknown => return Err(DenyReason::Undecidable),
            _ => {}
        }
        self.policy_obligations(&mut obligations, findings)?;
        Ok((rule, obligations))
    }

    /// (some prohibition holds, some prohibition could not be evaluated)
    fn prohibitions(&self, mut findings: Option<&mut Vec<Finding>>) -> (bool, bool) {
        let explain = findings.is_some();
        let (mut holds, mut unknown) = (false, false);
        for rule in &self.policy.prohibitions {
            let mut notes = explain.then(Vec::new);
            match self.applicable_and_condition(rule, notes.as_mut()) {
                RuleState::Holds => {
                    holds = true;
                    if let Some(n) = notes.as_mut() {
                        n.push((
                            None,
                            "prohibition holds: action, parties, target and constraints all match"
                                .to_owned(),
                        ));
                    }
                }
                RuleState::Unknown => unknown = true,
                RuleState::Fails | RuleState::NotApplicable => {
                    // A prohibition that does not hold is no reason for a denial: keep the report short.
                    if let Some(n) = notes.as_mut() {
                        n.clear();
                    }
                }
            }
            if let (Some(f), Some(n)) = (findings.as_deref_mut(), notes) {
                push_findings(f, rule, "prohibition", n);
            }
            if holds && !explain {
                break;
            }
        }
        (holds, unknown)
    }

    /// Policy-level obligations whose parties, target and constraints match are added to a grant.
    fn policy_obligations(
        &self,
        out: &mut Vec<Obligation>,
        mut findings: Option<&mut Vec<Finding>>,
    ) -> Result<(), DenyReason> {
        let mut result = Ok(());
        for rule in &self.policy.obligations {
            let mut notes = findings.is_some().then(Vec::new);
            match self.applicable_and_condition(rule, notes.as_mut()) {
                RuleState::Holds => {
                    if let Some(state) =
                        self.duty_state(rule.duties.first().and_then(|d| d.uid.as_deref()))
                        && state == DutyState::Violated
                    {
                        if let Some(n) = notes.as_mut() {
                            n.push((None, "obligation violated".to_owned()));
                        }
                        result = Err(DenyReason::ObligationViolated);
                    } else {
                        match self.resolve_duties(rule) {
                            Ok(mut o) => out.append(&mut o),
                            Err(message) => {
                                if let Some(n) = notes.as_mut() {
                                    n.push((None, message));
                                }
                                result = result.and(Err(DenyReason::Undecidable));
                            }
                        }
                    }
                }
                RuleState::Unknown => result = result.and(Err(DenyReason::Undecidable)),
                RuleState::Fails | RuleState::NotApplicable => {
                    if let Some(n) = notes.as_mut() {
                        n.clear();
                    }
                }
            }
            if let (Some(f), Some(n)) = (findings.as_deref_mut(), notes) {
                push_findings(f, rule, "obligation", n);
            }
            if result.is_err() && findings.is_none() {
                break;
            }
        }
        result
    }

    fn permission(&self, rule: &CompiledRule, mut notes: Notes<'_>) -> RuleState {
        let state = self.applicable_and_condition(rule, notes.as_deref_mut());
        if state != RuleState::Holds {
            return state;
        }
        for duty in &rule.duties {
            if self.duty_state(duty.uid.as_deref()) == Some(DutyState::Violated) {
                if let Some(n) = notes {
                    n.push((Some(duty.label.clone()), "duty violated".to_owned()));
                }
                return RuleState::Fails;
            }
        }
        RuleState::Holds
    }

    fn duty_state(&self, uid: Option<&str>) -> Option<DutyState> {
        let uid = uid?;
        self.req
            .context
            .duties
            .iter()
            .find(|(k, _)| *k == uid)
            .map(|(_, s)| *s)
    }

    fn resolve_duties(&self, rule: &CompiledRule) -> Result<Vec<Obligation>, String> {
        let mut out = Vec::with_capacity(rule.duties.len());
        for duty in &rule.duties {
            if self.duty_state(duty.uid.as_deref()) == Some(DutyState::Fulfilled) {
                continue;
            }
            out.push(
                duty.spec
                    .resolve(&duty.label, |p| self.req.subject.property(p))
                    .map_err(|e| format!("duty {}: {e}", duty.label))?,
            );
        }
        Ok(out)
    }

    fn applicable_and_condition(&self, rule: &CompiledRule, mut notes: Notes<'_>) -> RuleState {
        let req = self.req;
        let action_truth = match &rule.actions {
            ActionMatch::Any => Truth::True,
            ActionMatch::Mask(mask) => truth(mask & self.action_mask != 0),
            ActionMatch::Refined(list) => {
                let mut t = Truth::False;
                for (bit, refinement) in list {
                    if bit & self.action_mask == 0 {
                        continue;
                    }
                    let r = match refinement {
                        None => Truth::True,
                        Some(c) => self.cond(c, notes.as_deref_mut()),
                    };
                    t = or(t, r);
                }
                t
            }
        };
        if action_truth == Truth::False {
            if let Some(n) = notes {
                let known = if self.action_id.is_some() {
                    ""
                } else {
                    " (not an ODRL action)"
                };
                n.push((
                    None,
                    format!("action '{}'{known} is not covered by the rule", req.action),
                ));
            }
            return RuleState::NotApplicable;
        }
        if !matches_any(&rule.assignees, &req.subject) {
            if let Some(n) = notes {
                n.push((
                    None,
                    format!(
                        "subject '{}' is not the assignee nor in its collection",
                        req.subject.id
                    ),
                ));
            }
            return RuleState::NotApplicable;
        }
        if !matches_any(&rule.targets, &req.resource) {
            if let Some(n) = notes {
                n.push((
                    None,
                    format!(
                        "resource '{}' is not the target nor in its collection",
                        req.resource.id
                    ),
                ));
            }
            return RuleState::NotApplicable;
        }
        let condition = match &rule.condition {
            None => Truth::True,
            Some(c) => self.cond(c, notes),
        };
        match and(action_truth, condition) {
            Truth::True => RuleState::Holds,
            Truth::False => RuleState::Fails,
            Truth::Unknown => RuleState::Unknown,
        }
    }

    fn cond(&self, cond: &Cond, mut notes: Notes<'_>) -> Truth {
        match cond {
            Cond::All(items) => {
                let mut t = Truth::True;
                for c in items {
                    t = and(t, self.cond(c, notes.as_deref_mut()));
                    if t == Truth::False && notes.is_none() {
                        break;
                    }
                }
                t
            }
            Cond::Any(items) => {
                let mark = notes.as_ref().map(|n| n.len());
                let mut t = Truth::False;
                for c in items {
                    t = or(t, self.cond(c, notes.as_deref_mut()));
                    if t == Truth::True {
                        break;
                    }
                }
                // A satisfied `or` is no reason for anything: drop what its failed branches noted.
                if let (Truth::True, Some(n), Some(m)) = (t, notes, mark) {
                    n.truncate(m);
                }
                t
            }
            Cond::ExactlyOne(items) => {
                let mark = notes.as_ref().map(|n| n.len());
                let (mut holding, mut unknown) = (0, false);
                for c in items {
                    match self.cond(c, notes.as_deref_mut()) {
                        Truth::True => holding += 1,
                        Truth::Unknown => unknown = true,
                        Truth::False => {}
                    }
                }
                let t = if holding > 1 {
                    Truth::False
                } else if unknown {
                    Truth::Unknown
                } else {
                    truth(holding == 1)
                };
                if let Some(n) = notes {
                    if let Some(m) = mark {
                        n.truncate(m);
                    }
                    if t == Truth::False {
                        n.push((
                            None,
                            format!("xone: {holding} operands hold, exactly one must"),
                        ));
                    }
                }
                t
            }
            Cond::Leaf { label, check } => {
                let (t, why) = self.check(check, notes.is_some());
                if t != Truth::True
                    && let Some(n) = notes
                {
                    n.push((Some(label.clone()), why));
                }
                t
            }
        }
    }

    /// Evaluates one leaf; the message is only built when `explain`.
    fn check(&self, check: &Check, explain: bool) -> (Truth, String) {
        let ctx = &self.req.context;
        let missing = |what: &str| (Truth::Unknown, format!("context.{what} missing"));
        let say = |t: bool, f: &dyn Fn() -> String| {
            (truth(t), if explain && !t { f() } else { String::new() })
        };
        match check {
            Check::Time(set) => match &ctx.time {
                None => missing("time"),
                Some(t) => say(set.contains(t.instant), &|| {
                    format!(
                        "time is outside the {} permitted interval(s)",
                        set.intervals()
                    )
                }),
            },
            Check::DayOfWeek(mask) => match &ctx.time {
                None => missing("time"),
                Some(t) => say(
                    bit(u32::from(*mask), t.day_of_week.wrapping_sub(1)),
                    &|| format!("day of week {} not allowed", t.day_of_week),
                ),
            },
            Check::HourOfDay(mask) => match &ctx.time {
                None => missing("time"),
                Some(t) => say(bit(*mask, t.hour_of_day), &|| {
                    format!("hour {} not allowed", t.hour_of_day)
                }),
            },
            Check::Count { window, pred } => {
                let key = self
                    .policy
                    .needs
                    .counters
                    .get(*window)
                    .map(|c| c.key.as_str())
                    .unwrap_or("total");
                match ctx.counts.iter().find(|(k, _)| *k == key) {
                    None => (Truth::Unknown, format!("context.count[\"{key}\"] missing")),
                    Some((_, n)) => say(pred.holds(i128::from(*n)), &|| {
                        format!("count {n} in window {key} not allowed")
                    }),
                }
            }
            Check::Elapsed(pred) => match &ctx.elapsed_time {
                None => missing("elapsedTime"),
                Some(d) if d.months != 0 => (
                    Truth::Unknown,
                    "context.elapsedTime has years or months, which have no fixed length".into(),
                ),
                Some(d) => say(pred.holds(d.nanos), &|| {
                    "elapsed time not allowed".to_owned()
                }),
            },
            Check::Text { operand, op } => {
                let one;
                let values: &[&str] = match operand {
                    TextOperand::Purpose | TextOperand::Recipient | TextOperand::Spatial => {
                        let v = match operand {
                            TextOperand::Purpose => ctx.purpose,
                            TextOperand::Recipient => ctx.recipient,
                            _ => ctx.spatial,
                        };
                        match v {
                            None => return missing(operand.name()),
                            Some(v) => {
                                one = [v];
                                &one
                            }
                        }
                    }
                    TextOperand::Event => match &ctx.events {
                        None => return missing("event"),
                        Some(e) => e,
                    },
                };
                let t = self.text(*operand, op, values);
                say(t, &|| {
                    format!(
                        "{} {values:?} does not satisfy {}",
                        operand.name(),
                        describe(op)
                    )
                })
            }
        }
    }

    /// Set semantics: the request supplies a set of values (one, except for events).
    fn text(&self, operand: TextOperand, op: &TextOp, values: &[&str]) -> bool {
        let within = |part: &str, whole: &str| {
            part == whole || (operand == TextOperand::Spatial && cbs_within(part, whole))
        };
        match op {
            TextOp::Eq(v) => values.contains(&&**v),
            TextOp::Neq(v) => !values.contains(&&**v),
            TextOp::IsA(class) => values.iter().any(|v| {
                *v == &**class
                    || self
                        .req
                        .context
                        .types
                        .iter()
                        .any(|(k, classes)| k == v && classes.contains(&&**class))
            }),
            TextOp::HasPart(parts) => parts.iter().all(|p| values.iter().any(|v| within(p, v))),
            TextOp::IsPartOf(wholes) => {
                !values.is_empty() && values.iter().all(|v| wholes.iter().any(|w| within(v, w)))
            }
            TextOp::IsAllOf(set) => set.iter().all(|s| values.contains(&s)),
            TextOp::IsAnyOf(set) => values.iter().any(|v| set.contains(v)),
            TextOp::IsNoneOf(set) => !values.iter().any(|v| set.contains(v)),
        }
    }
}

fn describe(op: &TextOp) -> String {
    let list = |s: &super::compile::StrSet| s.iter().collect::<Vec<_>>().join(", ");
    match op {
        TextOp::Eq(v) => format!("eq {v}"),
        TextOp::Neq(v) => format!("neq {v}"),
        TextOp::IsA(v) => format!("isA {v}"),
        TextOp::HasPart(s) => format!("hasPart [{}]", list(s)),
        TextOp::IsPartOf(s) => format!("isPartOf [{}]", list(s)),
        TextOp::IsAllOf(s) => format!("isAllOf [{}]", list(s)),
        TextOp::IsAnyOf(s) => format!("isAnyOf [{}]", list(s)),
        TextOp::IsNoneOf(s) => format!("isNoneOf [{}]", list(s)),
    }
}

/// CBS area codes nest by their digits: gemeente `GM0268` ⊃ wijk `WK026801` ⊃ buurt `BU02680101`.
fn cbs_within(part: &str, whole: &str) -> bool {
    fn digits(code: &str) -> Option<(usize, &str)> {
        let (level, len) = match code.get(..2)? {
            "GM" => (0, 4),
            "WK" => (1, 6),
            "BU" => (2, 8),
            _ => return None,
        };
        let d = &code[2..];
        (d.len() == len && d.bytes().all(|b| b.is_ascii_digit())).then_some((level, d))
    }
    match (digits(part), digits(whole)) {
        (Some((pl, pd)), Some((wl, wd))) => pl > wl && pd.starts_with(wd),
        _ => false,
    }
}

fn matches_any(refs: &[RefMatch], entity: &Entity<'_>) -> bool {
    refs.is_empty()
        || refs.iter().any(|r| match r {
            RefMatch::Individual(iri) => entity.id == &**iri,
            RefMatch::Collection(uid) => entity.part_of.contains(&&**uid),
        })
}

fn push_findings(
    out: &mut Vec<Finding>,
    rule: &CompiledRule,
    kind: &'static str,
    notes: Vec<(Option<Arc<str>>, String)>,
) {
    out.extend(notes.into_iter().map(|(constraint, message)| Finding {
        rule: rule.label.clone(),
        kind,
        constraint,
        message,
    }));
}

/// Whether bit `n` of `mask` is set; out-of-range positions (a hand-built [`RequestTime`]) are not set.
fn bit(mask: u32, n: u8) -> bool {
    1u32.checked_shl(u32::from(n))
        .is_some_and(|b| mask & b != 0)
}

fn truth(b: bool) -> Truth {
    if b { Truth::True } else { Truth::False }
}

fn and(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Truth::False, _) | (_, Truth::False) => Truth::False,
        (Truth::True, Truth::True) => Truth::True,
        _ => Truth::Unknown,
    }
}

fn or(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Truth::True, _) | (_, Truth::True) => Truth::True,
        (Truth::False, Truth::False) => Truth::False,
        _ => Truth::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::cbs_within;

    #[test]
    fn cbs_codes_nest_by_digits() {
        assert!(cbs_within("WK026801", "GM0268"));
        assert!(cbs_within("BU02680101", "WK026801"));
        assert!(cbs_within("BU02680101", "GM0268"));
        assert!(!cbs_within("WK026801", "WK026801"));
        assert!(!cbs_within("WK036301", "GM0268"));
        assert!(!cbs_within("GM0268", "WK026801"));
    }
}
