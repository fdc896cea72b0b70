//! One page of the catalog as DCAT-AP-NL 3.0: the `dcat:Catalog`, each product as a
//! `dcat:Dataset` with one `dcat:Distribution` whose access URL is this connector, the access
//! rights, and for restricted products the ODRL offer. Catalog-wide settings fill what a product
//! leaves open, so every dataset carries what the profile requires (publisher, creator, contact
//! point, theme, licence). Pure: no I/O, the caller supplies the policies.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::rdf::{Graph, Node, Object};
use super::settings::{Agent, CatalogSettings, Contact, DatasetMetadata};
use super::{Access, Product};

pub const PUBLIC: &str = "http://publications.europa.eu/resource/authority/access-right/PUBLIC";
pub const RESTRICTED: &str =
    "http://publications.europa.eu/resource/authority/access-right/RESTRICTED";
const LANGUAGE: &str = "http://publications.europa.eu/resource/authority/language/";
const DATA_THEME: &str = "http://publications.europa.eu/resource/authority/data-theme/";
/// "Government and public sector": the theme of a product nobody classified.
const DEFAULT_THEME: &str = "GOVE";
/// "Licence unknown" from the Dutch OWMS list, for products nobody licensed.
pub const LICENSE_UNKNOWN: &str = "http://standaarden.overheid.nl/owms/terms/licentieonbekend";
const IANA_MEDIA_TYPES: &str = "https://www.iana.org/assignments/media-types/";

/// Which slice of the catalog this document is.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// 1-based.
    pub number: usize,
    pub size: usize,
    pub total_items: usize,
}

impl Page {
    pub fn last(&self) -> usize {
        self.total_items.div_ceil(self.size).max(1)
    }
}

/// Who runs this connector, for the catalog's defaults and the offers' assigner.
pub struct Connector<'a> {
    pub name: &'a str,
    pub party_id: &'a str,
}

pub struct CatalogPage<'a> {
    pub settings: &'a CatalogSettings,
    pub connector: Connector<'a>,
    /// Public base URL without a trailing slash.
    pub base: &'a str,
    pub page: Page,
    pub products: &'a [Arc<Product>],
    /// Offer nodes by policy file name.
    pub offers: &'a HashMap<String, Node>,
}

pub fn catalog_url(base: &str) -> String {
    format!("{base}/catalog")
}

pub fn page_url(base: &str, number: usize, size: usize) -> String {
    format!("{base}/catalog?page={number}&per_page={size}")
}

pub fn dataset_iri(base: &str, id: &str) -> String {
    format!("{base}/catalog/datasets/{id}")
}

