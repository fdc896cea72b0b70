//! The typed ODRL 2.2 model a policy document is parsed into, before compilation. It mirrors the JSON-LD
//! closely (rules, parties, assets, constraints with typed right operands) so that errors can name what the
//! author wrote; it is not used on the request path.

use super::time::{Nanos, XsdDuration};
use super::vocab::ActionId;

/// ODRL policy subclasses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Set,
    Offer,
    Agreement,
}

/// ODRL `conflict`: what wins when a permission and a prohibition both apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictStrategy {
    /// Permissions override prohibitions.
    Perm,
    /// Prohibitions override permissions (ODRL's default, and Sluis's).
    #[default]
    Prohibit,
    /// A conflict voids the policy: the request is denied.
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Permission,
    Prohibition,
    Obligation,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Permission => "permission",
            RuleKind::Prohibition => "prohibition",
            RuleKind::Obligation => "obligation",
        }
    }
}

/// A party or an asset: an IRI, or a collection whose members name it in their `partOf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Individual(String),
    Collection { uid: String, source: Option<String> },
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub uid: Option<String>,
    pub kind: PolicyKind,
    pub conflict: ConflictStrategy,
    pub profiles: Vec<String>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    /// `uid`, or `permission[0]`-style position when the rule has none: used in every message.
    pub label: String,
    /// How errors name the rule: `permission[0] (uid)`, or the position alone.
    pub name: String,
    /// Empty means "any action" (as the conformance vectors' bare permissions require).
    pub actions: Vec<ActionRef>,
    pub targets: Vec<Reference>,
    pub assignees: Vec<Reference>,
    pub assigners: Vec<Reference>,
    pub constraints: Vec<Constraint>,
    pub duties: Vec<Duty>,
}

#[derive(Debug, Clone)]
pub struct ActionRef {
    pub id: ActionId,
    pub refinements: Vec<Constraint>,
}

#[derive(Debug, Clone)]
pub struct Duty {
    pub uid: Option<String>,
    pub label: String,
    pub action: ActionRef,
}

#[derive(Debug, Clone)]
pub enum Constraint {
    Atomic(Atomic),
    Logical {
        label: String,
        op: LogicalOp,
        items: Vec<Constraint>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicalOp {
    And,
    Or,
    Xone,
    AndSequence,
}

#[derive(Debug, Clone)]
pub struct Atomic {
    pub label: String,
    pub left: LeftOperand,
    pub op: Operator,
    pub right: RightOperand,
    /// ODRL `unit`; Sluis uses it on `count` as the counting window (an xsd:duration).
    pub unit: Option<String>,
}

/// The left operands Sluis evaluates. Anything else is a load error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftOperand {
    DateTime,
    Purpose,
    Recipient,
    Spatial,
    Count,
    ElapsedTime,
    Event,
    /// Sluis profile: ISO day of week of `context.time` (1 = Monday).
    DayOfWeek,
    /// Sluis profile: hour of day of `context.time` (0–23).
    HourOfDay,
    /// Sluis profile refinement operands, valid only inside a duty action's `refinement`.
    Field,
    RowProperty,
    RowValue,
    License,
    AttributionText,
}

impl LeftOperand {
    pub fn name(&self) -> &'static str {
        match self {
            LeftOperand::DateTime => "dateTime",
            LeftOperand::Purpose => "purpose",
            LeftOperand::Recipient => "recipient",
            LeftOperand::Spatial => "spatial",
            LeftOperand::Count => "count",
            LeftOperand::ElapsedTime => "elapsedTime",
            LeftOperand::Event => "event",
            LeftOperand::DayOfWeek => "sluis:dayOfWeek",
            LeftOperand::HourOfDay => "sluis:hourOfDay",
            LeftOperand::Field => "sluis:field",
            LeftOperand::RowProperty => "sluis:rowProperty",
            LeftOperand::RowValue => "sluis:rowValue",
            LeftOperand::License => "sluis:license",
            LeftOperand::AttributionText => "sluis:attributionText",
        }
    }

    pub(crate) fn is_duty_parameter(&self) -> bool {
        matches!(
            self,
            LeftOperand::Field
                | LeftOperand::RowProperty
                | LeftOperand::RowValue
                | LeftOperand::License
                | LeftOperand::AttributionText
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Lt,
    Lteq,
    Gt,
    Gteq,
    IsA,
    HasPart,
    IsPartOf,
    IsAllOf,
    IsAnyOf,
    IsNoneOf,
}

impl Operator {
    pub fn name(self) -> &'static str {
        match self {
            Operator::Eq => "eq",
            Operator::Neq => "neq",
            Operator::Lt => "lt",
            Operator::Lteq => "lteq",
            Operator::Gt => "gt",
            Operator::Gteq => "gteq",
            Operator::IsA => "isA",
            Operator::HasPart => "hasPart",
            Operator::IsPartOf => "isPartOf",
            Operator::IsAllOf => "isAllOf",
            Operator::IsAnyOf => "isAnyOf",
            Operator::IsNoneOf => "isNoneOf",
        }
    }

    pub(crate) fn from_term(t: &str) -> Option<Operator> {
        Some(match t {
            "eq" => Operator::Eq,
            "neq" => Operator::Neq,
            "lt" => Operator::Lt,
            "lteq" => Operator::Lteq,
            "gt" => Operator::Gt,
            "gteq" => Operator::Gteq,
            "isA" => Operator::IsA,
            "hasPart" => Operator::HasPart,
            "isPartOf" => Operator::IsPartOf,
            "isAllOf" => Operator::IsAllOf,
            "isAnyOf" => Operator::IsAnyOf,
            "isNoneOf" => Operator::IsNoneOf,
            _ => return None,
        })
    }
}

/// A right operand after reading its JSON-LD form; the datatype comes from `@type` when given, otherwise
/// from the JSON type.
#[derive(Debug, Clone, PartialEq)]
pub enum RightOperand {
    DateTime(Nanos),
    /// An xsd:date, as the half-open day `[start, end)` in UTC.
    Date(Nanos, Nanos),
    Duration(XsdDuration),
    Integer(i64),
    /// A string literal or an IRI (`@id`, or a plain string used as one).
    Text(String),
    List(Vec<RightOperand>),
    /// ODRL `rightOperandReference`: a value taken from the request at decision time.
    Reference(String),
}
