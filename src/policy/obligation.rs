//! Obligations: the duties a permitted request carries, as typed data for the enforcement point. The Sluis
//! ODRL profile (`https://w3id.org/sluis/odrl#`, prefix `sluis:`) defines the duty actions that act on the
//! data stream and their parameters, written as refinements of the duty's action:
//!
//! | duty action | refinement (leftOperand operator rightOperand) | obligation |
//! |---|---|---|
//! | `sluis:dropFields` | `sluis:field` `eq` name / `isAnyOf` [names] | [`Obligation::DropFields`] |
//! | `sluis:pseudonymiseFields` | `sluis:field` `eq` / `isAnyOf` | [`Obligation::PseudonymiseFields`] |
//! | `sluis:filterRows` | `sluis:rowProperty` `eq` property name, and `sluis:rowValue` `isAnyOf` [values] — or `sluis:rowValue` `isAnyOf` with `rightOperandReference` `sluis:subject.NAME`: the values of the subject's property NAME | [`Obligation::FilterRows`] |
//! | `attribute` (ODRL) | `sluis:license` `eq` IRI/text, `sluis:attributionText` `eq` text (both optional) | [`Obligation::Attribution`] |
//! | any other ODRL action (`compensate`, `inform`, ...) | none | [`Obligation::Action`] |
//!
//! An enforcement point that cannot fulfil an obligation it receives must not serve the data.

use std::sync::Arc;

use serde_json::{Value, json};

use super::model::{ActionRef, Constraint, LeftOperand, Operator, RightOperand};
use super::vocab::{self, Term};

/// A duty the enforcement point must fulfil for a permitted request. `duty` is the duty's uid (or its
/// position in the policy) for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obligation {
    /// Remove these fields from every record served.
    DropFields {
        duty: Arc<str>,
        fields: Arc<[String]>,
    },
    /// Replace the values of these fields with pseudonyms.
    PseudonymiseFields {
        duty: Arc<str>,
        fields: Arc<[String]>,
    },
    /// Serve only rows whose `property` has one of the `allowed` values.
    FilterRows {
        duty: Arc<str>,
        property: Arc<str>,
        allowed: Arc<[String]>,
    },
    /// Show this attribution with the data.
    Attribution {
        duty: Arc<str>,
        license: Option<Arc<str>>,
        text: Option<Arc<str>>,
    },
    /// Any other ODRL duty action (full IRI), for the enforcement point to fulfil or refuse.
    Action { duty: Arc<str>, action: Arc<str> },
}

impl Obligation {
    /// The `type` of the JSON form: `dropFields`, `pseudonymiseFields`, `filterRows`,
    /// `attribution` or `action`.
    pub fn kind(&self) -> &'static str {
        match self {
            Obligation::DropFields { .. } => "dropFields",
            Obligation::PseudonymiseFields { .. } => "pseudonymiseFields",
            Obligation::FilterRows { .. } => "filterRows",
            Obligation::Attribution { .. } => "attribution",
            Obligation::Action { .. } => "action",
        }
    }

    /// The policy's duty this obligation comes from.
    pub fn duty(&self) -> &Arc<str> {
        match self {
            Obligation::DropFields { duty, .. }
            | Obligation::PseudonymiseFields { duty, .. }
            | Obligation::FilterRows { duty, .. }
            | Obligation::Attribution { duty, .. }
            | Obligation::Action { duty, .. } => duty,
        }
    }

    /// The JSON form in the AuthZEN response: `{"type": "dropFields", "duty": ..., ...}`.
    pub fn to_json(&self) -> Value {
        let (kind, duty) = (self.kind(), &**self.duty());
        match self {
            Obligation::DropFields { fields, .. }
            | Obligation::PseudonymiseFields { fields, .. } => {
                json!({"type": kind, "duty": duty, "fields": &**fields})
            }
            Obligation::FilterRows {
                property, allowed, ..
            } => {
                json!({"type": kind, "duty": duty, "property": &**property, "allowed": &**allowed})
            }
            Obligation::Attribution { license, text, .. } => json!({
                "type": kind,
                "duty": duty,
                "license": license.as_deref(),
                "text": text.as_deref(),
            }),
            Obligation::Action { action, .. } => {
                json!({"type": kind, "duty": duty, "action": &**action})
            }
        }
    }
}

/// A duty as compiled: everything known at load; `FilterRows` from a subject property completes per request.
#[derive(Debug)]
pub(crate) enum DutySpec {
    DropFields(Arc<[String]>),
    PseudonymiseFields(Arc<[String]>),
    FilterRows {
        property: Arc<str>,
        allowed: AllowedValues,
    },
    Attribution {
        license: Option<Arc<str>>,
        text: Option<Arc<str>>,
    },
    Action(Arc<str>),
}

#[derive(Debug)]
pub(crate) enum AllowedValues {
    Literal(Arc<[String]>),
    SubjectProperty(Box<str>),
}

