//! Access tokens: what we issue verifies, and forged, expired, misdirected or stolen tokens
//! are refused with their stable codes.

mod auth_support;

use std::time::Duration;

use auth_support::*;
use chrono::{TimeDelta, Utc};
use serde_json::json;
use sluis::auth::{
    AccessClaims, AccessTokenIssuer, CertThumbprint, DEFAULT_ACCESS_TOKEN_TTL, KeyError, PartyId,
    TokenError, ensure_connector_key,
};

fn issuer() -> AccessTokenIssuer {
    AccessTokenIssuer::new(&key_pem(&keys().root), our_id(), DEFAULT_ACCESS_TOKEN_TTL).unwrap()
}

#[track_caller]
fn assert_refused(result: Result<AccessClaims, TokenError>, code: &str) {
    match result {
        Ok(c) => panic!("expected {code}, but the token verified: {c:?}"),
        Err(e) => assert_eq!(e.code(), code, "wrong refusal: {e}"),
    }
}

fn client_cert_der(cn: &str) -> Vec<u8> {
    let k = keys();
    make_cert(&CertSpec::leaf(cn, CLIENT_ID), &k.leaf, None)
        .to_der()
        .unwrap()
}

#[test]
fn issued_token_verifies() {
    let issuer = issuer();
    let now = Utc::now();
    let issued = issuer.issue_at(&client_id(), None, now).unwrap();
    assert_eq!(issued.expires_in, 3600);

    let claims = issuer.verify(&issued.access_token, now, None).unwrap();
    assert_eq!(claims, issued.claims);
    assert_eq!(claims.iss, our_id());
    assert_eq!(claims.aud, our_id());
    assert_eq!(claims.sub, client_id());
    assert_eq!(claims.exp - claims.iat, 3600);
    assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
    assert!(claims.cnf.is_none());
    // An unbound token is also fine over mTLS.
    let der = client_cert_der("any");
    assert!(issuer.verify(&issued.access_token, now, Some(&der)).is_ok());
    // The wall-clock variant agrees.
    let issued = issuer.issue(&client_id(), None).unwrap();
    assert!(
        issuer
            .verify(&issued.access_token, Utc::now(), None)
            .is_ok()
    );
}

#[test]
fn expired_token_is_refused() {
    let issuer = issuer();
    let now = Utc::now();
    let issued = issuer.issue_at(&client_id(), None, now).unwrap();
    let later = now + TimeDelta::seconds(3600 + 10);
    assert_refused(
        issuer.verify(&issued.access_token, later, None),
        "ACCESS_TOKEN_EXPIRED",
    );
    assert!(
        issuer
            .verify(&issued.access_token, now + TimeDelta::seconds(3590), None)
            .is_ok()
    );
}

#[test]
fn token_signed_by_another_key_is_refused() {
    let ours = issuer();
    let impostor = AccessTokenIssuer::new(
        &key_pem(&keys().other_root),
        our_id(),
        DEFAULT_ACCESS_TOKEN_TTL,
    )
    .unwrap();
    let now = Utc::now();
    let forged = impostor.issue_at(&client_id(), None, now).unwrap();
    assert_refused(
        ours.verify(&forged.access_token, now, None),
        "ACCESS_TOKEN_INVALID",
    );
}

#[test]
fn token_for_another_audience_or_from_another_issuer_is_refused() {
    let issuer = issuer();
    let now = Utc::now();
    let header = json!({"alg": "RS256", "typ": "at+jwt"});
    let base = json!({
        "iss": OUR_ID, "sub": CLIENT_ID, "aud": OUR_ID,
        "iat": now.timestamp(), "exp": now.timestamp() + 60, "jti": "x",
    });
    // Control: the hand-made token is accepted as is.
    assert!(
        issuer
            .verify(&rs256(&header, &base, &keys().root), now, None)
            .is_ok()
    );

    let mut other_aud = base.clone();
    other_aud["aud"] = json!(OTHER_PARTY);
    assert_refused(
        issuer.verify(&rs256(&header, &other_aud, &keys().root), now, None),
        "ACCESS_TOKEN_WRONG_AUDIENCE",
    );

    let mut other_iss = base.clone();
    other_iss["iss"] = json!(OTHER_PARTY);
    assert_refused(
        issuer.verify(&rs256(&header, &other_iss, &keys().root), now, None),
        "ACCESS_TOKEN_WRONG_ISSUER",
    );

    // Another connector with its own party id (and key) does not accept our tokens.
    let elsewhere = AccessTokenIssuer::new(
        &key_pem(&keys().root),
        PartyId::parse(OTHER_PARTY).unwrap(),
        DEFAULT_ACCESS_TOKEN_TTL,
    )
    .unwrap();
    let ours = issuer.issue_at(&client_id(), None, now).unwrap();
    assert!(elsewhere.verify(&ours.access_token, now, None).is_err());
}

