//! Catalog configuration: the catalog's own DCAT-AP-NL description, per-product dataset
//! metadata, and the open-data portal to harvest.

use serde::{Deserialize, Serialize};

use super::Access;

/// The `[catalog]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    pub title: Option<String>,
    pub description: Option<String>,
    /// Public address of this connector (`https://data.example.nl`): the base of every IRI and
    /// access URL in the catalog. Without it, the scheme and host of the request are used.
    pub base_url: Option<String>,
    /// Who publishes the catalog; also every product's publisher unless the product says otherwise.
    pub publisher: Option<Agent>,
    /// Where questions go; also every product's contact point unless the product says otherwise.
    pub contact: Option<Contact>,
    pub homepage: Option<String>,
    /// Languages (IRIs or EU language codes such as `NLD`) for products that name none.
    pub languages: Vec<String>,
    /// Licence IRI for products that name none.
    pub license: Option<String>,
    /// Themes (IRIs or EU data-theme codes such as `GOVE`) for products that name none.
    pub themes: Vec<String>,
    /// Spatial coverage IRIs for products that name none.
    pub spatial: Vec<String>,
    /// Datasets per page of `GET /catalog` unless the client asks for another size.
    pub page_size: usize,
    /// The open-data portal (CKAN) whose datasets become products.
    pub portal: Option<PortalSettings>,
}

/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            title: None,
            description: None,
            base_url: None,
            publisher: None,
            contact: None,
            homepage: None,
            languages: Vec::new(),
            license: None,
            themes: Vec::new(),
            spatial: Vec::new(),
            page_size: 100,
            portal: None,
        }
    }
}

/// A `foaf:Agent`: a publisher or creator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub name: String,
    /// The agent's IRI, e.g. its OIN or TOOI identifier.
    pub uri: Option<String>,
    /// ADMS publisher type IRI, e.g. `http://purl.org/adms/publishertype/LocalAuthority`.
    pub kind: Option<String>,
}

/// A `vcard:Kind` contact point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    pub email: Option<String>,
    pub url: Option<String>,
}

/// A product's `dcat` table: what the catalog says about it. Every field is optional; the
/// catalog-wide defaults fill the gaps the DCAT-AP-NL profile does not allow.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetMetadata {
    pub keywords: Vec<String>,
    /// IRIs or EU data-theme codes (`GOVE`, `ENVI`, ...).
    pub themes: Vec<String>,
    pub publisher: Option<Agent>,
    pub contact: Option<Contact>,
    pub license: Option<String>,
    /// Spatial coverage IRIs (e.g. a geonames or TOOI municipality IRI).
    pub spatial: Vec<String>,
    /// Temporal coverage: ISO dates (`2023-01-01`) or date-times.
    pub temporal_start: Option<String>,
    pub temporal_end: Option<String>,
    /// ISO date or date-time of the last change.
    pub modified: Option<String>,
    pub issued: Option<String>,
    /// IRIs or EU language codes (`NLD`).
    pub languages: Vec<String>,
    pub landing_page: Option<String>,
    /// Documentation page (`foaf:page`).
    pub documentation: Option<String>,
    /// Standards or schemas the data conforms to.
    pub conforms_to: Vec<String>,
    /// The distribution's media type; taken from the source when not given.
    pub media_type: Option<String>,
}

/// `[catalog.portal]`: a CKAN portal polled through its Action API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    /// The portal's base URL; the Action API lives under `/api/3/action/`.
    pub url: String,
    #[serde(default = "default_poll_interval")]
    pub poll_interval_secs: u64,
    /// Datasets per `package_search` page.
    #[serde(default = "default_rows")]
    pub rows: usize,
    /// Longest wait for one portal answer.
    #[serde(default = "default_portal_timeout")]
    pub timeout_ms: u64,
    /// Put before every harvested dataset's name to make its product id (e.g. `portal-`).
    #[serde(default)]
    pub id_prefix: String,
    /// Rules that mark harvested datasets restricted; the first match wins, the rest stay open.
    #[serde(default)]
    pub rules: Vec<PortalRule>,
}

fn default_poll_interval() -> u64 {
    900
}

fn default_rows() -> usize {
    100
}

fn default_portal_timeout() -> u64 {
    10_000
}

/// `[[catalog.portal.rules]]`: every given matcher must match. `name` may end in `*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalRule {
    pub organization: Option<String>,
    pub tag: Option<String>,
    pub name: Option<String>,
    #[serde(default = "restricted")]
    pub access: Access,
    /// Policy file in the policies folder; required for restricted.
    pub policy: Option<String>,
}

fn restricted() -> Access {
    Access::Restricted
}

impl CatalogSettings {
    /// Checks what serde cannot; each error names the key, for `config.rs` to report.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, why: &str| Err((format!("catalog.{k}"), why.to_string()));
        if let Some(url) = &self.base_url {
            if !is_http_url(url) {
                return bad("base_url", "must be an absolute http(s) URL");
            }
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return bad("page_size", "must be between 1 and 1000");
        }
        let Some(portal) = &self.portal else {
            return Ok(());
        };
        if !is_http_url(&portal.url) {
            return bad("portal.url", "must be an absolute http(s) URL");
        }
        if portal.poll_interval_secs == 0 {
            return bad("portal.poll_interval_secs", "must be at least 1");
        }
        if portal.rows == 0 || portal.rows > 1000 {
            return bad("portal.rows", "must be between 1 and 1000");
        }
        if portal.timeout_ms == 0 {
            return bad("portal.timeout_ms", "must be at least 1");
        }
        let prefix_ok = portal
            .id_prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && !portal.id_prefix.starts_with('-');
        if !prefix_ok {
            return bad(
                "portal.id_prefix",
                "may only contain lowercase letters, digits, `-` and `_`",
            );
        }
        for (i, rule) in portal.rules.iter().enumerate() {
            if rule.organization.is_none() && rule.tag.is_none() && rule.name.is_none() {
                return bad(
                    &format!("portal.rules[{i}]"),
                    "needs at least one of organization, tag, name",
                );
            }
            if rule.access == Access::Restricted && rule.policy.is_none() {
                return bad(
                    &format!("portal.rules[{i}].policy"),
                    "a rule that restricts needs a policy",
                );
            }
        }
        Ok(())
    }
}

fn is_http_url(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}
