//! `sluis policy check FILE...` and `sluis policy eval --policy FILE --request FILE`: the engine from the
//! command line, for policy authors and CI. Exit 0 when valid / evaluated, 2 when the input is invalid,
//! with one line per problem on stderr naming the file and the rule.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::authzen::evaluate_json;
use super::compile::CompiledPolicy;

/// Validates policy files; prints one line per problem on stderr. Returns the process exit code.
pub fn check(paths: &[PathBuf]) -> i32 {
    let mut invalid = false;
    for path in paths {
        if let Err(lines) = load(path) {
            invalid = true;
            for line in lines {
                eprintln!("{line}");
            }
        }
    }
    if invalid { 2 } else { 0 }
}

/// Evaluates one AuthZEN request (JSON file) against one policy and prints the response JSON on stdout.
pub fn eval(policy: &Path, request: &Path) -> i32 {
    let policy = match load(policy) {
        Ok(p) => p,
        Err(lines) => {
            // One line: the first problem is enough to say the policy is unusable.
            eprintln!(
                "{}",
                lines
                    .first()
                    .map(String::as_str)
                    .unwrap_or("invalid policy")
            );
            return 2;
        }
    };
    let request_json: Value = match std::fs::read(request)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{}: {e}", request.display());
            return 2;
        }
    };
    match evaluate_json(&policy, &request_json) {
        Ok(response) => {
            println!("{response}");
            0
        }
        Err(e) => {
            eprintln!("{}: {e}", request.display());
            2
        }
    }
}

fn load(path: &Path) -> Result<CompiledPolicy, Vec<String>> {
    let name = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| vec![format!("{name}: policy: cannot read: {e}")])?;
    CompiledPolicy::from_bytes(&name, &bytes)
        .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}
