//! Reads an ODRL policy file (compact JSON-LD against the ODRL 2.2 context) into catalog nodes, so
//! the catalog can embed it as the product's offer in JSON-LD and Turtle alike without fetching
//! the remote ODRL context. Only the catalog's view: evaluating policies is `policy`'s job.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::rdf::{Literal, Node, Object};

const ODRL: &str = "http://www.w3.org/ns/odrl/2/";
const XSD: &str = "http://www.w3.org/2001/XMLSchema#";

/// The prefixes the ODRL 2.2 context defines.
const ODRL_PREFIXES: &[(&str, &str)] = &[
    ("odrl", ODRL),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("xsd", XSD),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("schema", "http://schema.org/"),
    ("cc", "http://creativecommons.org/ns#"),
];

/// ODRL terms whose values are nodes (rules, constraints, parties, assets).
const NODE_TERMS: &[&str] = &[
    "permission",
    "prohibition",
    "obligation",
    "duty",
    "consequence",
    "remedy",
    "constraint",
    "refinement",
    "and",
    "or",
    "xone",
    "andSequence",
];

/// ODRL terms whose string values are IRIs.
const IRI_TERMS: &[&str] = &[
    "target",
    "assignee",
    "assigner",
    "profile",
    "partOf",
    "inheritFrom",
    "output",
    "source",
    "unit",
    "dataType",
    "rightOperandReference",
    "function",
];

/// ODRL terms whose string values are ODRL vocabulary (`read` is `odrl:read`).
const VOCAB_TERMS: &[&str] = &["action", "leftOperand", "operator", "conflict"];

struct Reader {
    prefixes: HashMap<String, String>,
}

/// The policy document as a node typed `odrl:Offer` (and `odrl:Policy`), offered by `assigner`
/// unless the file names one.
pub fn offer_node(doc: &Json, assigner: &str) -> Result<Node, String> {
    let Json::Object(obj) = doc else {
        return Err("a policy is a JSON object".into());
    };
    let mut prefixes: HashMap<String, String> = ODRL_PREFIXES
        .iter()
        .map(|(p, ns)| ((*p).to_string(), (*ns).to_string()))
        .collect();
    // Inline context objects may add prefixes; remote contexts other than ODRL's cannot be
    // read offline and add nothing.
    let inline = match obj.get("@context") {
        Some(Json::Array(items)) => items.iter().collect(),
        Some(c) => vec![c],
        None => vec![],
    };
    for ctx in inline {
        if let Json::Object(defs) = ctx {
            for (k, v) in defs {
                if let Json::String(ns) = v {
                    prefixes.insert(k.clone(), ns.clone());
                }
            }
        }
    }
    let reader = Reader { prefixes };
    let mut node = reader.node(doc, 0)?;
    let odrl = |t: &str| format!("{ODRL}{t}");
    let was_offerable = node.types.is_empty()
        || node
            .types
            .iter()
            .any(|t| *t == odrl("Set") || *t == odrl("Policy") || *t == odrl("Offer"));
    if was_offerable {
        node.types
            .retain(|t| *t != odrl("Set") && *t != odrl("Policy") && *t != odrl("Offer"));
        node.types.insert(0, odrl("Offer"));
        let has_assigner = node.props.iter().any(|(p, _)| *p == odrl("assigner"));
        if !has_assigner && !assigner.is_empty() {
            node.props.push((odrl("assigner"), party(assigner)));
        }
    }
    // DCAT-AP checks the value of `odrl:hasPolicy` for this class.
    let policy = odrl("Policy");
    if !node.types.contains(&policy) {
        node.types.push(policy);
    }
    Ok(node)
}

/// A party id is an IRI (`did:ishare:...`) or a bare identifier (`EU.EORI.NL...`).
fn party(id: &str) -> Object {
    let mut node = match reqwest::Url::parse(id) {
        Ok(_) => Node::named(id),
        Err(_) => Node::blank(),
    };
    node.types.push(format!("{ODRL}Party"));
    node.props.push((
        "http://purl.org/dc/terms/identifier".into(),
        Object::Literal(Literal {
            value: id.to_string(),
            lang: None,
            datatype: None,
        }),
    ));
    Object::Node(node)
}

impl Reader {
    fn node(&self, value: &Json, depth: usize) -> Result<Node, String> {
        if depth > 32 {
            return Err("the policy nests too deeply".into());
        }
        let Json::Object(obj) = value else {
            return Err("expected a JSON object".into());
        };
        let mut node = Node::blank();
        for (key, v) in obj {
            match key.as_str() {
                "@context" => {}
                "uid" | "@id" => {
                    let Json::String(id) = v else {
                        return Err(format!("`{key}` must be a string"));
                    };
                    node.id = Some(self.expand(id, false));
                }
                "type" | "@type" => {
                    for t in strings(v) {
                        node.types.push(self.expand(t, true));
                    }
                }
                k if NODE_TERMS.contains(&k) => {
                    for item in items(v) {
                        let object = match item {
                            Json::String(s) => Object::Iri(self.expand(s, false)),
                            other => Object::Node(self.node(other, depth + 1)?),
                        };
                        node.props.push((format!("{ODRL}{k}"), object));
                    }
                }
                k if IRI_TERMS.contains(&k) || VOCAB_TERMS.contains(&k) => {
                    let vocab = VOCAB_TERMS.contains(&k);
                    for item in items(v) {
                        let object = match item {
                            Json::String(s) => Object::Iri(self.expand(s, vocab)),
                            Json::Object(o) if o.len() == 1 && o.contains_key("@id") => {
                                self.value(item, depth)?
                            }
                            other => Object::Node(self.node(other, depth + 1)?),
                        };
                        node.props.push((format!("{ODRL}{k}"), object));
                    }
                }
                "rightOperand" => {
                    for item in items(v) {
                        node.props
                            .push((format!("{ODRL}rightOperand"), self.value(item, depth)?));
                    }
                }
                k if k.contains(':') && !k.starts_with('@') => {
                    let predicate = self.expand(k, false);
                    for item in items(v) {
                        node.props
                            .push((predicate.clone(), self.value(item, depth)?));
                    }
                }
                // Terms the ODRL context does not define are dropped, as a JSON-LD processor
                // would drop them.
                _ => {}
            }
        }
        Ok(node)
    }

