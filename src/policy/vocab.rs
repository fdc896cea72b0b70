//! The closed vocabulary the engine understands: ODRL 2.2 terms, the action hierarchy (`includedIn`) and the
//! Sluis profile (`https://w3id.org/sluis/odrl#`). Anything outside this vocabulary is rejected at load time,
//! because a term the engine does not understand must never be skipped.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Namespace of ODRL 2.2 terms.
pub const ODRL_NS: &str = "http://www.w3.org/ns/odrl/2/";
/// Namespace of the Sluis ODRL profile.
pub const SLUIS_NS: &str = "https://w3id.org/sluis/odrl#";

/// Prefixes of the ODRL JSON-LD context (plus `sluis:`), used to expand compact IRIs in values.
pub(crate) const KNOWN_PREFIXES: &[(&str, &str)] = &[
    ("odrl", ODRL_NS),
    ("sluis", SLUIS_NS),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("dcterms", "http://purl.org/dc/terms/"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("schema", "http://schema.org/"),
    ("cc", "http://creativecommons.org/ns#"),
];

/// A term after resolving prefixes: an ODRL term, a Sluis profile term, or something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Term<'a> {
    Odrl(&'a str),
    Sluis(&'a str),
    Other(&'a str),
}

/// Resolves a key or term as the ODRL context would: plain terms, `odrl:` and full ODRL IRIs are ODRL terms.
pub(crate) fn term(s: &str) -> Term<'_> {
    if let Some(rest) = s.strip_prefix(ODRL_NS).or_else(|| s.strip_prefix("odrl:")) {
        Term::Odrl(rest)
    } else if let Some(rest) = s
        .strip_prefix(SLUIS_NS)
        .or_else(|| s.strip_prefix("sluis:"))
    {
        Term::Sluis(rest)
    } else if s.contains(':') {
        Term::Other(s)
    } else {
        Term::Odrl(s)
    }
}

/// Actions are numbered so that a rule's action set and an action's ancestors are 64-bit masks.
pub type ActionId = u8;

/// `(term, includedIn)`: ODRL 2.2 Common Vocabulary actions, `write` (deprecated in 2.2 but still in the
/// context and in the conformance vectors), then the Sluis profile's duty actions.
const ACTIONS: &[(&str, Option<&str>)] = &[
    ("use", None),
    ("transfer", None),
    ("acceptTracking", Some("use")),
    ("aggregate", Some("use")),
    ("annotate", Some("use")),
    ("anonymize", Some("use")),
    ("archive", Some("use")),
    ("attribute", Some("use")),
    ("compensate", Some("use")),
    ("concurrentUse", Some("use")),
    ("delete", Some("use")),
    ("derive", Some("use")),
    ("digitize", Some("use")),
    ("display", Some("play")),
    ("distribute", Some("use")),
    ("ensureExclusivity", Some("use")),
    ("execute", Some("use")),
    ("extract", Some("reproduce")),
    ("give", Some("transfer")),
    ("grantUse", Some("use")),
    ("include", Some("use")),
    ("index", Some("use")),
    ("inform", Some("use")),
    ("install", Some("use")),
    ("modify", Some("use")),
    ("move", Some("use")),
    ("nextPolicy", Some("use")),
    ("obtainConsent", Some("use")),
    ("play", Some("use")),
    ("present", Some("use")),
    ("print", Some("present")),
    ("read", Some("use")),
    ("reproduce", Some("use")),
    ("reviewPolicy", Some("use")),
    ("sell", Some("transfer")),
    ("stream", Some("use")),
    ("synchronize", Some("use")),
    ("textToSpeech", Some("read")),
    ("transform", Some("use")),
    ("translate", Some("use")),
    ("uninstall", Some("use")),
    ("watermark", Some("use")),
    ("write", Some("use")),
    ("sluis:dropFields", None),
    ("sluis:pseudonymiseFields", None),
    ("sluis:filterRows", None),
];

const _: () = assert!(ACTIONS.len() <= 64, "action masks are u64");

pub(crate) const ACTION_ATTRIBUTE: &str = "attribute";
pub(crate) const ACTION_DROP_FIELDS: &str = "sluis:dropFields";
pub(crate) const ACTION_PSEUDONYMISE_FIELDS: &str = "sluis:pseudonymiseFields";
pub(crate) const ACTION_FILTER_ROWS: &str = "sluis:filterRows";

struct ActionTable {
    by_name: HashMap<&'static str, ActionId>,
    /// For each action: the mask of itself and every action it is (transitively) included in.
    ancestors: Vec<u64>,
}

static TABLE: LazyLock<ActionTable> = LazyLock::new(|| {
    let by_name: HashMap<&'static str, ActionId> = ACTIONS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, i as ActionId))
        .collect();
    let ancestors = (0..ACTIONS.len())
        .map(|i| {
            let mut mask = 0u64;
            let mut current = Some(i);
            // The table is a tree (checked by the unit test), so this walk ends at a root.
            while let Some(c) = current {
                mask |= 1 << c;
                current = ACTIONS[c]
                    .1
                    .and_then(|p| by_name.get(p).map(|&id| id as usize));
            }
            mask
        })
        .collect();
    ActionTable { by_name, ancestors }
});

/// Resolves an action written in any accepted form (`read`, `odrl:read`, the full IRI, `sluis:dropFields`).
pub fn action_id(name: &str) -> Option<ActionId> {
    let key = match term(name) {
        Term::Odrl(t) => t,
        Term::Sluis(t) => {
            return ACTIONS
                .iter()
                .position(|(n, _)| n.strip_prefix("sluis:") == Some(t))
                .map(|i| i as ActionId);
        }
        Term::Other(_) => return None,
    };
    TABLE.by_name.get(key).copied()
}

/// The mask of `id` and all actions that include it: a rule naming any of these covers `id`.
pub(crate) fn ancestors(id: ActionId) -> u64 {
    TABLE.ancestors[id as usize]
}

/// The canonical name of an action (a plain ODRL term or a `sluis:` term).
pub fn action_name(id: ActionId) -> &'static str {
    ACTIONS[id as usize].0
}

/// The full IRI of an action, as returned in obligations.
pub(crate) fn action_iri(id: ActionId) -> String {
    let name = action_name(id);
    match name.strip_prefix("sluis:") {
        Some(local) => format!("{SLUIS_NS}{local}"),
        None => format!("{ODRL_NS}{name}"),
    }
}

/// Expands a compact IRI whose prefix is known (`odrl:`, `sluis:`, `dct:`, ... or one declared inline in the
/// policy's `@context`); everything else (`urn:`, `http:`) is already absolute and kept as written.
pub(crate) fn expand_iri(value: &str, inline: &[(String, String)]) -> String {
    if let Some((prefix, local)) = value.split_once(':')
        && !local.starts_with("//")
    {
        if let Some((_, ns)) = inline.iter().find(|(p, _)| p == prefix) {
            return format!("{ns}{local}");
        }
        if let Some((_, ns)) = KNOWN_PREFIXES.iter().find(|(p, _)| *p == prefix) {
            return format!("{ns}{local}");
        }
    }
    value.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parent_is_in_the_table_and_use_covers_read_not_sell() {
        for (name, parent) in ACTIONS {
            if let Some(p) = parent {
                assert!(
                    TABLE.by_name.contains_key(p),
                    "{name} has unknown parent {p}"
                );
            }
        }
        let read = action_id("read").map(ancestors).unwrap_or(0);
        let sell = action_id("http://www.w3.org/ns/odrl/2/sell")
            .map(ancestors)
            .unwrap_or(0);
        let use_bit = action_id("odrl:use").map(|u| 1u64 << u).unwrap_or(0);
        assert_ne!(read & use_bit, 0);
        assert_eq!(sell & use_bit, 0);
    }
}
