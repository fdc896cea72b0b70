//! Access tokens the token endpoint hands out and the data endpoints accept: RS256 JWTs signed
//! with the connector's key, optionally bound to the client's TLS certificate (RFC 8705).
//! Whether the consumer is still registered and active is the caller's check, on every request.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use openssl::pkey::PKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::jws::{self, SignatureFailure};
use crate::auth::{CLOCK_SKEW_SECS, CertThumbprint, PartyId};

/// iSHARE's access token lifetime.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// RFC 9068's media type for JWT access tokens. Checking it on the way in means no other JWT
/// we sign with the same key (a capabilities token, say) can be passed off as an access token.
const TOKEN_TYPE: &str = "at+jwt";
const ALGORITHM: Algorithm = Algorithm::RS256;
const MAX_TOKEN_LEN: usize = 8 * 1024;
const MIN_RSA_BITS: u32 = 2048;

/// The claims of our access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Us.
    pub iss: PartyId,
    /// The consumer the token was issued to.
    pub sub: PartyId,
    /// Us again: the token is only good at this connector.
    pub aud: PartyId,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 8705 §3.1 confirmation: the token may only be used over mTLS with this certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// A freshly issued token, ready for the token endpoint's JSON answer.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    /// Seconds, for the `expires_in` member.
    pub expires_in: u64,
    /// What was signed, e.g. for the audit record (jti, exp).
    pub claims: AccessClaims,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the connector key is not an RSA private key in PEM form")]
    NotRsaPem,
    #[error("the connector RSA key is shorter than {MIN_RSA_BITS} bits")]
    TooShort,
    #[error("the access token lifetime must be between 1 second and 1 day")]
    BadTtl,
}

/// Why a presented access token is refused (all answer 401), or why issuing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token is invalid: {0}")]
    Invalid(&'static str),
    #[error("access token has expired")]
    Expired,
    #[error("access token is meant for another audience")]
    WrongAudience,
    #[error("access token was issued by someone else")]
    WrongIssuer,
    #[error("access token certificate binding failed: {0}")]
    CertBinding(&'static str),
    #[error("access token could not be signed")]
    Signing,
}

impl TokenError {
    /// Stable machine-readable code for problem+json bodies and audit records.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Invalid(_) => "ACCESS_TOKEN_INVALID",
            TokenError::Expired => "ACCESS_TOKEN_EXPIRED",
            TokenError::WrongAudience => "ACCESS_TOKEN_WRONG_AUDIENCE",
            TokenError::WrongIssuer => "ACCESS_TOKEN_WRONG_ISSUER",
            TokenError::CertBinding(_) => "ACCESS_TOKEN_CERT_BINDING",
            TokenError::Signing => "ACCESS_TOKEN_SIGNING_FAILED",
        }
    }
}

/// Signs and checks access tokens with the connector's key. Share it behind an `Arc`.
pub struct AccessTokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    our_party_id: PartyId,
    ttl: Duration,
}

impl AccessTokenIssuer {
    /// `private_key_pem`: the connector's RSA key (PKCS#1 or PKCS#8 PEM, unencrypted).
    pub fn new(
        private_key_pem: &str,
        our_party_id: PartyId,
        ttl: Duration,
    ) -> Result<AccessTokenIssuer, KeyError> {
        if ttl.as_secs() == 0 || ttl.as_secs() > 86_400 {
            return Err(KeyError::BadTtl);
        }
        let rsa = PKey::private_key_from_pem(private_key_pem.as_bytes())
            .and_then(|key| key.rsa())
            .map_err(|_| KeyError::NotRsaPem)?;
        if rsa.size() * 8 < MIN_RSA_BITS {
            return Err(KeyError::TooShort);
        }
        // jsonwebtoken's RSA signer wants PKCS#1 DER; going through OpenSSL accepts both PEM
        // flavours and validates the key once, here, instead of at the first request.
        let pkcs1 = rsa.private_key_to_der().map_err(|_| KeyError::NotRsaPem)?;
        Ok(AccessTokenIssuer {
            encoding: EncodingKey::from_rsa_der(&pkcs1),
            decoding: DecodingKey::from_rsa_raw_components(&rsa.n().to_vec(), &rsa.e().to_vec()),
            our_party_id,
            ttl,
        })
    }

