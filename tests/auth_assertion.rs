//! iSHARE client assertion verification against real OpenSSL-made PKIs: the happy path, and
//! each known attack tried for real and refused with its stable code.

mod auth_support;

use auth_support::*;
use chrono::{DateTime, TimeDelta, Utc};
use openssl::hash::MessageDigest;
use serde_json::{Value, json};
use sluis::auth::{
    AssertionError, CertThumbprint, MAX_ASSERTION_LEN, PartyId, TrustStore, TrustStoreError,
    VerifiedAssertion, devcerts, sign_client_assertion, verify_client_assertion,
};

fn verify(pki: &Pki, token: &str, now: DateTime<Utc>) -> Result<VerifiedAssertion, AssertionError> {
    verify_client_assertion(token, CLIENT_ID, &our_id(), &pki.trust, None, now)
}

#[track_caller]
fn assert_refused(result: Result<VerifiedAssertion, AssertionError>, code: &str) {
    match result {
        Ok(v) => panic!("expected {code}, but the assertion verified: {v:?}"),
        Err(e) => assert_eq!(e.code(), code, "wrong refusal: {e}"),
    }
}

/// A correctly signed assertion from CLIENT_ID with the given claims and chain [leaf, root].
fn signed(pki: &Pki, claims: &Value) -> String {
    rs256(&rs256_header(&[&pki.leaf, &pki.root]), claims, &keys().leaf)
}

#[test]
fn valid_assertion_from_sign_client_assertion_verifies() {
    let pki = pki();
    let now = Utc::now();
    let leaf_pem = cert_pem(&pki.leaf);
    let root_pem = cert_pem(&pki.root);
    let token = sign_client_assertion(
        &key_pem(&keys().leaf),
        &[&leaf_pem, &root_pem],
        CLIENT_ID,
        OUR_ID,
        now,
    )
    .unwrap();

    let verified = verify(&pki, &token, now).unwrap();
    assert_eq!(verified.party_id, client_id());
    assert!(!verified.jti.is_empty());
    assert_eq!(verified.expires_at.timestamp(), now.timestamp() + 30);
    assert_eq!(
        verified.leaf_thumbprint,
        CertThumbprint::of_der(&pki.leaf.to_der().unwrap())
    );
    assert!(verified.replay_window_end() > verified.expires_at);
}

#[test]
fn chain_without_root_verifies_against_the_anchor() {
    let pki = pki();
    let now = Utc::now();
    let token = rs256(&rs256_header(&[&pki.leaf]), &claims(now), &keys().leaf);
    assert!(verify(&pki, &token, now).is_ok());
}

#[test]
fn rs384_and_rs512_are_accepted() {
    let pki = pki();
    let now = Utc::now();
    for (alg, digest) in [
        ("RS384", MessageDigest::sha384()),
        ("RS512", MessageDigest::sha512()),
    ] {
        let mut header = rs256_header(&[&pki.leaf, &pki.root]);
        header["alg"] = json!(alg);
        let token = jws(&header, &claims(now), Sig::Rsa(digest, &keys().leaf));
        assert!(verify(&pki, &token, now).is_ok(), "{alg} refused");
    }
}

#[test]
fn float_numeric_dates_are_accepted() {
    let pki = pki();
    let now = Utc::now();
    let iat = now.timestamp_millis() as f64 / 1000.0 - 0.25;
    let mut c = claims(now);
    c["iat"] = json!(iat);
    c["exp"] = json!(iat + 30.0);
    let verified = verify(&pki, &signed(&pki, &c), now).unwrap();
    assert_eq!(
        verified.expires_at.timestamp_millis(),
        ((iat + 30.0) * 1000.0).round() as i64
    );
}

#[test]
fn aud_may_be_an_array_containing_us() {
    let pki = pki();
    let now = Utc::now();
    let mut c = claims(now);
    c["aud"] = json!([OTHER_PARTY, OUR_ID]);
    assert!(verify(&pki, &signed(&pki, &c), now).is_ok());
}

