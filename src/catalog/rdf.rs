//! A small RDF model, just enough for the catalog: nodes with types and properties, nested where
//! the catalog embeds them, rendered as JSON-LD (with its context inlined, so the document reads
//! offline) or as Turtle. Both renderings come from the same nodes; the only difference is that
//! JSON-LD embeds a shared named node (a policy) in full wherever it is used, Turtle writes it once.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value as Json, json};

/// The prefixes both renderings use; the JSON-LD context is exactly this table.
pub const PREFIXES: &[(&str, &str)] = &[
    ("adms", "http://www.w3.org/ns/adms#"),
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dcatap", "http://data.europa.eu/r5r/"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("hydra", "http://www.w3.org/ns/hydra/core#"),
    ("locn", "http://www.w3.org/ns/locn#"),
    ("odrl", "http://www.w3.org/ns/odrl/2/"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
];

/// Expands `prefix:local` with [`PREFIXES`]; anything else is returned unchanged.
pub fn iri(compact: &str) -> String {
    if let Some((prefix, local)) = compact.split_once(':') {
        if let Some((_, ns)) = PREFIXES.iter().find(|(p, _)| *p == prefix) {
            return format!("{ns}{local}");
        }
    }
    compact.to_string()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub value: String,
    pub lang: Option<String>,
    /// Full datatype IRI; `None` is `xsd:string`.
    pub datatype: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Iri(String),
    Literal(Literal),
    Node(Node),
}

/// A subject with its types and properties. `id: None` is a blank node, rendered inline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    pub id: Option<String>,
    pub types: Vec<String>,
    pub props: Vec<(String, Object)>,
}

impl Node {
    pub fn named(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            ..Default::default()
        }
    }

    pub fn blank() -> Self {
        Self::default()
    }

    /// Adds a type; `t` may be a compact IRI.
    pub fn a(mut self, t: &str) -> Self {
        let t = iri(t);
        if !self.types.contains(&t) {
            self.types.push(t);
        }
        self
    }

    pub fn add(&mut self, predicate: &str, object: Object) {
        self.props.push((iri(predicate), object));
    }

    pub fn with(mut self, predicate: &str, object: Object) -> Self {
        self.add(predicate, object);
        self
    }

    pub fn link(&mut self, predicate: &str, target: &str) {
        self.add(predicate, Object::Iri(iri(target)));
    }

    pub fn text(&mut self, predicate: &str, value: &str, lang: Option<&str>) {
        self.add(
            predicate,
            Object::Literal(Literal {
                value: value.to_string(),
                lang: lang.map(str::to_string),
                datatype: None,
            }),
        );
    }

    pub fn typed(&mut self, predicate: &str, value: &str, datatype: &str) {
        self.add(
            predicate,
            Object::Literal(Literal {
                value: value.to_string(),
                lang: None,
                datatype: Some(iri(datatype)),
            }),
        );
    }
}

/// The nodes of one document, in order.
#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
}

fn compact(full: &str) -> String {
    let full = &escape_iri(full);
    for (prefix, ns) in PREFIXES {
        if let Some(local) = full.strip_prefix(ns) {
            if is_safe_local(local) {
                return format!("{prefix}:{local}");
            }
        }
    }
    full.to_string()
}