    pub fn our_party_id(&self) -> &PartyId {
        &self.our_party_id
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token for `consumer`, valid for the configured ttl from now. Pass the
    /// thumbprint of the client's TLS certificate when the request came over mTLS.
    pub fn issue(
        &self,
        consumer: &PartyId,
        client_cert: Option<&CertThumbprint>,
    ) -> Result<IssuedToken, TokenError> {
        self.issue_at(consumer, client_cert, Utc::now())
    }

    pub fn issue_at(
        &self,
        consumer: &PartyId,
        client_cert: Option<&CertThumbprint>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, TokenError> {
        let iat = now.timestamp();
        // The constructor bounds ttl to a day, so this cannot overflow.
        let expires_in = self.ttl.as_secs();
        let claims = AccessClaims {
            iss: self.our_party_id.clone(),
            sub: consumer.clone(),
            aud: self.our_party_id.clone(),
            iat,
            exp: iat + expires_in as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            cnf: client_cert.map(|t| Confirmation {
                x5t_s256: t.to_base64url(),
            }),
        };
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(TOKEN_TYPE.to_owned());
        let access_token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|_| TokenError::Signing)?;
        Ok(IssuedToken {
            access_token,
            expires_in,
            claims,
        })
    }

    /// Checks a bearer token at time `now`. `presented_client_cert_der` is the client's TLS
    /// certificate when the connection is mTLS; a certificate-bound token without it, or with
    /// another certificate, is refused. Does not check whether the consumer is still active.
    pub fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
        presented_client_cert_der: Option<&[u8]>,
    ) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid("too large"));
        }
        let header = jws::decode_header(token).ok_or(TokenError::Invalid("not a JWT"))?;
        // Pinned before the library sees the token: only our own algorithm, never none/HS*.
        if header.str_field("alg") != Some("RS256") {
            return Err(TokenError::Invalid("algorithm not allowed"));
        }
        if header.str_field("typ") != Some(TOKEN_TYPE) {
            return Err(TokenError::Invalid("not an access token"));
        }
        let payload =
            jws::verify_signature(token, ALGORITHM, &self.decoding).map_err(
                |e| match jws::classify(&e) {
                    SignatureFailure::BadSignature => {
                        TokenError::Invalid("signature does not verify")
                    }
                    SignatureFailure::AlgorithmRejected => {
                        TokenError::Invalid("algorithm not allowed")
                    }
                    SignatureFailure::Malformed => TokenError::Invalid("not a JWT"),
                },
            )?;
        let claims: AccessClaims = serde_json::from_value(Value::Object(payload))
            .map_err(|_| TokenError::Invalid("claims are malformed"))?;

        self.check_claims(&claims, now, presented_client_cert_der)?;
        Ok(claims)
    }

    /// The checks that depend on the moment and the connection rather than on the signature:
    /// issuer, audience, lifetime and the certificate binding. [`AccessTokenIssuer::verify`]
    /// runs them too; a cache of verified signatures runs only these.
    pub fn check_claims(
        &self,
        claims: &AccessClaims,
        now: DateTime<Utc>,
        presented_client_cert_der: Option<&[u8]>,
    ) -> Result<(), TokenError> {
        if claims.iss != self.our_party_id {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.our_party_id {
            return Err(TokenError::WrongAudience);
        }
        let now_secs = now.timestamp();
        if claims.iat > now_secs + CLOCK_SKEW_SECS {
            return Err(TokenError::Invalid("issued in the future"));
        }
        if now_secs >= claims.exp + CLOCK_SKEW_SECS {
            return Err(TokenError::Expired);
        }
        if let Some(cnf) = &claims.cnf {
            let bound = CertThumbprint::from_base64url(&cnf.x5t_s256)
                .ok_or(TokenError::Invalid("cnf is malformed"))?;
            let presented = presented_client_cert_der.ok_or(TokenError::CertBinding(
                "token is bound to a client certificate and none was presented",
            ))?;
            if !bound.matches(&CertThumbprint::of_der(presented)) {
                return Err(TokenError::CertBinding(
                    "presented client certificate is not the one the token is bound to",
                ));
            }
        }
        Ok(())
    }
}