    /// A value in JSON-LD's sense: a string literal, `{"@id"}`, `{"@value"}`, or a nested node.
    fn value(&self, v: &Json, depth: usize) -> Result<Object, String> {
        let lit = |value: String, datatype: Option<String>| {
            Object::Literal(Literal {
                value,
                lang: None,
                datatype,
            })
        };
        Ok(match v {
            Json::String(s) => lit(s.clone(), None),
            Json::Bool(b) => lit(b.to_string(), Some(format!("{XSD}boolean"))),
            Json::Number(n) if n.is_i64() || n.is_u64() => {
                lit(n.to_string(), Some(format!("{XSD}integer")))
            }
            Json::Number(n) => lit(n.to_string(), Some(format!("{XSD}decimal"))),
            Json::Object(o) => {
                if let Some(Json::String(id)) = o.get("@id") {
                    if o.len() == 1 {
                        return Ok(Object::Iri(self.expand(id, false)));
                    }
                }
                if let Some(value) = o.get("@value") {
                    let text = match value {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    return Ok(Object::Literal(Literal {
                        value: text,
                        lang: o
                            .get("@language")
                            .and_then(Json::as_str)
                            .map(str::to_string),
                        datatype: o
                            .get("@type")
                            .and_then(Json::as_str)
                            .map(|t| self.expand(t, false)),
                    }));
                }
                Object::Node(self.node(v, depth + 1)?)
            }
            Json::Null | Json::Array(_) => return Err("unexpected value in the policy".into()),
        })
    }

    /// `prefix:local` with a known prefix, an absolute IRI as it is, and (for vocabulary terms
    /// and types) a bare word as an ODRL term.
    fn expand(&self, s: &str, vocab: bool) -> String {
        if let Some((prefix, local)) = s.split_once(':') {
            if !local.starts_with("//") {
                if let Some(ns) = self.prefixes.get(prefix) {
                    return format!("{ns}{local}");
                }
            }
            return s.to_string();
        }
        if vocab {
            format!("{ODRL}{s}")
        } else {
            s.to_string()
        }
    }
}

fn items(v: &Json) -> Vec<&Json> {
    match v {
        Json::Array(a) => a.iter().filter(|x| !x.is_null()).collect(),
        Json::Null => vec![],
        other => vec![other],
    }
}

fn strings(v: &Json) -> Vec<&str> {
    items(v).into_iter().filter_map(Json::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_policy_becomes_an_offer_with_its_rules() {
        let doc: Json = serde_json::from_str(
            r#"{"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set",
                "uid": "urn:sluis:policy:x", "dct:title": "T",
                "permission": [{"target": "urn:sluis:product:x", "action": "read",
                  "assignee": {"uid": "urn:sluis:group:gemeenten", "@type": "PartyCollection"},
                  "constraint": [{"leftOperand": "purpose", "operator": "isAnyOf",
                    "rightOperand": [{"@id": "urn:p:1"}, "two", 3]}]}],
                "unknownTerm": "dropped"}"#,
        )
        .unwrap();
        let node = offer_node(&doc, "did:ishare:EU.NL.NTRNL-00000001").unwrap();
        assert_eq!(node.id.as_deref(), Some("urn:sluis:policy:x"));
        assert_eq!(
            node.types,
            vec![format!("{ODRL}Offer"), format!("{ODRL}Policy")]
        );
        let props: Vec<&str> = node.props.iter().map(|(p, _)| p.as_str()).collect();
        assert!(props.contains(&"http://purl.org/dc/terms/title"));
        assert!(props.contains(&"http://www.w3.org/ns/odrl/2/assigner"));
        assert!(!props.iter().any(|p| p.contains("unknownTerm")));
        let Object::Node(permission) = &node
            .props
            .iter()
            .find(|(p, _)| p.ends_with("permission"))
            .unwrap()
            .1
        else {
            panic!("permission is a node")
        };
        assert!(
            permission
                .props
                .contains(&(format!("{ODRL}action"), Object::Iri(format!("{ODRL}read"))))
        );
        let Object::Node(constraint) = &permission
            .props
            .iter()
            .find(|(p, _)| p.ends_with("constraint"))
            .unwrap()
            .1
        else {
            panic!("constraint is a node")
        };
        assert!(constraint.props.contains(&(
            format!("{ODRL}operator"),
            Object::Iri(format!("{ODRL}isAnyOf"))
        )));
        let operands = constraint
            .props
            .iter()
            .filter(|(p, _)| p.ends_with("rightOperand"))
            .count();
        assert_eq!(operands, 3);
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(offer_node(&serde_json::json!([1]), "x").is_err());
        assert!(offer_node(&serde_json::json!({"uid": 5}), "x").is_err());
    }
}
