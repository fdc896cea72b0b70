//! `sluis audit verify` and `sluis audit prune`: the operator's side of the audit log. Exit
//! codes: 0 done (verify: intact), 1 verify found tampering (prune: failed), 2 could not run.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use super::checkpoint::{CheckpointSigner, CheckpointVerifier};
use super::record::{AuditEntry, Decision};
use super::verify::VerifyError;
use super::{Auditor, now_us};
use crate::config::Settings;
use crate::store::Db;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Walk every audit chain and its signed checkpoints: exit 0 intact (prints the record
    /// count), 1 tampered (names the first bad record), 2 could not run.
    Verify {
        /// Configuration file (database and auth.signing_key).
        #[arg(long, default_value = "sluis.toml")]
        config: PathBuf,
        /// Key to check checkpoint signatures with: the connector certificate, its public key,
        /// or its private key (PEM). Default: auth.signing_key from the configuration.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Remove the records before a date, leaving a signed checkpoint per chain so that what
    /// remains still verifies. The prune is itself recorded in the audit log.
    Prune {
        /// Configuration file (database and auth.signing_key).
        #[arg(long, default_value = "sluis.toml")]
        config: PathBuf,
        /// Cutoff: RFC 3339 (2025-01-01T00:00:00Z) or a date (2025-01-01, midnight UTC).
        #[arg(long)]
        before: String,
    },
}

/// Runs the command and returns the process exit code; messages go to stdout (results) and
/// stderr (one line per error).
pub async fn run(command: AuditCommand) -> u8 {
    match command {
        AuditCommand::Verify { config, key } => verify(&config, key.as_deref()).await,
        AuditCommand::Prune { config, before } => prune(&config, &before).await,
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("sluis: {message}");
    code
}

fn load(config: &Path) -> Result<Settings, String> {
    // The default file may be absent (all settings from the environment); an explicit one not.
    Settings::load(config, config == Path::new("sluis.toml")).map_err(|e| e.to_string())
}

async fn connect(settings: &Settings) -> Result<Db, String> {
    Db::connect(&settings.database.url, 2, settings.database_timeout())
        .await
        .map_err(|e| e.to_string())
}

async fn verify(config: &Path, key: Option<&Path>) -> u8 {
    let settings = match load(config) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let key_path = key.unwrap_or(&settings.auth.signing_key);
    let verifier = match CheckpointVerifier::from_pem_file(key_path) {
        Ok(v) => v,
        Err(e) => return fail(2, format!("checkpoint key: {e}")),
    };
    let db = match connect(&settings).await {
        Ok(db) => db,
        Err(e) => return fail(2, e),
    };
    let result = super::verify::verify(&db, &verifier).await;
    db.close().await;
    match result {
        Ok(r) => {
            println!(
                "audit log intact: {} records in {} chains, {} signed checkpoints ({} chains closed cleanly)",
                r.records, r.chains, r.checkpoints, r.closed_chains
            );
            for (chain, vouched, last) in &r.open_tails {
                println!(
                    "note: chain {chain} was not closed cleanly; seq {}..={last} are linked but after its last checkpoint (seq {vouched}), so their removal could not be seen",
                    vouched + 1
                );
            }
            0
        }
        Err(VerifyError::Tampered(t)) => {
            println!("TAMPERED: {t}");
            1
        }
        Err(VerifyError::Store(e)) => fail(2, format!("could not verify: {e}")),
    }
}

/// RFC 3339, or a bare date meaning midnight UTC.
fn parse_cutoff(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

async fn prune(config: &Path, before: &str) -> u8 {
    let Some(cutoff) = parse_cutoff(before) else {
        return fail(
            2,
            format!(
                "--before {before}: expected RFC 3339 (2025-01-01T00:00:00Z) or a date (2025-01-01)"
            ),
        );
    };
    let cutoff_us = cutoff.timestamp_micros();
    if cutoff_us > now_us() {
        return fail(2, format!("--before {before}: lies in the future"));
    }
    let settings = match load(config) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let signer = match CheckpointSigner::from_pem_file(&settings.auth.signing_key) {
        Ok(s) => s,
        Err(e) => return fail(2, format!("auth.signing_key: {e}")),
    };
    let db = match connect(&settings).await {
        Ok(db) => db,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = db.migrate().await {
        return fail(2, e);
    }
    // The prune writes its own chain, like any other writer, and is recorded before it acts:
    // if it cannot be recorded, nothing is removed.
    let timeout = std::time::Duration::from_millis(settings.database.timeout_ms);
    let (auditor, handle) =
        match Auditor::start(db.clone(), &settings.audit, signer.clone(), timeout).await {
            Ok(a) => a,
            Err(e) => return fail(2, format!("audit log: {e}")),
        };
    let cutoff_text = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let entry = AuditEntry {
        transaction_id: uuid::Uuid::now_v7(),
        time_us: now_us(),
        party_id: Some("operator".into()),
        product: None,
        action: "audit.prune".into(),
        purpose: None,
        decision: Decision::Permit,
        reasons: vec![format!("before={cutoff_text}")],
        policy_id: None,
        policy_version: None,
        status: 200,
        method: "CLI".into(),
        path: "sluis audit prune".into(),
        trace_id: None,
        span_id: None,
    };
    let recorded = auditor.record(entry).await;
    let result = match recorded {
        Err(e) => Err(format!("not pruned: the prune could not be audited: {e}")),
        Ok(()) => super::prune::prune(&db, &signer, cutoff_us, auditor.chain_id())
            .await
            .map_err(|e| e.to_string()),
    };
    drop(auditor);
    handle.shutdown().await;
    db.close().await;
    match result {
        Ok(r) => {
            println!(
                "pruned {} records from {} chains before {cutoff_text}; signed prune checkpoints keep the rest verifiable",
                r.records_removed, r.chains_pruned
            );
            0
        }
        Err(e) => fail(1, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_are_rfc3339_or_dates() {
        assert_eq!(
            parse_cutoff("2025-01-02").map(|t| t.timestamp()),
            Some(1_735_776_000)
        );
        assert_eq!(
            parse_cutoff("2025-01-02T01:00:00+01:00").map(|t| t.timestamp()),
            Some(1_735_776_000)
        );
        assert_eq!(parse_cutoff("yesterday"), None);
    }
}
