//! Catalog configuration: the catalog's own DCAT-AP-NL description, per-product dataset
//! metadata, and the open-data portal to harvest.

use serde::{Deserialize, Serialize};

/// The `[catalog]` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    pub title: Option<String>,
    pub description: Option<String>,
}

/// A product's `dcat` table: what the catalog says about it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetMetadata {
    #[serde(default)]
    pub keywords: Vec<String>,
}