#[test]
fn alg_none_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let mut header = rs256_header(&[&pki.leaf, &pki.root]);
    header["alg"] = json!("none");
    let token = jws(&header, &claims(now), Sig::Empty);
    assert_refused(verify(&pki, &token, now), "ASSERTION_ALG_NOT_ALLOWED");
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let mut header = rs256_header(&[&pki.leaf, &pki.root]);
    header["alg"] = json!("HS256");
    let public_pem = keys().leaf.public_key_to_pem().unwrap();
    let public_der = keys().leaf.public_key_to_der().unwrap();
    let cert_der = pki.leaf.to_der().unwrap();
    for secret in [&public_pem, &public_der, &cert_der] {
        let token = jws(&header, &claims(now), Sig::Hmac256(secret));
        assert_refused(verify(&pki, &token, now), "ASSERTION_ALG_NOT_ALLOWED");
    }
}

#[test]
fn other_algorithms_and_missing_alg_are_refused() {
    let pki = pki();
    let now = Utc::now();
    for alg in ["ES256", "PS256", "EdDSA", "rs256", "RS256 "] {
        let mut header = rs256_header(&[&pki.leaf, &pki.root]);
        header["alg"] = json!(alg);
        let token = rs256(&header, &claims(now), &keys().leaf);
        assert_refused(verify(&pki, &token, now), "ASSERTION_ALG_NOT_ALLOWED");
    }
    let mut header = rs256_header(&[&pki.leaf, &pki.root]);
    header.as_object_mut().unwrap().remove("alg");
    let token = rs256(&header, &claims(now), &keys().leaf);
    assert_refused(verify(&pki, &token, now), "ASSERTION_HEADER_INVALID");
}

#[test]
fn rs256_signed_with_another_key_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let token = rs256(
        &rs256_header(&[&pki.leaf, &pki.root]),
        &claims(now),
        &keys().other_leaf,
    );
    assert_refused(verify(&pki, &token, now), "ASSERTION_BAD_SIGNATURE");
}

#[test]
fn tampered_signature_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let token = signed(&pki, &claims(now));
    let signature = token.rsplit('.').next().unwrap();
    // Change the first character: every base64url character there carries 6 signature bits.
    let first = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = replace_part(&token, 2, &format!("{first}{}", &signature[1..]));
    assert_refused(verify(&pki, &tampered, now), "ASSERTION_BAD_SIGNATURE");
}

#[test]
fn tampered_payload_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let token = signed(&pki, &claims(now));
    let mut payload = payload_of(&token);
    payload["jti"] = json!("replayed-with-a-new-jti");
    let tampered = replace_part(&token, 1, &b64url_json(&payload));
    assert_refused(verify(&pki, &tampered, now), "ASSERTION_BAD_SIGNATURE");
}

#[test]
fn wrong_audience_is_refused() {
    let pki = pki();
    let now = Utc::now();
    for aud in [json!(OTHER_PARTY), json!([OTHER_PARTY]), json!([])] {
        let mut c = claims(now);
        c["aud"] = aud;
        assert_refused(
            verify(&pki, &signed(&pki, &c), now),
            "ASSERTION_WRONG_AUDIENCE",
        );
    }
}

#[test]
fn expired_assertion_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let token = signed(&pki, &claims(now - TimeDelta::seconds(120)));
    assert_refused(verify(&pki, &token, now), "ASSERTION_EXPIRED");
    // The same assertion was fine while it lived.
    assert!(verify(&pki, &token, now - TimeDelta::seconds(110)).is_ok());
}

#[test]
fn iat_in_the_future_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let token = signed(&pki, &claims(now + TimeDelta::seconds(60)));
    assert_refused(verify(&pki, &token, now), "ASSERTION_IAT_IN_FUTURE");
}

#[test]
fn lifetime_over_30_seconds_is_refused() {
    let pki = pki();
    let now = Utc::now();
    for extra in [31, 3600] {
        let mut c = claims(now);
        c["exp"] = json!(now.timestamp() + extra);
        assert_refused(
            verify(&pki, &signed(&pki, &c), now),
            "ASSERTION_LIFETIME_TOO_LONG",
        );
    }
}

