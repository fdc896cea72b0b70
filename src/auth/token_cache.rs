//! A cache of access tokens whose signature has been verified, so that the RSA verification runs
//! once per token rather than once per request. Only the signature work is cached: expiry, the
//! certificate binding and the consumer's status are still checked on every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{AccessClaims, AccessTokenIssuer, TokenError};

/// More distinct live tokens than this and the cache starts over (each token is re-verified once).
const CAPACITY: usize = 16_384;

#[derive(Default)]
pub struct VerifiedTokens {
    // Keyed by the token's SHA-256: a lookup never compares secrets byte by byte.
    // Shared, so that a hit costs a reference count rather than a copy of every claim.
    entries: RwLock<HashMap<[u8; 32], Arc<AccessClaims>>>,
}

impl VerifiedTokens {
    /// `issuer.verify`, with the signature check skipped for a token verified before.
    pub fn verify(
        &self,
        issuer: &AccessTokenIssuer,
        token: &str,
        now: DateTime<Utc>,
        presented_client_cert_der: Option<&[u8]>,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let Some(claims) = cached else {
            let claims = Arc::new(issuer.verify(token, now, presented_client_cert_der)?);
            let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= CAPACITY {
                let now_secs = now.timestamp();
                entries.retain(|_, c| c.exp > now_secs);
                if entries.len() >= CAPACITY {
                    entries.clear();
                }
            }
            entries.insert(key, Arc::clone(&claims));
            return Ok(claims);
        };
        issuer.check_claims(&claims, now, presented_client_cert_der)?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;

    use super::*;
    use crate::auth::{CertThumbprint, PartyId};

    fn issuer() -> AccessTokenIssuer {
        let key = openssl::rsa::Rsa::generate(2048).unwrap();
        let pem = String::from_utf8(
            openssl::pkey::PKey::from_rsa(key)
                .unwrap()
                .private_key_to_pem_pkcs8()
                .unwrap(),
        )
        .unwrap();
        let us = PartyId::parse("did:ishare:EU.NL.NTRNL-00000001").unwrap();
        AccessTokenIssuer::new(&pem, us, Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn cached_tokens_still_expire_and_keep_their_binding() {
        let issuer = issuer();
        let cache = VerifiedTokens::default();
        let consumer = PartyId::parse("EU.EORI.NL123456789").unwrap();
        let now = Utc::now();
        let plain = issuer.issue_at(&consumer, None, now).unwrap().access_token;
        assert!(cache.verify(&issuer, &plain, now, None).is_ok());
        assert!(
            cache.verify(&issuer, &plain, now, None).is_ok(),
            "served from the cache"
        );
        let later = now + TimeDelta::seconds(3600);
        assert_eq!(
            cache.verify(&issuer, &plain, later, None),
            Err(TokenError::Expired)
        );

        let cert = b"client certificate DER";
        let bound = issuer
            .issue_at(&consumer, Some(&CertThumbprint::of_der(cert)), now)
            .unwrap()
            .access_token;
        assert!(cache.verify(&issuer, &bound, now, Some(cert)).is_ok());
        assert!(matches!(
            cache.verify(&issuer, &bound, now, None),
            Err(TokenError::CertBinding(_))
        ));
        assert!(matches!(
            cache.verify(&issuer, &bound, now, Some(b"other")),
            Err(TokenError::CertBinding(_))
        ));

        // A token that differs in one character is a different token: verified, and refused.
        let mut tampered = plain.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(cache.verify(&issuer, &tampered, now, None).is_err());
    }
}
