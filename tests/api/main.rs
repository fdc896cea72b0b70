//! Integration tests: the real server on port 0, a real database (SQLite and PostgreSQL, a fresh
//! one per test) and a real HTTP client. Logs appear only with TEST_LOG set.

#[path = "../auth_support/mod.rs"]
mod auth_support;
mod helpers;

mod audit_crash;
mod audit_log;
mod audit_prune;
mod audit_query;
mod audit_support;
mod audit_tamper;
mod catalog;
mod ckan_stub;
mod cli;
mod credentials;
mod fail_closed;
mod file_cache;
mod obligations;
mod open_products;
mod restricted;
mod shutdown;
mod store_runtime;
mod streaming;
mod telemetry;
mod tls;
mod upstream;
mod usage;
mod write_contention;