#[test]
fn chain_to_an_untrusted_root_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let k = keys();
    // Same subject as the trusted root, different key: a look-alike.
    let evil_root = make_cert(&CertSpec::ca("Test Root CA"), &k.other_root, None);
    let leaf = make_cert(
        &CertSpec::leaf("consumer", CLIENT_ID),
        &k.leaf,
        Some((&evil_root, &k.other_root)),
    );
    for chain in [vec![&leaf, &evil_root], vec![&leaf]] {
        let token = rs256(&rs256_header(&chain), &claims(now), &k.leaf);
        assert_refused(verify(&pki, &token, now), "ASSERTION_CHAIN_UNTRUSTED");
    }
}

#[test]
fn expired_leaf_certificate_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let k = keys();
    let spec = CertSpec {
        from_days: -30,
        until_days: -1,
        ..CertSpec::leaf("consumer", CLIENT_ID)
    };
    let leaf = make_cert(&spec, &k.leaf, Some((&pki.root, &k.root)));
    let token = rs256(&rs256_header(&[&leaf, &pki.root]), &claims(now), &k.leaf);
    assert_refused(verify(&pki, &token, now), "ASSERTION_CERT_EXPIRED");
}

#[test]
fn certificate_validity_is_judged_at_the_given_time() {
    let pki = pki();
    // Two years on, the assertion itself is fresh but the one-year leaf has lapsed.
    let later = Utc::now() + TimeDelta::days(730);
    let token = signed(&pki, &claims(later));
    assert_refused(verify(&pki, &token, later), "ASSERTION_CERT_EXPIRED");
}

#[test]
fn leaf_issued_by_a_non_ca_intermediate_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let k = keys();
    let chain_with = |intermediate_is_ca: bool| {
        let spec = CertSpec {
            ca: intermediate_is_ca,
            ..CertSpec::ca("Test Intermediate")
        };
        let intermediate = make_cert(&spec, &k.intermediate, Some((&pki.root, &k.root)));
        let leaf = make_cert(
            &CertSpec::leaf("consumer", CLIENT_ID),
            &k.leaf,
            Some((&intermediate, &k.intermediate)),
        );
        rs256(
            &rs256_header(&[&leaf, &intermediate, &pki.root]),
            &claims(now),
            &k.leaf,
        )
    };
    // Control: the same shape with a real CA intermediate passes.
    assert!(verify(&pki, &chain_with(true), now).is_ok());
    assert_refused(
        verify(&pki, &chain_with(false), now),
        "ASSERTION_CHAIN_UNTRUSTED",
    );
}

#[test]
fn leaf_that_is_itself_a_trust_anchor_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let token = rs256(&rs256_header(&[&pki.root]), &claims(now), &keys().root);
    assert_refused(verify(&pki, &token, now), "ASSERTION_CHAIN_UNTRUSTED");
}

#[test]
fn leaf_of_another_party_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let k = keys();
    let other = make_cert(
        &CertSpec::leaf("someone else", OTHER_PARTY),
        &k.other_leaf,
        Some((&pki.root, &k.root)),
    );
    let token = rs256(
        &rs256_header(&[&other, &pki.root]),
        &claims(now),
        &k.other_leaf,
    );
    assert_refused(verify(&pki, &token, now), "ASSERTION_CERT_MISMATCH");

    let nameless = make_cert(
        &CertSpec {
            serial_number: None,
            ..CertSpec::leaf("no id", CLIENT_ID)
        },
        &k.other_leaf,
        Some((&pki.root, &k.root)),
    );
    let token = rs256(&rs256_header(&[&nameless]), &claims(now), &k.other_leaf);
    assert_refused(verify(&pki, &token, now), "ASSERTION_CERT_MISMATCH");
}

#[test]
fn serial_number_with_a_hidden_suffix_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let k = keys();
    let sneaky = format!("{CLIENT_ID}\u{0}{OTHER_PARTY}");
    let leaf = make_cert(
        &CertSpec::leaf("sneaky", &sneaky),
        &k.other_leaf,
        Some((&pki.root, &k.root)),
    );
    let token = rs256(&rs256_header(&[&leaf]), &claims(now), &k.other_leaf);
    assert_refused(verify(&pki, &token, now), "ASSERTION_CERT_MISMATCH");
}

