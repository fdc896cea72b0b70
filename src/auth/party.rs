//! The identifier of an organisation in the data space. Validated once, on parse, so that
//! everything downstream (claims, certificates, audit records) can compare plain strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest party id we accept; keeps database columns and log lines bounded. The longest real
/// forms (DIDs) are far shorter.
const MAX_LEN: usize = 256;

const DID_PREFIX: &str = "did:ishare:";
const EORI_PREFIX: &str = "EU.EORI.";

/// A validated party identifier: `did:ishare:<id>` (e.g. `did:ishare:EU.NL.NTRNL-00000001`),
/// an EORI number in iSHARE notation (`EU.EORI.NL123456789`) or a 20-digit OIN
/// (Dutch government organisation number, as used by FSC).
///
/// Comparison is exact: ids are not case-folded, because certificates and claims must carry
/// the id exactly as registered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartyIdError {
    #[error("party id is empty")]
    Empty,
    #[error("party id is longer than {MAX_LEN} characters")]
    TooLong,
    #[error(
        "party id {0:?} is not a did:ishare identifier, an EORI number (EU.EORI.<country><id>) or a 20-digit OIN"
    )]
    Unrecognised(String),
}

impl PartyId {
    pub fn parse(input: &str) -> Result<PartyId, PartyIdError> {
        if input.is_empty() {
            return Err(PartyIdError::Empty);
        }
        if input.len() > MAX_LEN {
            return Err(PartyIdError::TooLong);
        }
        if is_did(input) || is_eori(input) || is_oin(input) {
            Ok(PartyId(input.to_owned()))
        } else {
            Err(PartyIdError::Unrecognised(input.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `did:ishare:` followed by a DID method-specific id: colon-separated segments of
/// letters, digits, `.`, `-` and `_`, the last one non-empty (W3C DID Core `idchar`,
/// without percent-encoding, which no iSHARE id uses).
fn is_did(input: &str) -> bool {
    let Some(rest) = input.strip_prefix(DID_PREFIX) else {
        return false;
    };
    !rest.is_empty()
        && !rest.ends_with(':')
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
}

/// EORI: two-letter country code plus up to 15 alphanumerics (EU Regulation 2013/1352 format).
fn is_eori(input: &str) -> bool {
    let Some(rest) = input.strip_prefix(EORI_PREFIX) else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() >= 3
        && bytes.len() <= 17
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn is_oin(input: &str) -> bool {
    input.len() == 20 && input.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PartyId {
    type Err = PartyIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PartyId::parse(s)
    }
}

impl TryFrom<String> for PartyId {
    type Error = PartyIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        PartyId::parse(&value)
    }
}

impl From<PartyId> for String {
    fn from(value: PartyId) -> Self {
        value.0
    }
}

impl AsRef<str> for PartyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_forms() {
        for ok in [
            "did:ishare:EU.NL.NTRNL-00000001",
            "EU.EORI.NL123456789",
            "EU.EORI.NL000000001",
            "00000001234567890000",
        ] {
            assert_eq!(PartyId::parse(ok).map(|p| p.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn refuses_lookalikes() {
        for bad in [
            "",
            "did:ishare:",
            "did:ishare:EU.NL:",
            "did:web:example.org",
            "did:ishare:EU NL",
            "EU.EORI.",
            "EU.EORI.NL",
            "EU.EORI.nl123",
            "EU.EORI.NL1234567890123456",
            "0000000123456789000",
            "000000012345678900001",
            "0000000123456789000a",
            "NL123456789",
        ] {
            assert!(PartyId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            PartyId::parse(&format!("did:ishare:{}", "a".repeat(300))),
            Err(PartyIdError::TooLong)
        );
    }

    #[test]
    fn serde_goes_through_parse() {
        let id: PartyId = serde_json::from_str("\"EU.EORI.NL123456789\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"EU.EORI.NL123456789\""
        );
        assert!(serde_json::from_str::<PartyId>("\"nobody\"").is_err());
    }
}