/// IRIs that stand for things of a class; each is typed once at the end of the document, since
/// DCAT-AP's shapes check the class of these values and their vocabularies are not loaded.
#[derive(Default)]
struct Vocabulary(BTreeSet<(String, &'static str)>);

impl Vocabulary {
    fn link(&mut self, node: &mut Node, predicate: &str, target: &str, class: &'static str) {
        node.link(predicate, target);
        self.0.insert((target.to_string(), class));
    }
}

pub fn catalog_graph(doc: &CatalogPage<'_>) -> Graph {
    let s = doc.settings;
    let mut vocab = Vocabulary::default();
    let lang_tag = language_tag(s.languages.first().map(String::as_str));
    let lang = lang_tag.as_deref();
    let publisher = s.publisher.clone().unwrap_or_else(|| Agent {
        name: doc.connector.name.to_string(),
        uri: None,
        kind: None,
    });
    let contact = s.contact.clone().unwrap_or_else(|| Contact {
        name: doc.connector.name.to_string(),
        email: None,
        url: Some(doc.base.to_string()),
    });

    let catalog_iri = catalog_url(doc.base);
    let mut catalog = Node::named(&catalog_iri).a("dcat:Catalog");
    let title = s
        .title
        .clone()
        .unwrap_or_else(|| format!("Catalogus van {}", doc.connector.name));
    catalog.text("dct:title", &title, lang);
    let description = s.description.clone().unwrap_or_else(|| {
        format!(
            "De dataproducten die {} via deze Sluis-connector deelt.",
            doc.connector.name
        )
    });
    catalog.text("dct:description", &description, lang);
    catalog.add("dct:publisher", agent_node(&publisher, &mut vocab));
    catalog.add("dct:creator", agent_node(&publisher, &mut vocab));
    catalog.add("dcat:contactPoint", contact_node(&contact));
    if let Some(home) = &s.homepage {
        vocab.link(&mut catalog, "foaf:homepage", home, "foaf:Document");
    }
    for l in languages(&s.languages) {
        vocab.link(&mut catalog, "dct:language", &l, "dct:LinguisticSystem");
    }
    catalog.typed(
        "hydra:totalItems",
        &doc.page.total_items.to_string(),
        "xsd:integer",
    );

    let mut datasets = Vec::with_capacity(doc.products.len());
    let mut distributions = Vec::with_capacity(doc.products.len());
    for product in doc.products {
        let (dataset, distribution) = dataset_nodes(doc, product, &publisher, &contact, &mut vocab);
        if let Some(id) = &dataset.id {
            catalog.link("dcat:dataset", id);
        }
        datasets.push(dataset);
        distributions.push(distribution);
    }

    let page = doc.page;
    let view_iri = page_url(doc.base, page.number, page.size);
    let mut view = Node::named(&view_iri).a("hydra:PartialCollectionView");
    view.link("hydra:first", &page_url(doc.base, 1, page.size));
    view.link("hydra:last", &page_url(doc.base, page.last(), page.size));
    if page.number > 1 {
        view.link(
            "hydra:previous",
            &page_url(doc.base, page.number - 1, page.size),
        );
    }
    if page.number < page.last() {
        view.link(
            "hydra:next",
            &page_url(doc.base, page.number + 1, page.size),
        );
    }
    catalog.link("hydra:view", &view_iri);

    let mut nodes = vec![catalog, view];
    nodes.extend(datasets);
    nodes.extend(distributions);
    nodes.extend(vocab.0.into_iter().map(|(iri, class)| {
        let mut node = Node::named(&iri).a(class);
        // DCAT-AP wants every concept labelled.
        if class == "skos:Concept" {
            let (label, lang) = concept_label(&iri);
            node.text("skos:prefLabel", &label, lang);
        }
        node
    }));
    Graph { nodes }
}

fn dataset_nodes(
    doc: &CatalogPage<'_>,
    product: &Product,
    default_publisher: &Agent,
    default_contact: &Contact,
    vocab: &mut Vocabulary,
) -> (Node, Node) {
    let s = doc.settings;
    let m: &DatasetMetadata = &product.metadata;
    let id = product.id.as_str();
    let languages = languages(if m.languages.is_empty() {
        &s.languages
    } else {
        &m.languages
    });
    let lang_tag = language_tag(
        m.languages
            .first()
            .or(s.languages.first())
            .map(String::as_str),
    );
    let lang = lang_tag.as_deref();

    let iri = dataset_iri(doc.base, id);
    let mut d = Node::named(&iri).a("dcat:Dataset");
    d.text("dct:identifier", id, None);
    d.text("dct:title", &product.title, lang);
    let description = product
        .description
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(&product.title);
    d.text("dct:description", description, lang);
    let publisher = m.publisher.as_ref().unwrap_or(default_publisher);
    d.add("dct:publisher", agent_node(publisher, vocab));
    d.add("dct:creator", agent_node(publisher, vocab));
    d.add(
        "dcat:contactPoint",
        contact_node(m.contact.as_ref().unwrap_or(default_contact)),
    );
    let themes = if !m.themes.is_empty() {
        &m.themes
    } else {
        &s.themes
    };
    let themes: Vec<String> = if themes.is_empty() {
        vec![format!("{DATA_THEME}{DEFAULT_THEME}")]
    } else {
        themes.iter().map(|t| theme_iri(t)).collect()
    };
    for t in &themes {
        vocab.link(&mut d, "dcat:theme", t, "skos:Concept");
    }
    for k in m.keywords.iter().filter(|k| !k.trim().is_empty()) {
        d.text("dcat:keyword", k, lang);
    }
    let spatial = if m.spatial.is_empty() {
        &s.spatial
    } else {
        &m.spatial
    };
    for place in spatial {
        vocab.link(&mut d, "dct:spatial", place, "dct:Location");
    }
    let start = m.temporal_start.as_deref().and_then(temporal_literal);
    let end = m.temporal_end.as_deref().and_then(temporal_literal);
    if start.is_some() || end.is_some() {
        let mut period = Node::blank().a("dct:PeriodOfTime");
        if let Some((v, dt)) = start {
            period.typed("dcat:startDate", &v, dt);
        }
        if let Some((v, dt)) = end {
            period.typed("dcat:endDate", &v, dt);
        }
        d.add("dct:temporal", Object::Node(period));
    }
    if let Some((v, dt)) = m.modified.as_deref().and_then(temporal_literal) {
        d.typed("dct:modified", &v, dt);
    }
    if let Some((v, dt)) = m.issued.as_deref().and_then(temporal_literal) {
        d.typed("dct:issued", &v, dt);
    }
    for l in &languages {
        vocab.link(&mut d, "dct:language", l, "dct:LinguisticSystem");
    }
    if let Some(page) = &m.landing_page {
        vocab.link(&mut d, "dcat:landingPage", page, "foaf:Document");
    }
    if let Some(page) = &m.documentation {
        vocab.link(&mut d, "foaf:page", page, "foaf:Document");
    }
    for standard in &m.conforms_to {
        vocab.link(&mut d, "dct:conformsTo", standard, "dct:Standard");
    }
    let (rights, offer) = match product.access {
        Access::Open => (PUBLIC, None),
        Access::Restricted => (
            RESTRICTED,
            product.policy.as_ref().and_then(|p| doc.offers.get(p)),
        ),
    };
    vocab.link(&mut d, "dct:accessRights", rights, "dct:RightsStatement");
    if let Some(offer) = offer {
        d.add("odrl:hasPolicy", Object::Node(offer.clone()));
    }

    let dist_iri = format!("{iri}/distribution");
    d.link("dcat:distribution", &dist_iri);
    let mut dist = Node::named(&dist_iri).a("dcat:Distribution");
    let access_url = format!("{}/products/{id}", doc.base);
    dist.text("dct:title", &product.title, lang);
    vocab.link(&mut dist, "dcat:accessURL", &access_url, "rdfs:Resource");
    vocab.link(&mut dist, "dcat:downloadURL", &access_url, "rdfs:Resource");
    let license = m
        .license
        .as_deref()
        .or(s.license.as_deref())
        .unwrap_or(LICENSE_UNKNOWN);
    vocab.link(&mut dist, "dct:license", license, "dct:LicenseDocument");
    vocab.link(&mut dist, "dct:accessRights", rights, "dct:RightsStatement");
    if let Some(mt) = m.media_type.as_deref().and_then(media_type_iri) {
        vocab.link(&mut dist, "dcat:mediaType", &mt, "dct:MediaType");
    }
    for l in &languages {
        vocab.link(&mut dist, "dct:language", l, "dct:LinguisticSystem");
    }
    for standard in &m.conforms_to {
        vocab.link(&mut dist, "dct:conformsTo", standard, "dct:Standard");
    }
    if let Some(id) = offer.and_then(|o| o.id.as_deref()) {
        dist.link("odrl:hasPolicy", id);
    }
    (d, dist)
}

fn agent_node(agent: &Agent, vocab: &mut Vocabulary) -> Object {
    let mut node = match &agent.uri {
        Some(uri) => Node::named(uri),
        None => Node::blank(),
    }
    .a("foaf:Agent");
    node.text("foaf:name", &agent.name, None);
    if let Some(kind) = &agent.kind {
        vocab.link(&mut node, "dct:type", kind, "skos:Concept");
    }
    Object::Node(node)
}

fn contact_node(contact: &Contact) -> Object {
    let mut node = Node::blank().a("vcard:Kind");
    node.text("vcard:fn", &contact.name, None);
    if let Some(email) = &contact.email {
        let mailto = if email.starts_with("mailto:") {
            email.clone()
        } else {
            format!("mailto:{email}")
        };
        node.link("vcard:hasEmail", &mailto);
    }
    if let Some(url) = &contact.url {
        node.link("vcard:hasURL", url);
    }
    Object::Node(node)
}

/// EU language codes (`NLD`) as authority IRIs; IRIs as they are. Dutch when nothing is said.
fn languages(configured: &[String]) -> Vec<String> {
    if configured.is_empty() {
        return vec![format!("{LANGUAGE}NLD")];
    }
    configured
        .iter()
        .map(|l| {
            if l.contains(':') {
                l.clone()
            } else {
                format!("{LANGUAGE}{}", l.to_ascii_uppercase())
            }
        })
        .collect()
}

/// The language tag for texts, from the first metadata language (Dutch by default).
fn language_tag(first: Option<&str>) -> Option<String> {
    let code = first.map_or("NLD", |l| l.rsplit('/').next().unwrap_or(l));
    let tag = match code.to_ascii_uppercase().as_str() {
        "NLD" => "nl",
        "ENG" => "en",
        "DEU" => "de",
        "FRA" => "fr",
        "FRY" => "fy",
        _ => return None,
    };
    Some(tag.to_string())
}

/// The label of a concept: the Dutch name of an EU data theme, else the IRI's last segment.
fn concept_label(iri: &str) -> (String, Option<&'static str>) {
    let last = iri
        .trim_end_matches('/')
        .rsplit(['/', '#'])
        .next()
        .unwrap_or(iri);
    if iri.starts_with(DATA_THEME) {
        let nl = match last {
            "AGRI" => Some("Landbouw, visserij, bosbouw en voeding"),
            "ECON" => Some("Economie en financiën"),
            "EDUC" => Some("Onderwijs, cultuur en sport"),
            "ENER" => Some("Energie"),
            "ENVI" => Some("Milieu"),
            "GOVE" => Some("Overheid en publieke sector"),
            "HEAL" => Some("Gezondheid"),
            "INTR" => Some("Internationale vraagstukken"),
            "JUST" => Some("Justitie, rechtsstelsel en openbare veiligheid"),
            "REGI" => Some("Regio's en steden"),
            "SOCI" => Some("Bevolking en samenleving"),
            "TECH" => Some("Wetenschap en technologie"),
            "TRAN" => Some("Vervoer"),
            _ => None,
        };
        if let Some(label) = nl {
            return (label.to_string(), Some("nl"));
        }
    }
    let label = last.replace(['_', '-'], " ");
    (
        if label.is_empty() {
            iri.to_string()
        } else {
            label
        },
        None,
    )
}

fn theme_iri(t: &str) -> String {
    if t.contains(':') {
        t.to_string()
    } else {
        format!("{DATA_THEME}{}", t.to_ascii_uppercase())
    }
}

fn media_type_iri(media_type: &str) -> Option<String> {
    let essence = media_type.split(';').next()?.trim().to_ascii_lowercase();
    let (ty, sub) = essence.split_once('/')?;
    if ty.is_empty() || sub.is_empty() {
        return None;
    }
    Some(format!("{IANA_MEDIA_TYPES}{ty}/{sub}"))
}

/// A date or date-time as the temporal literal DCAT-AP accepts (`xsd:gYear`, `xsd:date`,
/// `xsd:dateTime`), or `None` for text that is none of these.
pub fn temporal_literal(s: &str) -> Option<(String, &'static str)> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let s = s.trim();
    if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some((s.to_string(), "xsd:gYear"));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some((d.format("%Y-%m-%d").to_string(), "xsd:date"));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some((dt.to_rfc3339(), "xsd:dateTime"));
    }
    // CKAN writes UTC times without an offset, with microseconds.
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some((
            dt.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "xsd:dateTime",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_literals_get_a_datatype_or_are_left_out() {
        assert_eq!(
            temporal_literal("2024-03-01T10:15:23.123456"),
            Some(("2024-03-01T10:15:23Z".into(), "xsd:dateTime"))
        );
        assert_eq!(
            temporal_literal("2023-01-01"),
            Some(("2023-01-01".into(), "xsd:date"))
        );
        assert_eq!(temporal_literal("1944"), Some(("1944".into(), "xsd:gYear")));
        assert_eq!(temporal_literal("vorig jaar"), None);
        assert_eq!(temporal_literal("2023-13-01"), None);
    }

    #[test]
    fn codes_become_authority_iris() {
        assert_eq!(theme_iri("envi"), format!("{DATA_THEME}ENVI"));
        assert_eq!(languages(&["nld".into()]), vec![format!("{LANGUAGE}NLD")]);
        assert_eq!(language_tag(Some("ENG")).as_deref(), Some("en"));
        assert_eq!(
            media_type_iri("text/csv; charset=utf-8").as_deref(),
            Some("https://www.iana.org/assignments/media-types/text/csv")
        );
        assert_eq!(
            Page {
                number: 1,
                size: 100,
                total_items: 250
            }
            .last(),
            3
        );
    }
}