#[test]
fn leaf_must_equal_the_registered_certificate() {
    let pki = pki();
    let now = Utc::now();
    let k = keys();
    let token = signed(&pki, &claims(now));
    let registered = cert_pem(&pki.leaf);
    assert!(
        verify_client_assertion(
            &token,
            CLIENT_ID,
            &our_id(),
            &pki.trust,
            Some(&registered),
            now
        )
        .is_ok()
    );

    // Same party, same CA, but not the certificate registered for it.
    let second = make_cert(
        &CertSpec::leaf("consumer (second)", CLIENT_ID),
        &k.leaf,
        Some((&pki.root, &k.root)),
    );
    let other_registered = cert_pem(&second);
    assert_refused(
        verify_client_assertion(
            &token,
            CLIENT_ID,
            &our_id(),
            &pki.trust,
            Some(&other_registered),
            now,
        ),
        "ASSERTION_CERT_MISMATCH",
    );

    let broken =
        verify_client_assertion(&token, CLIENT_ID, &our_id(), &pki.trust, Some("junk"), now)
            .unwrap_err();
    assert_eq!(broken.code(), "ASSERTION_REGISTERED_CERT_INVALID");
    assert!(broken.is_server_fault());
}

#[test]
fn each_missing_claim_is_refused() {
    let pki = pki();
    let now = Utc::now();
    for claim in ["iss", "sub", "aud", "jti", "exp", "iat"] {
        let mut c = claims(now);
        c.as_object_mut().unwrap().remove(claim);
        let err = verify(&pki, &signed(&pki, &c), now).unwrap_err();
        assert_eq!(err.code(), "ASSERTION_MISSING_CLAIM", "{claim}: {err}");
        assert!(err.to_string().contains(claim), "{err}");
    }
}

#[test]
fn claims_of_the_wrong_type_are_refused() {
    let pki = pki();
    let now = Utc::now();
    for (claim, value) in [
        ("iss", json!(1)),
        ("aud", json!(7)),
        ("aud", json!([7])),
        ("jti", json!("")),
        ("exp", json!("soon")),
        ("iat", json!(-5)),
    ] {
        let mut c = claims(now);
        c[claim] = value;
        let err = verify(&pki, &signed(&pki, &c), now).unwrap_err();
        assert_eq!(err.code(), "ASSERTION_INVALID_CLAIM", "{claim}: {err}");
    }
}

#[test]
fn issuer_or_subject_other_than_client_id_is_refused() {
    let pki = pki();
    let now = Utc::now();
    let mut c = claims(now);
    c["iss"] = json!(OTHER_PARTY);
    assert_refused(
        verify(&pki, &signed(&pki, &c), now),
        "ASSERTION_WRONG_ISSUER",
    );

    let mut c = claims(now);
    c["sub"] = json!(OTHER_PARTY);
    assert_refused(
        verify(&pki, &signed(&pki, &c), now),
        "ASSERTION_WRONG_SUBJECT",
    );

    // A valid assertion presented under someone else's client_id.
    let token = signed(&pki, &claims(now));
    let err =
        verify_client_assertion(&token, OTHER_PARTY, &our_id(), &pki.trust, None, now).unwrap_err();
    assert_eq!(err.code(), "ASSERTION_WRONG_ISSUER");
}

#[test]
fn oversized_assertion_is_refused_before_parsing() {
    let pki = pki();
    let now = Utc::now();
    let mut c = claims(now);
    c["padding"] = json!("x".repeat(MAX_ASSERTION_LEN));
    let err = verify(&pki, &signed(&pki, &c), now).unwrap_err();
    assert_eq!(err.code(), "ASSERTION_TOO_LARGE");
    assert_eq!(err.oauth_error(), "invalid_request");
    // Garbage of the same size is refused the same way, not as malformed.
    assert_refused(
        verify(&pki, &"a".repeat(MAX_ASSERTION_LEN + 1), now),
        "ASSERTION_TOO_LARGE",
    );
}

