//! Runs every ODRL conformance vector in tests/conformance/odrl (derived from the SolidLab ODRL-Test-Suite,
//! MIT): each file holds a policy, an AuthZEN request and the expected decision. A failing vector is named.

use std::path::Path;

use serde_json::Value;
use sluis::policy::{CompiledPolicy, evaluate_json};

#[test]
fn every_odrl_vector_gives_the_expected_decision() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/odrl");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 34,
        "expected at least 34 vectors in {}, found {}",
        dir.display(),
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let vector: Value = match std::fs::read(file).map(|b| serde_json::from_slice(&b)) {
            Ok(Ok(v)) => v,
            other => {
                failures.push(format!("{name}: unreadable: {other:?}"));
                continue;
            }
        };
        let policy = match CompiledPolicy::from_json(&name, &vector["policy"], "vector") {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: policy rejected: {e}"));
                continue;
            }
        };
        let expected = vector["expected"]["decision"].as_bool();
        match evaluate_json(&policy, &vector["request"]) {
            Ok(response) if response["decision"].as_bool() == expected => {}
            Ok(response) => failures.push(format!("{name}: expected {expected:?}, got {response}")),
            Err(e) => failures.push(format!("{name}: request rejected: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
