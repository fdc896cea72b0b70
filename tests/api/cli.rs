//! The command line: help, migrations on both databases, and configuration errors reported as one
//! line naming the key, with a non-zero exit.

use std::process::Command;

use crate::both_databases;
use crate::helpers::*;

both_databases!(migrate_creates_the_schema_and_is_idempotent);

fn run(
    args: &[&str],
    envs: &[(&str, &str)],
    dir: &std::path::Path,
) -> (Option<i32>, String, String) {
    let out = Command::new(sluis_bin())
        .args(args)
        .envs(envs.iter().copied())
        .env("SLUIS_LOG", "warn")
        .current_dir(dir)
        .output()
        .expect("run sluis");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn migrate_creates_the_schema_and_is_idempotent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config = db.dir().join("c.toml");
    std::fs::write(&config, format!("[database]\nurl = \"{}\"\n", db.url)).unwrap();
    for _ in 0..2 {
        let (code, out, err) = run(
            &["migrate", "--config", config.to_str().unwrap()],
            &[],
            db.dir(),
        );
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("migrations applied"));
    }
    assert!(
        audit_records(&db.url).await.is_empty(),
        "the audit table exists and is empty"
    );
    db.drop_db().await;
}

#[test]
fn help_lists_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(&["--help"], &[], dir.path());
    assert_eq!(code, Some(0));
    assert!(out.contains("serve") && out.contains("migrate"));
    let (code, out, _) = run(&["serve", "--help"], &[], dir.path());
    assert_eq!(code, Some(0));
    assert!(out.contains("--config"));
}

fn assert_config_error(toml: &str, envs: &[(&str, &str)], key: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), toml).unwrap();
    let (code, _, err) = run(&["serve", "--config", "bad.toml"], envs, dir.path());
    assert_eq!(code, Some(2), "exit code for {key}; stderr: {err}");
    let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, got: {err}");
    assert!(
        lines[0].to_lowercase().contains(&key.to_lowercase()),
        "the error names `{key}`: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_configuration_names_the_key() {
    assert_config_error(
        "[server]\npublic_listen = \"overal\"\n",
        &[],
        "server.public_listen",
    );
    assert_config_error("[server]\nworkerz = 2\n", &[], "workerz");
    assert_config_error("[database]\nurl = \"mysql://x\"\n", &[], "database.url");
    assert_config_error("", &[("SLUIS_SERVER__WORKERS", "veel")], "workers");
    assert_config_error(
        "[[products]]\nid = \"a\"\naccess = \"open\"\nsource = { kind = \"file\", path = \"/nergens/a.geojson\" }\n",
        &[],
        "products[0].source.path",
    );
    assert_config_error(
        "[[products]]\nid = \"Met Spatie\"\naccess = \"open\"\nsource = { kind = \"http\", url = \"https://example.org\" }\n",
        &[],
        "products[0].id",
    );
    assert_config_error(
        "[[products]]\nid = \"geheim\"\naccess = \"restricted\"\nsource = { kind = \"http\", url = \"https://example.org\" }\n",
        &[],
        "products[0].policy",
    );
    assert_config_error(
        "[[products]]\nid = \"a\"\naccess = \"open\"\nsource = { kind = \"http\", url = \"ftp://example.org\" }\n",
        &[],
        "products[0].source.url",
    );
    assert_config_error(
        "[admin]\ntoken_file = \"/nergens/token\"\n",
        &[],
        "admin.token_file",
    );
    // An admin listener reachable from the network needs a long token.
    assert_config_error(
        "[server]\nadmin_listen = \"0.0.0.0:8081\"\n",
        &[],
        "admin.token",
    );
    assert_config_error(
        "[server]\nadmin_listen = \"0.0.0.0:8081\"\n[admin]\ntoken = \"kort\"\n",
        &[],
        "admin.token",
    );
}

#[test]
fn policy_check_names_file_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/oorlogsschade.json");
    let (code, _, err) = run(
        &["policy", "check", demo.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{err}");
    let broken = std::fs::read_to_string(&demo)
        .unwrap()
        .replace("\"purpose\"", "\"doel\"");
    std::fs::write(dir.path().join("kapot.json"), broken).unwrap();
    let (code, _, err) = run(&["policy", "check", "kapot.json"], &[], dir.path());
    assert_eq!(code, Some(2));
    assert!(
        err.lines().count() >= 1 && err.lines().all(|l| l.contains("kapot.json")),
        "{err}"
    );
    assert!(
        err.contains("doel") && err.contains("urn:sluis:policy:oorlogsschade"),
        "names the operand and rule: {err}"
    );

    let request = serde_json::json!({
        "subject": {"type": "party", "id": "x", "properties": {"partOf": ["urn:sluis:group:gemeenten"]}},
        "action": {"name": "read"},
        "resource": {"type": "product", "id": "urn:sluis:product:oorlogsschade"},
        "context": {"time": "2026-12-04T10:00:00Z", "purpose": "urn:sluis:purpose:commercieel"}
    });
    std::fs::write(dir.path().join("req.json"), request.to_string()).unwrap();
    let (code, out, err) = run(
        &[
            "policy",
            "eval",
            "--policy",
            demo.to_str().unwrap(),
            "--request",
            "req.json",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], false);
    assert_eq!(v["context"]["reason"], "prohibited");
    std::fs::write(dir.path().join("req.json"), "{").unwrap();
    let (code, _, _) = run(
        &[
            "policy",
            "eval",
            "--policy",
            demo.to_str().unwrap(),
            "--request",
            "req.json",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, Some(2));
}

#[test]
fn missing_explicit_config_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["serve", "--config", "weg.toml"], &[], dir.path());
    assert_eq!(code, Some(2));
    assert!(err.contains("weg.toml"), "{err}");
}

#[test]
fn secrets_and_environment_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-secret.db");
    std::fs::write(
        dir.path().join("db-url"),
        format!("sqlite://{}?mode=rwc\n", db.display()),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[database]\nurl = \"postgres://nowhere.invalid/x\"\n",
    )
    .unwrap();
    let (code, _, err) = run(
        &["migrate", "--config", "c.toml"],
        &[("SLUIS_DATABASE__URL_FILE", "db-url")],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        db.exists(),
        "the URL came from the secret file named in the environment"
    );
}
