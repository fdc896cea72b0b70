//! Interoperability with the reference iSHARE client: an assertion made by python-ishare's
//! `create_jwt` (pinned in tests/ishare_python/requirements.txt) must verify unchanged.
//! Needs Python 3 with venv and access to PyPI on the first run; the venv is cached under
//! target/. Set SLUIS_PYTHON to pick the interpreter, SLUIS_SKIP_PYTHON_TESTS=1 to opt out.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::Value;
use sluis::auth::{PartyId, TrustStore, devcerts, verify_client_assertion};

const CONNECTOR_ID: &str = "did:ishare:EU.NL.NTRNL-00000001";
const CONSUMER_ID: &str = "EU.EORI.NL123456789";

/// tests/ishare_python, found from this file so it also works when the test is compiled from
/// another package pointing at this file.
fn script_dir() -> PathBuf {
    let here = Path::new(file!());
    let here = if here.is_absolute() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(here)
    };
    here.parent().unwrap().join("ishare_python")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A venv with the pinned requirements, (re)built when the requirements file changed.
fn venv_python() -> PathBuf {
    let requirements_path = script_dir().join("requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_path).unwrap();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ishare-venv");
    let marker = venv.join("sluis-installed-requirements.txt");
    let python = venv.join("bin/python");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(requirements.as_str()) {
        return python;
    }
    let interpreter = std::env::var("SLUIS_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    run(Command::new(interpreter)
        .args(["-m", "venv", "--clear"])
        .arg(&venv));
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements_path));
    std::fs::write(&marker, requirements).unwrap();
    python
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn assertion_from_python_ishare_create_jwt_verifies() {
    if std::env::var_os("SLUIS_SKIP_PYTHON_TESTS").is_some() {
        eprintln!("SLUIS_SKIP_PYTHON_TESTS is set: python-ishare interop not checked");
        return;
    }
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let connector = PartyId::parse(CONNECTOR_ID).unwrap();
    let consumer = PartyId::parse(CONSUMER_ID).unwrap();
    let pki = devcerts::generate(dir.path(), &connector, &consumer).unwrap();

    let assertion = run(Command::new(&python)
        .arg(script_dir().join("make_assertion.py"))
        .arg(&pki.consumer_key)
        .args([CONSUMER_ID, CONNECTOR_ID])
        .arg(&pki.consumer_cert)
        .arg(&pki.ca_cert));
    let assertion = assertion.trim();

    // What python-ishare sends, so a change in the client shows up here first.
    let header = decode_part(assertion, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["x5c"].as_array().map(Vec::len), Some(2));
    let claims = decode_part(assertion, 1);
    assert!(claims["iat"].is_f64() && claims["exp"].is_f64(), "{claims}");

    let trust = TrustStore::load_dir(&pki.trust_dir).unwrap();
    let verified =
        verify_client_assertion(assertion, CONSUMER_ID, &connector, &trust, None, Utc::now())
            .unwrap_or_else(|e| panic!("python-ishare assertion refused: {} ({e})", e.code()));
    assert_eq!(verified.party_id, consumer);
    assert_eq!(verified.jti, claims["jti"].as_str().unwrap());

    let registered = std::fs::read_to_string(&pki.consumer_cert).unwrap();
    assert!(
        verify_client_assertion(
            assertion,
            CONSUMER_ID,
            &connector,
            &trust,
            Some(&registered),
            Utc::now(),
        )
        .is_ok()
    );
}
