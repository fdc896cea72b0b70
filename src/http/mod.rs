//! HTTP faces of the connector, grouped by audience: the public listener (data, later catalog
//! and token endpoint) and the admin listener (health, later the admin API and the PDP). Every
//! public request passes the audit middleware, which commits its record before the body leaves.

pub mod admin;
mod audit_api;
mod audit_mw;
mod authzen;
pub mod catalog;
pub mod enforce;
pub mod public;
pub mod tls;
mod token;

pub use audit_mw::{AuditFacts, RequestContext, TRANSACTION_ID_HEADER};
