//! A client for the CKAN Action API (`/api/3/action/`): `package_search` walked page by page for
//! the list of public datasets, `package_show` for the full record of a new or changed one. Only
//! the fields the catalog uses are read; CKAN sends `null` for many of them.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The largest answer accepted from the portal.
const MAX_BODY: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CkanError {
    #[error("portal did not answer in time")]
    Timeout,
    #[error("portal unreachable")]
    Unreachable,
    #[error("portal answered HTTP {0}")]
    Status(u16),
    #[error("portal answer is not a CKAN response: {0}")]
    Invalid(String),
    #[error("portal refused the action: {0}")]
    Refused(String),
    #[error("portal's dataset list changed while it was read; next poll retries")]
    Shifted,
}

/// One dataset as far as the catalog cares.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub title: Option<String>,
    pub notes: Option<String>,
    pub metadata_modified: Option<String>,
    pub metadata_created: Option<String>,
    pub license_id: Option<String>,
    pub license_url: Option<String>,
    pub organization: Option<Organization>,
    pub tags: Option<Vec<Tag>>,
    pub resources: Option<Vec<Resource>>,
    pub maintainer: Option<String>,
    pub maintainer_email: Option<String>,
    pub author: Option<String>,
    pub author_email: Option<String>,
    pub url: Option<String>,
    pub extras: Option<Vec<Extra>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Organization {
    pub name: String,
    pub title: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Tag {
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Resource {
    pub url: Option<String>,
    pub format: Option<String>,
    pub mimetype: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Extra {
    pub key: String,
    pub value: Option<serde_json::Value>,
}

impl Package {
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().flatten().map(|t| t.name.as_str())
    }

    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extras
            .iter()
            .flatten()
            .find(|e| e.key == key)
            .and_then(|e| e.value.as_ref())
            .and_then(serde_json::Value::as_str)
    }

    /// The resource a product streams: the first with an absolute http(s) URL.
    pub fn data_resource(&self) -> Option<&Resource> {
        self.resources.iter().flatten().find(|r| {
            r.url.as_deref().is_some_and(|u| {
                reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            })
        })
    }
}

/// A dataset in the search listing: enough to tell whether it is new or changed.
#[derive(Debug, Clone, Deserialize)]
pub struct Listed {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub metadata_modified: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    success: bool,
    result: Option<T>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SearchResult {
    count: usize,
    results: Vec<Listed>,
}

pub struct CkanClient {
    base: reqwest::Url,
    rows: usize,
    http: reqwest::Client,
}

impl CkanClient {
    pub fn new(portal_url: &str, rows: usize, timeout: Duration) -> Result<Self, String> {
        let mut base = reqwest::Url::parse(portal_url).map_err(|e| e.to_string())?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!(
                "sluis/",
                env!("CARGO_PKG_VERSION"),
                " (catalog harvest)"
            ))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            base,
            rows: rows.max(1),
            http,
        })
    }

    /// The portal's page for a dataset, for `dcat:landingPage`.
    pub fn dataset_page(&self, name: &str) -> String {
        self.base
            .join(&format!("dataset/{name}"))
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Every public dataset, sorted by name so that pages do not overlap. Fails rather than
    /// returning part of the list: a partial list would look like withdrawals.
    pub async fn list_all(&self) -> Result<Vec<Listed>, CkanError> {
        let mut all = Vec::new();
        let mut expected: Option<usize> = None;
        loop {
            let start = all.len().to_string();
            let rows = self.rows.to_string();
            let page: SearchResult = self
                .action(
                    "package_search",
                    &[
                        ("q", "*:*"),
                        ("sort", "name asc"),
                        ("rows", rows.as_str()),
                        ("start", start.as_str()),
                    ],
                )
                .await?;
            match expected {
                None => expected = Some(page.count),
                Some(n) if n != page.count => return Err(CkanError::Shifted),
                Some(_) => {}
            }
            let got = page.results.len();
            all.extend(page.results);
            if got == 0 || all.len() >= page.count {
                break;
            }
        }
        if expected.is_some_and(|n| all.len() != n) {
            return Err(CkanError::Shifted);
        }
        Ok(all)
    }

    pub async fn package_show(&self, id: &str) -> Result<Package, CkanError> {
        self.action("package_show", &[("id", id)]).await
    }

    async fn action<T: DeserializeOwned>(
        &self,
        action: &str,
        query: &[(&str, &str)],
    ) -> Result<T, CkanError> {
        let mut url = self
            .base
            .join(&format!("api/3/action/{action}"))
            .map_err(|e| CkanError::Invalid(e.to_string()))?;
        url.query_pairs_mut().extend_pairs(query);
        let res = self.http.get(url).send().await.map_err(|e| {
            if e.is_timeout() {
                CkanError::Timeout
            } else {
                CkanError::Unreachable
            }
        })?;
        let status = res.status();
        // CKAN reports refused actions (404 not found, 409 validation) in a JSON envelope.
        if !status.is_success() && status.as_u16() != 404 && status.as_u16() != 409 {
            return Err(CkanError::Status(status.as_u16()));
        }
        if res.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(CkanError::Invalid("answer too large".into()));
        }
        let body = read_limited(res).await?;
        let envelope: Envelope<T> =
            serde_json::from_slice(&body).map_err(|e| CkanError::Invalid(e.to_string()))?;
        if !envelope.success {
            let why = envelope
                .error
                .as_ref()
                .and_then(|e| e.get("message").or_else(|| e.get("__type")))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no reason given");
            return Err(CkanError::Refused(why.chars().take(200).collect()));
        }
        envelope
            .result
            .ok_or_else(|| CkanError::Invalid("success without a result".into()))
    }
}

async fn read_limited(mut res: reqwest::Response) -> Result<Vec<u8>, CkanError> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| {
        if e.is_timeout() {
            CkanError::Timeout
        } else {
            CkanError::Unreachable
        }
    })? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(CkanError::Invalid("answer too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ckan_package_with_nulls_parses() {
        let p: Package = serde_json::from_str(
            r#"{"id": "a1", "name": "bomen", "title": "Bomen", "notes": null, "tags": null,
                "organization": {"name": "gemeente-nijmegen", "title": "Gemeente Nijmegen", "extra": 1},
                "resources": [{"url": "", "format": "HTML"},
                              {"url": "https://services.nijmegen.nl/geoservices/wfs?x=1", "format": "GeoJSON", "mimetype": null}],
                "extras": [{"key": "temporal_start", "value": "2020-01-01"}]}"#,
        )
        .unwrap();
        assert_eq!(p.tags().count(), 0);
        assert_eq!(p.extra("temporal_start"), Some("2020-01-01"));
        assert_eq!(
            p.data_resource().and_then(|r| r.format.as_deref()),
            Some("GeoJSON")
        );
    }
}