impl DutySpec {
    pub(crate) fn compile(action: &ActionRef) -> Result<DutySpec, String> {
        let name = vocab::action_name(action.id);
        let params = Params(&action.refinements);
        Ok(match name {
            vocab::ACTION_DROP_FIELDS => DutySpec::DropFields(params.fields(name)?),
            vocab::ACTION_PSEUDONYMISE_FIELDS => DutySpec::PseudonymiseFields(params.fields(name)?),
            vocab::ACTION_FILTER_ROWS => {
                let property = params
                    .single(&LeftOperand::RowProperty)?
                    .ok_or("sluis:filterRows needs sluis:rowProperty eq <property name>")?;
                let value = params
                    .find(&LeftOperand::RowValue)
                    .ok_or("sluis:filterRows needs sluis:rowValue isAnyOf [values] or a rightOperandReference")?;
                if !matches!(value.op, Operator::IsAnyOf | Operator::Eq) {
                    return Err("sluis:rowValue takes eq or isAnyOf".into());
                }
                let allowed = match &value.right {
                    RightOperand::Reference(r) => match vocab::term(r) {
                        Term::Sluis(local) => match local.strip_prefix("subject.") {
                            Some(p) if !p.is_empty() => AllowedValues::SubjectProperty(p.into()),
                            _ => {
                                return Err(format!(
                                    "rightOperandReference {r}: want sluis:subject.PROPERTY"
                                ));
                            }
                        },
                        _ => {
                            return Err(format!(
                                "rightOperandReference {r}: want sluis:subject.PROPERTY"
                            ));
                        }
                    },
                    other => AllowedValues::Literal(strings(other)?.into()),
                };
                DutySpec::FilterRows {
                    property: Arc::from(property.as_str()),
                    allowed,
                }
            }
            vocab::ACTION_ATTRIBUTE => DutySpec::Attribution {
                license: params
                    .single(&LeftOperand::License)?
                    .map(|s| Arc::from(s.as_str())),
                text: params
                    .single(&LeftOperand::AttributionText)?
                    .map(|s| Arc::from(s.as_str())),
            },
            _ => DutySpec::Action(Arc::from(vocab::action_iri(action.id).as_str())),
        })
    }

    pub(crate) fn subject_property(&self) -> Option<&str> {
        match self {
            DutySpec::FilterRows {
                allowed: AllowedValues::SubjectProperty(p),
                ..
            } => Some(p),
            _ => None,
        }
    }

    /// The obligation for one request; `subject_property` looks a property's values up on the subject.
    pub(crate) fn resolve<'a>(
        &self,
        duty: &Arc<str>,
        subject_property: impl Fn(&str) -> Option<&'a [&'a str]>,
    ) -> Result<Obligation, String> {
        let duty = duty.clone();
        Ok(match self {
            DutySpec::DropFields(fields) => Obligation::DropFields {
                duty,
                fields: fields.clone(),
            },
            DutySpec::PseudonymiseFields(fields) => Obligation::PseudonymiseFields {
                duty,
                fields: fields.clone(),
            },
            DutySpec::FilterRows { property, allowed } => Obligation::FilterRows {
                duty,
                property: property.clone(),
                allowed: match allowed {
                    AllowedValues::Literal(values) => values.clone(),
                    AllowedValues::SubjectProperty(p) => subject_property(p)
                        .ok_or_else(|| {
                            format!("subject property '{p}' missing (needed by sluis:filterRows)")
                        })?
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect(),
                },
            },
            DutySpec::Attribution { license, text } => Obligation::Attribution {
                duty,
                license: license.clone(),
                text: text.clone(),
            },
            DutySpec::Action(action) => Obligation::Action {
                duty,
                action: action.clone(),
            },
        })
    }
}

struct Params<'a>(&'a [Constraint]);

impl<'a> Params<'a> {
    fn find(&self, left: &LeftOperand) -> Option<&'a super::model::Atomic> {
        self.0.iter().find_map(|c| match c {
            Constraint::Atomic(a) if &a.left == left => Some(a),
            _ => None,
        })
    }

    fn count(&self, left: &LeftOperand) -> usize {
        self.0
            .iter()
            .filter(|c| matches!(c, Constraint::Atomic(a) if &a.left == left))
            .count()
    }

    /// A parameter given once as `eq` one string.
    fn single(&self, left: &LeftOperand) -> Result<Option<String>, String> {
        if self.count(left) > 1 {
            return Err(format!("{} is given more than once", left.name()));
        }
        match self.find(left) {
            None => Ok(None),
            Some(a) => match (&a.op, &a.right) {
                (Operator::Eq, RightOperand::Text(s)) => Ok(Some(s.clone())),
                _ => Err(format!("{} takes eq and one value", left.name())),
            },
        }
    }

    fn fields(&self, action: &str) -> Result<Arc<[String]>, String> {
        let mut fields = Vec::new();
        for c in self.0 {
            if let Constraint::Atomic(a) = c {
                if !matches!(a.op, Operator::Eq | Operator::IsAnyOf) {
                    return Err("sluis:field takes eq or isAnyOf".into());
                }
                fields.extend(strings(&a.right)?);
            }
        }
        if fields.is_empty() {
            return Err(format!("{action} needs at least one sluis:field"));
        }
        Ok(fields.into())
    }
}

fn strings(right: &RightOperand) -> Result<Vec<String>, String> {
    match right {
        RightOperand::Text(s) => Ok(vec![s.clone()]),
        RightOperand::List(items) => items
            .iter()
            .map(|i| match i {
                RightOperand::Text(s) => Ok(s.clone()),
                _ => Err("expected strings".to_owned()),
            })
            .collect(),
        _ => Err("expected a string or a list of strings".into()),
    }
}
