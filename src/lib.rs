//! Sluis: a sovereign data-sharing connector. Data stays at the source; every request is checked
//! and written to a tamper-evident audit log before data leaves.

pub mod app;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod consumer;
pub mod error;
pub mod http;
pub mod policy;
pub mod source;
pub mod store;
pub mod telemetry;