#[test]
fn malformed_tokens_and_headers_are_refused() {
    let pki = pki();
    let now = Utc::now();
    for junk in ["", "abc", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.e30"] {
        let err = verify(&pki, junk, now).unwrap_err();
        assert!(
            matches!(
                err.code(),
                "ASSERTION_MALFORMED" | "ASSERTION_HEADER_INVALID"
            ),
            "{junk:?}: {err}"
        );
    }

    let mut header = rs256_header(&[&pki.leaf]);
    header.as_object_mut().unwrap().remove("x5c");
    let token = rs256(&header, &claims(now), &keys().leaf);
    assert_refused(verify(&pki, &token, now), "ASSERTION_X5C_MISSING");

    let mut header = rs256_header(&[&pki.leaf]);
    header["x5c"] = json!(["bm90IGEgY2VydGlmaWNhdGU="]);
    let token = rs256(&header, &claims(now), &keys().leaf);
    assert_refused(verify(&pki, &token, now), "ASSERTION_CERT_INVALID");

    let mut header = rs256_header(&[&pki.leaf]);
    header["typ"] = json!("at+jwt");
    let token = rs256(&header, &claims(now), &keys().leaf);
    assert_refused(verify(&pki, &token, now), "ASSERTION_HEADER_INVALID");

    let mut header = rs256_header(&[&pki.leaf]);
    header["crit"] = json!(["exp"]);
    let token = rs256(&header, &claims(now), &keys().leaf);
    assert_refused(verify(&pki, &token, now), "ASSERTION_HEADER_INVALID");

    let token = signed(&pki, &claims(now));
    let err = verify_client_assertion(&token, "not-a-party", &our_id(), &pki.trust, None, now)
        .unwrap_err();
    assert_eq!(err.code(), "ASSERTION_INVALID_CLIENT_ID");
}

#[test]
fn weak_leaf_keys_are_refused() {
    let pki = pki();
    let now = Utc::now();
    let weak = rsa_key(1024);
    let leaf = make_cert(
        &CertSpec::leaf("weak", CLIENT_ID),
        &weak,
        Some((&pki.root, &keys().root)),
    );
    let token = rs256(&rs256_header(&[&leaf]), &claims(now), &weak);
    assert_refused(verify(&pki, &token, now), "ASSERTION_CERT_INVALID");
}

#[test]
fn oauth_errors_follow_rfc_6749_and_7523() {
    assert_eq!(
        AssertionError::Malformed("x").oauth_error(),
        "invalid_request"
    );
    for e in [
        AssertionError::BadSignature,
        AssertionError::Expired,
        AssertionError::ChainUntrusted("x".into()),
        AssertionError::Replayed,
    ] {
        assert_eq!(e.oauth_error(), "invalid_client", "{e}");
    }
    assert_eq!(AssertionError::Replayed.code(), "ASSERTION_REPLAYED");
}