#[test]
fn changed_algorithm_is_refused() {
    let issuer = issuer();
    let now = Utc::now();
    let issued = issuer.issue_at(&client_id(), None, now).unwrap();
    let claims = payload_of(&issued.access_token);

    let none = jws(
        &json!({"alg": "none", "typ": "at+jwt"}),
        &claims,
        Sig::Empty,
    );
    assert_refused(issuer.verify(&none, now, None), "ACCESS_TOKEN_INVALID");

    // HS256 keyed with our public key, which anyone can fetch: the classic confusion attack.
    let public_pem = keys().root.public_key_to_pem().unwrap();
    let hs = jws(
        &json!({"alg": "HS256", "typ": "at+jwt"}),
        &claims,
        Sig::Hmac256(&public_pem),
    );
    assert_refused(issuer.verify(&hs, now, None), "ACCESS_TOKEN_INVALID");

    // Keep the RS256 signature but relabel the header: the signature no longer matches.
    let relabelled = replace_part(
        &issued.access_token,
        0,
        &b64url_json(&json!({"alg": "RS512", "typ": "at+jwt"})),
    );
    assert_refused(
        issuer.verify(&relabelled, now, None),
        "ACCESS_TOKEN_INVALID",
    );
}

#[test]
fn tampered_token_is_refused() {
    let issuer = issuer();
    let now = Utc::now();
    let issued = issuer.issue_at(&client_id(), None, now).unwrap();
    let mut claims = payload_of(&issued.access_token);
    claims["sub"] = json!(OTHER_PARTY);
    let tampered = replace_part(&issued.access_token, 1, &b64url_json(&claims));
    assert_refused(issuer.verify(&tampered, now, None), "ACCESS_TOKEN_INVALID");
    assert_refused(issuer.verify("garbage", now, None), "ACCESS_TOKEN_INVALID");
    assert_refused(
        issuer.verify(&"a".repeat(100_000), now, None),
        "ACCESS_TOKEN_INVALID",
    );
}

#[test]
fn other_jwts_signed_with_our_key_are_not_access_tokens() {
    let issuer = issuer();
    let now = Utc::now();
    let claims = json!({
        "iss": OUR_ID, "sub": CLIENT_ID, "aud": OUR_ID,
        "iat": now.timestamp(), "exp": now.timestamp() + 60, "jti": "x",
    });
    for header in [
        json!({"alg": "RS256", "typ": "JWT"}),
        json!({"alg": "RS256"}),
    ] {
        let token = rs256(&header, &claims, &keys().root);
        assert_refused(issuer.verify(&token, now, None), "ACCESS_TOKEN_INVALID");
    }
}

#[test]
fn token_issued_in_the_future_is_refused() {
    let issuer = issuer();
    let now = Utc::now();
    let issued = issuer
        .issue_at(&client_id(), None, now + TimeDelta::seconds(120))
        .unwrap();
    assert_refused(
        issuer.verify(&issued.access_token, now, None),
        "ACCESS_TOKEN_INVALID",
    );
}

#[test]
fn certificate_bound_token_needs_that_certificate() {
    let issuer = issuer();
    let now = Utc::now();
    let bound_cert = client_cert_der("bound");
    let thumbprint = CertThumbprint::of_der(&bound_cert);
    let issued = issuer
        .issue_at(&client_id(), Some(&thumbprint), now)
        .unwrap();
    let cnf = issued.claims.cnf.clone().unwrap();
    assert_eq!(cnf.x5t_s256, thumbprint.to_base64url());
    assert_eq!(
        payload_of(&issued.access_token)["cnf"]["x5t#S256"],
        json!(thumbprint.to_base64url())
    );

    assert!(
        issuer
            .verify(&issued.access_token, now, Some(&bound_cert))
            .is_ok()
    );
    assert_refused(
        issuer.verify(&issued.access_token, now, None),
        "ACCESS_TOKEN_CERT_BINDING",
    );
    let other_cert = client_cert_der("thief");
    assert_refused(
        issuer.verify(&issued.access_token, now, Some(&other_cert)),
        "ACCESS_TOKEN_CERT_BINDING",
    );
}

#[test]
fn connector_key_must_be_usable() {
    assert_eq!(
        AccessTokenIssuer::new("junk", our_id(), DEFAULT_ACCESS_TOKEN_TTL).err(),
        Some(KeyError::NotRsaPem)
    );
    let weak = key_pem(&rsa_key(1024));
    assert_eq!(
        AccessTokenIssuer::new(&weak, our_id(), DEFAULT_ACCESS_TOKEN_TTL).err(),
        Some(KeyError::TooShort)
    );
    assert_eq!(
        AccessTokenIssuer::new(&key_pem(&keys().root), our_id(), Duration::ZERO).err(),
        Some(KeyError::BadTtl)
    );
    // PKCS#1 ("RSA PRIVATE KEY") works as well as PKCS#8.
    let pkcs1 =
        String::from_utf8(keys().root.rsa().unwrap().private_key_to_pem().unwrap()).unwrap();
    let issuer = AccessTokenIssuer::new(&pkcs1, our_id(), Duration::from_secs(60)).unwrap();
    let issued = issuer.issue(&client_id(), None).unwrap();
    assert_eq!(issued.expires_in, 60);
    assert!(
        issuer
            .verify(&issued.access_token, Utc::now(), None)
            .is_ok()
    );
}

#[test]
fn ensure_connector_key_creates_once_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/connector.key");
    assert!(ensure_connector_key(&path).unwrap());
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(!ensure_connector_key(&path).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    // The key it made is a working token key.
    let issuer = AccessTokenIssuer::new(&first, our_id(), DEFAULT_ACCESS_TOKEN_TTL).unwrap();
    assert!(issuer.issue(&client_id(), None).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    std::fs::write(&path, "not a key").unwrap();
    let err = ensure_connector_key(&path).unwrap_err();
    assert!(err.to_string().contains("connector.key"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key");
}
