//! The products this connector offers: which exist, whether they are open or restricted, and where
//! their data lives. The catalog is swapped as a whole (config load today, portal sync later), so
//! the request path reads it without locks.

pub mod ckan;
pub mod dcat;
pub mod harvest;
pub mod odrl;
pub mod rdf;
mod settings;
pub mod sync;

pub use settings::{
    Agent, CatalogSettings, Contact, DatasetMetadata, MAX_PAGE_SIZE, PortalRule, PortalSettings,
};

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::config::{ProductSettings, SourceSettings};
use crate::source::{DataSource, SourceError, media_type_for_extension};

/// A product id: the last segment of `/products/{id}`, so it is restricted to URL-safe characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProductId(String);

impl ProductId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if s.is_empty() || s.len() > 128 {
            return Err("a product id has 1 to 128 characters".into());
        }
        if !s.chars().all(ok_char) || s.starts_with('-') {
            return Err(format!(
                "`{s}` may only contain lowercase letters, digits, `-` and `_`"
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProductId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Served to anyone, still audited.
    Open,
    /// Served only with a valid access token and a permitting policy decision.
    Restricted,
}

#[derive(Debug)]
pub struct Product {
    pub id: ProductId,
    pub title: String,
    pub description: Option<String>,
    pub access: Access,
    /// Policy file name in the policies folder (restricted products).
    pub policy: Option<String>,
    pub source: DataSource,
    pub metadata: DatasetMetadata,
    /// Logboek Dataverwerkingen processing activity (URI), for the request's span.
    pub processing_activity_id: Option<String>,
}

impl Product {
    pub fn from_settings(s: &ProductSettings, http: &reqwest::Client) -> Result<Self, SourceError> {
        // Settings were validated on load, so the id parses.
        let id = ProductId::parse(&s.id).map_err(SourceError::Config)?;
        let mut metadata = s.dcat.clone();
        if metadata.media_type.is_none() {
            metadata.media_type = match &s.source {
                SourceSettings::File { path, media_type } => Some(
                    media_type
                        .clone()
                        .unwrap_or_else(|| media_type_for_extension(path).to_string()),
                ),
                SourceSettings::Http { media_type, .. } => media_type.clone(),
                SourceSettings::Postgres { format, .. } => crate::source::RowFormat::parse(format)
                    .ok()
                    .map(|f| f.media_type().to_string()),
            };
        }
        Ok(Self {
            processing_activity_id: s.processing_activity_id.clone(),
            title: s.title.clone().unwrap_or_else(|| s.id.clone()),
            description: s.description.clone(),
            access: s.access,
            policy: s.policy.clone(),
            source: DataSource::from_settings(&s.source, http)?,
            metadata,
            id,
        })
    }
}

/// The current set of products, replaced atomically.
pub struct Catalog {
    products: ArcSwap<HashMap<String, Arc<Product>>>,
}

impl Catalog {
    pub fn new(products: Vec<Product>) -> Self {
        Self {
            products: ArcSwap::from_pointee(Self::index(products)),
        }
    }

    fn index(products: Vec<Product>) -> HashMap<String, Arc<Product>> {
        products
            .into_iter()
            .map(|p| (p.id.as_str().to_string(), Arc::new(p)))
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Product>> {
        self.products.load().get(id).cloned()
    }

    pub fn replace(&self, products: Vec<Product>) {
        self.products.store(Arc::new(Self::index(products)));
    }

    /// Every product, ordered by id: the stable order the catalog pages through.
    pub fn sorted(&self) -> Vec<Arc<Product>> {
        let mut all: Vec<Arc<Product>> = self.products.load().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    pub fn len(&self) -> usize {
        self.products.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