/// Local names that read the same as a Turtle prefixed name and a JSON-LD compact IRI.
fn is_safe_local(local: &str) -> bool {
    let mut chars = local.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Graph {
    /// JSON-LD: the prefix table as an inline `@context`, the nodes in `@graph`, compact IRIs for
    /// properties, types and vocabulary links.
    pub fn to_json_ld(&self) -> Json {
        let context: Map<String, Json> = PREFIXES
            .iter()
            .map(|(p, ns)| ((*p).to_string(), Json::String((*ns).to_string())))
            .collect();
        let graph: Vec<Json> = self.nodes.iter().map(node_json).collect();
        json!({"@context": context, "@graph": graph})
    }

    pub fn to_turtle(&self) -> String {
        let mut out = String::new();
        for (prefix, ns) in PREFIXES {
            let _ = writeln!(out, "@prefix {prefix}: <{ns}> .");
        }
        // Named nodes nested in another are written as a reference there and as a block of
        // their own; a node named twice (a shared policy) is written once.
        let mut pending: Vec<&Node> = self.nodes.iter().collect();
        let mut written = BTreeSet::new();
        while let Some(node) = pending.first().copied() {
            pending.remove(0);
            if let Some(id) = &node.id {
                if !written.insert(id.clone()) {
                    continue;
                }
            }
            out.push('\n');
            let mut nested = Vec::new();
            let subject = match &node.id {
                Some(id) => iri_ref(id),
                None => "[]".to_string(),
            };
            out.push_str(&subject);
            write_body(&mut out, node, 1, &mut nested);
            out.push_str(" .\n");
            pending.extend(nested);
        }
        out
    }
}

fn node_json(node: &Node) -> Json {
    let mut obj = Map::new();
    if let Some(id) = &node.id {
        obj.insert("@id".into(), Json::String(compact(id)));
    }
    match node.types.as_slice() {
        [] => {}
        [one] => {
            obj.insert("@type".into(), Json::String(compact(one)));
        }
        many => {
            obj.insert(
                "@type".into(),
                Json::Array(many.iter().map(|t| Json::String(compact(t))).collect()),
            );
        }
    }
    for (predicate, object) in &node.props {
        let key = compact(predicate);
        let value = match object {
            Object::Iri(i) => json!({"@id": compact(i)}),
            Object::Literal(l) => literal_json(l),
            Object::Node(n) => node_json(n),
        };
        match obj.get_mut(&key) {
            None => {
                obj.insert(key, value);
            }
            Some(Json::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Json::Array(vec![first, value]);
            }
        }
    }
    Json::Object(obj)
}

fn literal_json(l: &Literal) -> Json {
    match (&l.lang, &l.datatype) {
        (Some(lang), _) => json!({"@value": l.value, "@language": lang}),
        (None, Some(dt)) => json!({"@value": l.value, "@type": compact(dt)}),
        (None, None) => Json::String(l.value.clone()),
    }
}

fn write_body<'a>(out: &mut String, node: &'a Node, depth: usize, nested: &mut Vec<&'a Node>) {
    let indent = "  ".repeat(depth);
    let mut first = true;
    let mut sep = |out: &mut String| {
        if first {
            out.push(' ');
            first = false;
        } else {
            let _ = write!(out, " ;\n{indent}");
        }
    };
    if !node.types.is_empty() {
        sep(out);
        out.push_str("a ");
        let types: Vec<String> = node.types.iter().map(|t| term(t)).collect();
        out.push_str(&types.join(", "));
    }
    for (predicate, object) in &node.props {
        sep(out);
        out.push_str(&term(predicate));
        out.push(' ');
        match object {
            Object::Iri(i) => out.push_str(&term(i)),
            Object::Literal(l) => out.push_str(&literal_turtle(l)),
            Object::Node(n) => match &n.id {
                Some(id) => {
                    out.push_str(&iri_ref(id));
                    nested.push(n);
                }
                None => {
                    out.push('[');
                    write_body(out, n, depth + 1, nested);
                    out.push_str(" ]");
                }
            },
        }
    }
    if first {
        // A node with nothing to say: `[] .` is not valid Turtle, `[ ]` within a list is.
        out.push(' ');
        out.push_str("rdf:type rdfs:Resource");
    }
}

/// A prefixed name where one reads well, otherwise `<IRI>`.
fn term(full: &str) -> String {
    let c = compact(full);
    if c == escape_iri(full) {
        format!("<{c}>")
    } else {
        c
    }
}

fn iri_ref(full: &str) -> String {
    format!("<{}>", escape_iri(full))
}

/// Percent-encodes the characters an IRI may not contain (spaces, quotes, angle brackets, ...),
/// so that a sloppy URL from a portal still yields a parseable document in both syntaxes.
fn escape_iri(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    for c in full.chars() {
        if c <= ' ' || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\') {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn literal_turtle(l: &Literal) -> String {
    let mut out = String::with_capacity(l.value.len() + 2);
    out.push('"');
    for c in l.value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    if let Some(lang) = &l.lang {
        out.push('@');
        out.push_str(lang);
    } else if let Some(dt) = &l.datatype {
        out.push_str("^^");
        out.push_str(&term(dt));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Graph {
        let mut d = Node::named("https://example.org/d/1").a("dcat:Dataset");
        d.text("dct:title", "Bomen \"Nijmegen\"\nregel 2", Some("nl"));
        d.typed("dct:modified", "2024-01-02", "xsd:date");
        d.link("dct:accessRights", "https://example.org/x y");
        let mut contact = Node::blank().a("vcard:Kind");
        contact.text("vcard:fn", "Team Data", None);
        d.add("dcat:contactPoint", Object::Node(contact));
        d.add(
            "odrl:hasPolicy",
            Object::Node(Node::named("urn:sluis:policy:p").a("odrl:Offer")),
        );
        Graph { nodes: vec![d] }
    }

    #[test]
    fn json_ld_uses_compact_iris_and_an_inline_context() {
        let doc = sample().to_json_ld();
        assert_eq!(doc["@context"]["dcat"], "http://www.w3.org/ns/dcat#");
        let d = &doc["@graph"][0];
        assert_eq!(d["@type"], "dcat:Dataset");
        assert_eq!(d["dct:title"]["@language"], "nl");
        assert_eq!(d["dct:modified"]["@type"], "xsd:date");
        assert_eq!(d["dcat:contactPoint"]["vcard:fn"], "Team Data");
        assert_eq!(d["odrl:hasPolicy"]["@id"], "urn:sluis:policy:p");
    }

    #[test]
    fn turtle_escapes_literals_and_iris_and_writes_named_nested_nodes_once() {
        let ttl = sample().to_turtle();
        assert!(ttl.contains(r#""Bomen \"Nijmegen\"\nregel 2"@nl"#), "{ttl}");
        assert!(ttl.contains("<https://example.org/x%20y>"), "{ttl}");
        assert!(ttl.contains("\"2024-01-02\"^^xsd:date"), "{ttl}");
        assert!(ttl.contains("dcat:contactPoint [ a vcard:Kind"), "{ttl}");
        assert_eq!(
            ttl.matches("<urn:sluis:policy:p> a odrl:Offer").count(),
            1,
            "{ttl}"
        );
    }
}