#[test]
fn development_pki_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let connector = our_id();
    let consumer = client_id();
    let made = devcerts::generate(dir.path(), &connector, &consumer).unwrap();
    assert!(made.connector_key_created);
    assert_eq!(made.ca_cert, dir.path().join("trust/dev-ca.pem"));

    let trust = TrustStore::load_dir(&made.trust_dir).unwrap();
    assert_eq!(trust.len(), 1);
    let now = Utc::now();
    let consumer_key = std::fs::read_to_string(&made.consumer_key).unwrap();
    let consumer_cert = std::fs::read_to_string(&made.consumer_cert).unwrap();
    let ca_cert = std::fs::read_to_string(&made.ca_cert).unwrap();
    let token = sign_client_assertion(
        &consumer_key,
        &[&consumer_cert, &ca_cert],
        consumer.as_str(),
        connector.as_str(),
        now,
    )
    .unwrap();
    let verified =
        verify_client_assertion(&token, consumer.as_str(), &connector, &trust, None, now).unwrap();
    assert_eq!(verified.party_id, consumer);
    // Registered-certificate mode with the PEM as written to disk.
    assert!(
        verify_client_assertion(
            &token,
            consumer.as_str(),
            &connector,
            &trust,
            Some(&consumer_cert),
            now
        )
        .is_ok()
    );

    // The connector certificate is a TLS server certificate for loopback, under the dev CA.
    let connector_cert =
        openssl::x509::X509::from_pem(&std::fs::read(&made.connector_cert).unwrap()).unwrap();
    let ca = openssl::x509::X509::from_pem(ca_cert.as_bytes()).unwrap();
    assert!(connector_cert.verify(&ca.public_key().unwrap()).unwrap());
    let sans = connector_cert.subject_alt_names().unwrap();
    assert!(sans.iter().any(|n| n.dnsname() == Some("localhost")));
    assert!(
        sans.iter()
            .any(|n| n.ipaddress() == Some(&[127, 0, 0, 1][..]))
    );
    let serial = connector_cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::SERIALNUMBER)
        .next()
        .unwrap()
        .data()
        .to_string()
        .unwrap();
    assert_eq!(serial, connector.as_str());

    // The dev CA is a CA (it can anchor a chain) but the consumer leaf is not.
    let consumer_leaf = openssl::x509::X509::from_pem(consumer_cert.as_bytes()).unwrap();
    let consumer_private =
        openssl::pkey::PKey::private_key_from_pem(consumer_key.as_bytes()).unwrap();
    let k = keys();
    let below_leaf = make_cert(
        &CertSpec::leaf("under a leaf", CLIENT_ID),
        &k.leaf,
        Some((&consumer_leaf, &consumer_private)),
    );
    let token = rs256(
        &rs256_header(&[&below_leaf, &consumer_leaf]),
        &claims(now),
        &k.leaf,
    );
    let err =
        verify_client_assertion(&token, CLIENT_ID, &connector, &trust, None, now).unwrap_err();
    assert_eq!(err.code(), "ASSERTION_CHAIN_UNTRUSTED");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [&made.ca_key, &made.connector_key, &made.consumer_key] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }

    // Running it again keeps the connector key (tokens stay valid) and renews the rest.
    let connector_key = std::fs::read(&made.connector_key).unwrap();
    let again = devcerts::generate(dir.path(), &connector, &consumer).unwrap();
    assert!(!again.connector_key_created);
    assert_eq!(std::fs::read(&again.connector_key).unwrap(), connector_key);
}

#[test]
fn trust_store_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = TrustStore::load_dir(dir.path()).err().unwrap();
    assert!(matches!(err, TrustStoreError::Empty { .. }), "{err}");

    // Hidden files are ignored; a broken one is named.
    std::fs::write(dir.path().join(".hidden"), "whatever").unwrap();
    std::fs::write(dir.path().join("broken.pem"), "not a certificate").unwrap();
    let err = TrustStore::load_dir(dir.path()).err().unwrap();
    assert!(err.to_string().contains("broken.pem"), "{err}");
    std::fs::remove_file(dir.path().join("broken.pem")).unwrap();

    let k = keys();
    let root = make_cert(&CertSpec::ca("Root"), &k.root, None);
    let leaf = make_cert(
        &CertSpec::leaf("leaf", CLIENT_ID),
        &k.leaf,
        Some((&root, &k.root)),
    );
    std::fs::write(dir.path().join("leaf.pem"), leaf.to_pem().unwrap()).unwrap();
    let err = TrustStore::load_dir(dir.path()).err().unwrap();
    assert!(
        matches!(err, TrustStoreError::NotSelfSigned { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("leaf.pem"), "{err}");

    std::fs::write(dir.path().join("leaf.pem"), root.to_pem().unwrap()).unwrap();
    assert_eq!(TrustStore::load_dir(dir.path()).unwrap().len(), 1);

    let missing = dir.path().join("nope");
    let err = TrustStore::load_dir(&missing).err().unwrap();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn party_ids_parse_through_serde() {
    let id: PartyId = serde_json::from_value(json!(OUR_ID)).unwrap();
    assert_eq!(id, our_id());
    assert!(serde_json::from_value::<PartyId>(json!("EU.EORI.")).is_err());
}
