//! The policy decision point: ODRL 2.2 usage policies (compact JSON-LD) parsed strictly, compiled once at
//! load, and evaluated per request through an AuthZEN-shaped request. Knows nothing of HTTP, SQL or the
//! rest of the crate: the enforcement point builds a [`Request`] and applies the returned [`Obligation`]s.
//!
//! # Flow
//! [`CompiledPolicy::from_bytes`] (or [`PolicyStore`] for a folder) → [`CompiledPolicy::evaluate`] with a
//! typed [`Request`], or [`evaluate_json`] with the AuthZEN JSON → [`Decision`] / `{"decision", "context"}`.
//!
//! # What is understood (anything else is a load error naming the file and the rule)
//! - Policy `@type` Set, Offer (needs an assigner), Agreement (assigner and assignee); `conflict` perm /
//!   prohibit (default) / invalid; policy-level `action`, `target`, `assignee`, `assigner` apply to rules
//!   that do not set their own.
//! - Rules: permission (with `duty`), prohibition, obligation. A rule without `action` covers every action.
//!   Actions follow the ODRL vocabulary's `includedIn`: `use` covers `read`, `write`, `distribute`, ...;
//!   `transfer` covers `sell` and `give`.
//! - Parties and assets: an IRI (matches the request's `id`), or `{"uid", "@type": "PartyCollection" |
//!   "AssetCollection", "source"}` (matches when the request's `properties.partOf` lists the uid).
//! - Constraints: all twelve operators; logical `and`, `or`, `xone`, `andSequence` (evaluated as `and` at
//!   the decision instant), nested. Action `refinement`s narrow a rule's action like constraints.
//! - Right operands: plain JSON, `{"@value", "@type"}` (xsd:dateTime, xsd:date, xsd:duration, xsd:integer,
//!   xsd:string, xsd:anyURI), `{"@id"}`, lists.
//!
//! # Left operands and the request context keys they read
//! | left operand | `context` key | value |
//! |---|---|---|
//! | `dateTime` | `time` | xsd:dateTime with zone (`2024-02-12T11:20:10.999Z`); compared with xsd:dateTime or xsd:date (a whole UTC day) |
//! | `sluis:dayOfWeek` / `sluis:hourOfDay` | `time` | 1 = Monday … 7; 0–23; taken in the offset `time` is written in, so send local time |
//! | `purpose` | `purpose` | one IRI |
//! | `recipient` | `recipient` | one IRI |
//! | `spatial` | `spatial` | one code or IRI; CBS codes nest for `isPartOf`/`hasPart` (`BU02680101` ⊂ `WK026801` ⊂ `GM0268`) |
//! | `event` | `event` | the events in effect: a string or a list |
//! | `elapsedTime` | `elapsedTime` | xsd:duration (`PT3H`) or whole seconds; policy values in days or less (no `P1M`) |
//! | `count` | `count` | earlier uses, by window: `{"P1D": 17, "total": 230}` (a bare number is `total`) |
//!
//! `count` takes its counting window from ODRL `unit`, written as an xsd:duration: `{"leftOperand":
//! "count", "operator": "lt", "rightOperand": 100, "unit": "P1D"}` allows 100 uses per day; without `unit`
//! the window is `total`. The count is of the subject's earlier uses of the rule's target before this
//! request (so `lt 100` admits the 100th use, not the 101st). [`CompiledPolicy::needs`] lists the windows a
//! policy uses, so the caller fetches only those counters.
//!
//! Set semantics: the request supplies a set of values (one value, except `event`). `eq v`: v is in it;
//! `neq v`: v is not; `isAnyOf`: they overlap; `isAllOf`: all listed values are in it; `isNoneOf`: no
//! overlap; `isPartOf`: every value lies within a listed one; `hasPart`: every listed value lies within
//! one of the request's; `isA c`: the value is c, or `context.types[value]` lists c.
//! `lt`/`lteq`/`gt`/`gteq` apply to dateTime, count, elapsedTime, dayOfWeek and hourOfDay only.
//!
//! `context.duties` maps a duty's uid to `NonSet` | `Fulfilled` | `Violated`: a violated duty deactivates
//! its permission, a fulfilled one is not returned as an obligation.
//!
//! # Decisions
//! Any applicable prohibition that holds denies (unless `conflict` is `perm`); otherwise the first
//! permission (in document order) that applies and holds permits, with its duties and the matching
//! policy-level obligations as [`Obligation`]s; otherwise deny. A constraint whose context value is
//! missing is unknown: unknown never permits and an unknown prohibition denies ([`DenyReason::Undecidable`]).
//! The Sluis ODRL profile of duty actions is described in [`obligation`].

mod authzen;
pub mod cli;
mod compile;
mod eval;
mod model;
pub mod obligation;
mod parse;
mod store;
mod time;
mod vocab;

pub use authzen::{RequestError, evaluate_json, parse_request, response_json};
pub use compile::{CompiledPolicy, CounterWindow, Needs};
pub use eval::{Context, Decision, Denial, DenyReason, DutyState, Entity, Finding, Request};
pub use model::{ConflictStrategy, PolicyKind};
pub use obligation::Obligation;
pub use parse::{PolicyError, PolicyErrors};
pub use store::{PolicyInfo, PolicyStore, StoreError, StoreStatus};
pub use time::{RequestTime, XsdDuration};
pub use vocab::{ODRL_NS, SLUIS_NS};
