//! HTTPS and mTLS for real: a rustls listener with the development PKI, client certificates
//! verified against the configured CA, and access tokens bound to the client certificate
//! (RFC 8705) that fail without it. Plus the reference iSHARE Python client through the endpoint.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use reqwest::{Certificate, Identity};
use serde_json::Value;
use sluis::auth::{CertThumbprint, PartyId, devcerts};
use sluis::config::{ClientAuth, TlsSettings};

use crate::both_databases;
use crate::helpers::*;

both_databases!(
    mtls_binds_tokens_to_the_client_certificate,
    python_ishare_client_gets_a_token
);

const CONNECTOR: &str = "did:ishare:EU.NL.NTRNL-00000001";
const CONSUMER: &str = "did:ishare:EU.NL.NTRNL-00000002";

struct Https {
    app: TestApp,
    base: String,
    pki: devcerts::DevCerts,
    _dir: tempfile::TempDir,
}

async fn https_app(backend: Backend, client_auth: ClientAuth) -> Https {
    let dir = tempfile::tempdir().unwrap();
    let pki = devcerts::generate(
        dir.path(),
        &PartyId::parse(CONNECTOR).unwrap(),
        &PartyId::parse(CONSUMER).unwrap(),
    )
    .unwrap();
    let p = pki.clone();
    let app = spawn_app_with(backend, |s, _| {
        s.auth.trust_anchors = p.trust_dir.clone();
        s.auth.signing_key = p.connector_key.clone();
        s.server.tls = Some(TlsSettings {
            cert: p.connector_cert.clone(),
            key: p.connector_key.clone(),
            client_ca: Some(p.ca_cert.clone()),
            client_auth,
        });
    })
    .await;
    let base = app.public.replace("http://127.0.0.1", "https://localhost");
    Https {
        app,
        base,
        pki,
        _dir: dir,
    }
}

fn client(pki: &devcerts::DevCerts, with_cert: bool) -> reqwest::Client {
    let ca = Certificate::from_pem(&std::fs::read(&pki.ca_cert).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", ([127, 0, 0, 1], 0).into());
    if with_cert {
        let mut pem = std::fs::read(&pki.consumer_key).unwrap();
        pem.extend(std::fs::read(&pki.consumer_cert).unwrap());
        b = b.identity(Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

fn assertion(pki: &devcerts::DevCerts) -> String {
    let key = std::fs::read_to_string(&pki.consumer_key).unwrap();
    let leaf = std::fs::read_to_string(&pki.consumer_cert).unwrap();
    let ca = std::fs::read_to_string(&pki.ca_cert).unwrap();
    sluis::auth::sign_client_assertion(&key, &[&leaf, &ca], CONSUMER, CONNECTOR, chrono::Utc::now())
        .unwrap()
}

async fn token(client: &reqwest::Client, base: &str, pki: &devcerts::DevCerts) -> String {
    let res = token_request(client, base, CONSUMER, &assertion(pki)).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn read(client: &reqwest::Client, base: &str, token: &str) -> reqwest::Response {
    client
        .get(format!("{base}/products/oorlogsschade"))
        .bearer_auth(token)
        .header("Sluis-Purpose", "urn:sluis:purpose:beleidsonderzoek")
        .send()
        .await
        .unwrap()
}

async fn mtls_binds_tokens_to_the_client_certificate(backend: Backend) {
    let h = https_app(backend, ClientAuth::Optional).await;
    h.app
        .register(CONSUMER, &["urn:sluis:group:gemeenten"], None)
        .await;
    let mtls = client(&h.pki, true);
    let tls_only = client(&h.pki, false);

    // Open data over HTTPS, no client certificate needed.
    let res = tls_only
        .get(format!("{}/products/stadsmuur", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Plain HTTP to the HTTPS listener does not get data.
    assert!(
        reqwest::get(format!("{}/products/stadsmuur", h.app.public))
            .await
            .map_or(true, |r| !r.status().is_success())
    );

    // A token obtained over mTLS is bound to that certificate.
    let bound = token(&mtls, &h.base, &h.pki).await;
    let der = openssl::x509::X509::from_pem(&std::fs::read(&h.pki.consumer_cert).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    assert_eq!(
        claims_of(&bound)["cnf"]["x5t#S256"],
        CertThumbprint::of_der(&der).to_base64url()
    );
    let res = read(&mtls, &h.base, &bound).await;
    assert_eq!(res.status(), 200, "bound token with its certificate");
    let res = read(&tls_only, &h.base, &bound).await;
    assert_eq!(res.status(), 401, "bound token without its certificate");
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "ACCESS_TOKEN_CERT_BINDING");

    // A token obtained without mTLS carries no binding and works over plain TLS.
    let unbound = token(&tls_only, &h.base, &h.pki).await;
    assert!(claims_of(&unbound).get("cnf").is_none());
    assert_eq!(read(&tls_only, &h.base, &unbound).await.status(), 200);
    h.app.finish().await;

    // With client certificates required, a client without one cannot even connect.
    let h = https_app(backend, ClientAuth::Required).await;
    assert!(
        client(&h.pki, false)
            .get(format!("{}/products/stadsmuur", h.base))
            .send()
            .await
            .is_err()
    );
    let res = client(&h.pki, true)
        .get(format!("{}/products/stadsmuur", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    h.app.finish().await;
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ishare_python")
}

async fn python_ishare_client_gets_a_token(backend: Backend) {
    let requirements = script_dir().join("requirements.txt");
    let python = tokio::task::spawn_blocking(move || python_venv("ishare-venv", &requirements))
        .await
        .unwrap();
    let h = https_app(backend, ClientAuth::None).await;
    h.app
        .register(CONSUMER, &["urn:sluis:group:gemeenten"], None)
        .await;
    let assertion = run_command(
        Command::new(&python)
            .arg(script_dir().join("make_assertion.py"))
            .arg(&h.pki.consumer_key)
            .args([CONSUMER, CONNECTOR])
            .arg(&h.pki.consumer_cert)
            .arg(&h.pki.ca_cert),
    );
    let assertion = assertion.trim();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(assertion.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256", "made by python-ishare: {header}");
    assert!(
        claims_of(assertion)["iat"].is_f64(),
        "python-ishare sends float NumericDates"
    );

    let tls = client(&h.pki, false);
    let res = token_request(&tls, &h.base, CONSUMER, assertion).await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(read(&tls, &h.base, &token).await.status(), 200);
    h.app.finish().await;
}
