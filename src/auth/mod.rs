//! Credentials: party ids, trust anchors, iSHARE client assertions, our access tokens and
//! development certificates. Pure library code: no HTTP, no SQL, no configuration loading;
//! replay detection (jti store) and consumer status live with the caller, who owns the database.

pub mod access_token;
pub mod assertion;
pub mod devcerts;
pub mod party;
pub mod thumbprint;
pub mod token_cache;
pub mod trust;

mod jws;

pub use access_token::{
    AccessClaims, AccessTokenIssuer, Confirmation, DEFAULT_ACCESS_TOKEN_TTL, IssuedToken, KeyError,
    TokenError,
};
pub use assertion::{
    AssertionError, CLIENT_ASSERTION_TYPE, MAX_ASSERTION_LEN, MAX_ASSERTION_LIFETIME_SECS,
    SignAssertionError, VerifiedAssertion, sign_client_assertion, verify_client_assertion,
};
pub use devcerts::{DevCertError, DevCerts, ensure_connector_key};
pub use party::{PartyId, PartyIdError};
pub use thumbprint::CertThumbprint;
pub use token_cache::VerifiedTokens;
pub use trust::{TrustStore, TrustStoreError};

/// Clock difference we tolerate between us and a peer (or between our own replicas) when
/// checking `iat`, `nbf` and `exp`. Small on purpose: assertions only live 30 seconds.
pub const CLOCK_SKEW_SECS: i64 = 5;
