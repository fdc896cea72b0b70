//! Portal sync: polls the configured CKAN portal, turns new datasets into products, updates
//! changed ones and withdraws the ones that left, each change audited before it is stored. The
//! catalog is then rebuilt from the configured products plus the stored harvest, so a portal that
//! fails leaves the last good catalog in place, and a restart serves it without the portal.
//! Harvested products stream from the portal's resource URL: the data stays at the source.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::ckan::{CkanClient, CkanError, Package};
use super::harvest::{self, HarvestedRow};
use super::settings::{Agent, Contact, DatasetMetadata, PortalRule, PortalSettings};
use super::{Access, Catalog, Product, ProductId};
use crate::audit::{AuditEntry, AuditError, Auditor, Decision, now_us};
use crate::config::{ProductSettings, Settings, SourceSettings};
use crate::store::Db;

#[derive(Debug, thiserror::Error)]
pub enum HarvestError {
    #[error("{0}")]
    Portal(#[from] CkanError),
    #[error("harvest store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
    #[error("{0}")]
    Config(String),
}

/// What one sync did, product by product.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub withdrawn: Vec<String>,
    /// Portal datasets that did not become products, with the reason.
    pub skipped: Vec<(String, String)>,
    pub unchanged: usize,
}

impl SyncReport {
    pub fn changes(&self) -> usize {
        self.created.len() + self.updated.len() + self.withdrawn.len()
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (word, ids) in [
            ("created", &self.created),
            ("updated", &self.updated),
            ("withdrawn", &self.withdrawn),
        ] {
            for id in ids {
                writeln!(f, "{word:<9} {id}")?;
            }
        }
        for (name, why) in &self.skipped {
            writeln!(f, "skipped   {name}: {why}")?;
        }
        write!(
            f,
            "{} created, {} updated, {} withdrawn, {} unchanged, {} skipped",
            self.created.len(),
            self.updated.len(),
            self.withdrawn.len(),
            self.unchanged,
            self.skipped.len()
        )
    }
}

/// The portal's health as the last polls saw it, for readiness and metrics.
#[derive(Debug, Default)]
pub struct HarvestStatus {
    portal: Option<String>,
    inner: Mutex<StatusInner>,
}

#[derive(Debug, Default, Clone)]
struct StatusInner {
    last_attempt_us: Option<i64>,
    last_success_us: Option<i64>,
    last_error: Option<String>,
    consecutive_failures: u32,
    harvested: usize,
}

/// A copy of [`HarvestStatus`] at one moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HarvestSnapshot {
    /// `disabled` (no portal), `pending` (not polled yet), `up`, or `failing`.
    pub status: &'static str,
    pub portal: Option<String>,
    pub last_attempt: Option<String>,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub harvested_products: usize,
}

impl HarvestStatus {
    fn new(portal: Option<String>) -> Self {
        Self {
            portal,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusInner> {
        // The lock only guards plain fields; a panic while holding it cannot leave them torn.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn succeeded(&self, harvested: usize) {
        let now = now_us();
        let mut s = self.lock();
        s.last_attempt_us = Some(now);
        s.last_success_us = Some(now);
        s.last_error = None;
        s.consecutive_failures = 0;
        s.harvested = harvested;
    }

    fn failed(&self, error: &HarvestError) {
        let mut s = self.lock();
        s.last_attempt_us = Some(now_us());
        s.last_error = Some(error.to_string());
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
    }

    fn set_harvested(&self, n: usize) {
        self.lock().harvested = n;
    }

    pub fn snapshot(&self) -> HarvestSnapshot {
        let s = self.lock().clone();
        let time = |us: Option<i64>| {
            us.and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        let status = match (&self.portal, s.last_attempt_us, s.consecutive_failures) {
            (None, _, _) => "disabled",
            (Some(_), None, _) => "pending",
            (Some(_), Some(_), 0) => "up",
            _ => "failing",
        };
        HarvestSnapshot {
            status,
            portal: self.portal.clone(),
            last_attempt: time(s.last_attempt_us),
            last_success: time(s.last_success_us),
            last_error: s.last_error,
            consecutive_failures: s.consecutive_failures,
            harvested_products: s.harvested,
        }
    }

    /// Prometheus text-format lines (with HELP and TYPE) for `/metrics`.
    pub fn prometheus(&self) -> String {
        let s = self.lock().clone();
        let last_success = s.last_success_us.map_or(0.0, |us| us as f64 / 1e6);
        format!(
            "# HELP sluis_catalog_harvest_up Whether the last portal poll succeeded (1) or failed (0).\n\
             # TYPE sluis_catalog_harvest_up gauge\n\
             sluis_catalog_harvest_up {}\n\
             # HELP sluis_catalog_harvest_consecutive_failures Portal polls failed in a row.\n\
             # TYPE sluis_catalog_harvest_consecutive_failures gauge\n\
             sluis_catalog_harvest_consecutive_failures {}\n\
             # HELP sluis_catalog_harvest_last_success_timestamp_seconds Time of the last good poll.\n\
             # TYPE sluis_catalog_harvest_last_success_timestamp_seconds gauge\n\
             sluis_catalog_harvest_last_success_timestamp_seconds {last_success}\n\
             # HELP sluis_catalog_harvested_products Products in the catalog that came from the portal.\n\
             # TYPE sluis_catalog_harvested_products gauge\n\
             sluis_catalog_harvested_products {}\n",
            u8::from(s.consecutive_failures == 0 && s.last_success_us.is_some()),
            s.consecutive_failures,
            s.harvested,
        )
    }
}

/// Rebuilds the catalog and, with a portal configured, keeps it in step with the portal.
pub struct Harvester {
    settings: Arc<Settings>,
    db: Db,
    auditor: Auditor,
    catalog: Arc<Catalog>,
    /// The client product sources use (upstream timeouts).
    http: reqwest::Client,
    portal: Option<(PortalSettings, CkanClient)>,
    status: Arc<HarvestStatus>,
}

enum Change {
    Create(HarvestedRow),
    Update(HarvestedRow),
    /// Product id and the portal name it had.
    Withdraw(String, String),
}

impl Harvester {
    pub fn new(
        settings: Arc<Settings>,
        db: Db,
        auditor: Auditor,
        catalog: Arc<Catalog>,
        http: reqwest::Client,
    ) -> Result<Self, HarvestError> {
        settings
            .catalog
            .validate()
            .map_err(|(key, why)| HarvestError::Config(format!("`{key}`: {why}")))?;
        let portal = match &settings.catalog.portal {
            Some(p) => {
                let client =
                    CkanClient::new(&p.url, p.rows, Duration::from_millis(p.timeout_ms))
                        .map_err(|e| HarvestError::Config(format!("`catalog.portal.url`: {e}")))?;
                Some((p.clone(), client))
            }
            None => None,
        };
        let status = Arc::new(HarvestStatus::new(
            portal.as_ref().map(|(p, _)| p.url.clone()),
        ));
        Ok(Self {
            settings,
            db,
            auditor,
            catalog,
            http,
            portal,
            status,
        })
    }

    pub fn status(&self) -> Arc<HarvestStatus> {
        self.status.clone()
    }

    /// Replaces the catalog with the configured products plus the stored, not withdrawn,
    /// harvest. Returns the number of harvested products in it.
    pub async fn reload(&self) -> Result<usize, HarvestError> {
        let rows = harvest::active(&self.db).await?;
        let mut products: Vec<Product> =
            Vec::with_capacity(self.settings.products.len() + rows.len());
        for p in &self.settings.products {
            match Product::from_settings(p, &self.http) {
                Ok(product) => products.push(product),
                Err(e) => {
                    tracing::error!(product = %p.id, error = %e, "configured product left out")
                }
            }
        }
        let configured: HashSet<String> = self
            .settings
            .products
            .iter()
            .map(|p| p.id.clone())
            .collect();
        let mut harvested = 0;
        for row in &rows {
            if configured.contains(&row.product_id) {
                continue;
            }
            match self.harvested_product(row) {
                Ok(product) => {
                    products.push(product);
                    harvested += 1;
                }
                Err(why) => {
                    tracing::warn!(product = %row.product_id, why, "harvested product left out")
                }
            }
        }
        self.catalog.replace(products);
        self.status.set_harvested(harvested);
        Ok(harvested)
    }

    /// One poll of the portal. On failure nothing is changed and the catalog stays as it was
    /// (reloaded from the store, which another process may have updated).
    pub async fn sync_once(&self) -> Result<SyncReport, HarvestError> {
        match self.sync_inner().await {
            Ok(report) => {
                let harvested = self.reload().await?;
                self.status.succeeded(harvested);
                Ok(report)
            }
            Err(e) => {
                self.status.failed(&e);
                if let Err(reload) = self.reload().await {
                    tracing::warn!(error = %reload, "catalog not reloaded");
                }
                Err(e)
            }
        }
    }

    /// Polls every `poll_interval_secs` until the task is aborted. Without a portal it does
    /// nothing.
    pub fn spawn(self: Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let interval = Duration::from_secs(self.portal.as_ref()?.0.poll_interval_secs);
        Some(tokio::spawn(async move {
            loop {
                match self.sync_once().await {
                    Ok(r) if r.changes() > 0 => tracing::info!(
                        created = r.created.len(),
                        updated = r.updated.len(),
                        withdrawn = r.withdrawn.len(),
                        "catalog synced with the portal"
                    ),
                    Ok(_) => tracing::debug!("portal unchanged"),
                    Err(e) => {
                        tracing::warn!(error = %e, "portal sync failed; the last good catalog stays")
                    }
                }
                tokio::time::sleep(interval).await;
            }
        }))
    }

    async fn sync_inner(&self) -> Result<SyncReport, HarvestError> {
        let mut report = SyncReport::default();
        let Some((portal, ckan)) = &self.portal else {
            return Ok(report);
        };
        let listed = ckan.list_all().await?;
        let existing: HashMap<String, HarvestedRow> = harvest::active(&self.db)
            .await?
            .into_iter()
            .map(|r| (r.product_id.clone(), r))
            .collect();
        let configured: HashSet<&str> = self
            .settings
            .products
            .iter()
            .map(|p| p.id.as_str())
            .collect();

        let mut seen = HashSet::new();
        let mut changes = Vec::new();
        for item in listed {
            let Some(pid) = product_id_for(&portal.id_prefix, &item.name).map(|p| p.to_string())
            else {
                report
                    .skipped
                    .push((item.name, "its name gives no valid product id".into()));
                continue;
            };
            if configured.contains(pid.as_str()) {
                report
                    .skipped
                    .push((item.name, format!("product `{pid}` is configured")));
                continue;
            }
            if seen.contains(&pid) {
                report
                    .skipped
                    .push((item.name, format!("another dataset is product `{pid}`")));
                continue;
            }
            let modified = item.metadata_modified.clone().unwrap_or_default();
            let known = existing.get(&pid);
            if known.is_some_and(|r| r.modified == modified && r.ckan_id == item.id) {
                seen.insert(pid);
                report.unchanged += 1;
                continue;
            }
            let package = ckan.package_show(&item.id).await?;
            if package.data_resource().is_none() {
                // Not (or no longer) something a product can stream: withdrawn if it was one.
                report
                    .skipped
                    .push((item.name, "no resource with an http(s) URL".into()));
                continue;
            }
            seen.insert(pid.clone());
            let row = HarvestedRow {
                product_id: pid,
                ckan_id: item.id,
                modified,
                package,
            };
            changes.push(if known.is_some() {
                Change::Update(row)
            } else {
                Change::Create(row)
            });
        }
        let mut gone: Vec<&String> = existing.keys().filter(|id| !seen.contains(*id)).collect();
        gone.sort();
        changes.extend(gone.into_iter().map(|id| {
            let name = existing
                .get(id)
                .map(|r| r.package.name.clone())
                .unwrap_or_default();
            Change::Withdraw(id.clone(), name)
        }));

        for change in changes {
            self.apply(change, ckan, &mut report).await?;
        }
        Ok(report)
    }

    /// Audits the change, then stores it: a change that cannot be audited is not made.
    async fn apply(
        &self,
        change: Change,
        ckan: &CkanClient,
        report: &mut SyncReport,
    ) -> Result<(), HarvestError> {
        let now = now_us();
        let (reason, product, name, policy) = match &change {
            Change::Create(r) | Change::Update(r) => (
                if matches!(change, Change::Create(_)) {
                    "created"
                } else {
                    "updated"
                },
                r.product_id.clone(),
                r.package.name.clone(),
                self.access_for(&r.package).1,
            ),
            Change::Withdraw(id, name) => ("withdrawn", id.clone(), name.clone(), None),
        };
        let path = ckan.dataset_page(&name);
        self.auditor
            .record(AuditEntry {
                transaction_id: Uuid::now_v7(),
                time_us: now,
                party_id: None,
                product: Some(product.clone()),
                action: "harvest".into(),
                purpose: None,
                decision: Decision::Permit,
                reasons: vec![reason.into()],
                policy_id: policy,
                policy_version: None,
                status: if reason == "withdrawn" { 410 } else { 200 },
                method: "GET".into(),
                path,
                trace_id: None,
                span_id: None,
            })
            .await?;
        let done = match &change {
            Change::Create(r) => harvest::create(&self.db, r, now).await?,
            Change::Update(r) => harvest::update(&self.db, r, now).await?,
            Change::Withdraw(id, _) => harvest::withdraw(&self.db, id, now).await?,
        };
        if !done {
            tracing::info!(product = %product, reason, "another writer made this change first");
        }
        match change {
            Change::Create(_) => report.created.push(product),
            Change::Update(_) => report.updated.push(product),
            Change::Withdraw(..) => report.withdrawn.push(product),
        }
        Ok(())
    }

    /// Open, unless the first matching rule says otherwise.
    fn access_for(&self, package: &Package) -> (Access, Option<String>) {
        let rules: &[PortalRule] = self.portal.as_ref().map_or(&[], |(p, _)| &p.rules);
        match rules.iter().find(|r| rule_matches(r, package)) {
            Some(rule) => (rule.access, rule.policy.clone()),
            None => (Access::Open, None),
        }
    }

    fn harvested_product(&self, row: &HarvestedRow) -> Result<Product, String> {
        let pkg = &row.package;
        let resource = pkg
            .data_resource()
            .ok_or("no resource with an http(s) URL")?;
        let url = resource.url.clone().unwrap_or_default();
        let media_type = resource
            .mimetype
            .as_deref()
            .and_then(crate::source::parse_media_type)
            .or_else(|| format_media_type(resource.format.as_deref()?).map(str::to_string));
        let (access, policy) = self.access_for(pkg);
        let landing_page = self
            .portal
            .as_ref()
            .map(|(_, ckan)| ckan.dataset_page(&pkg.name))
            .filter(|u| !u.is_empty());
        let settings = ProductSettings {
            id: row.product_id.clone(),
            access,
            policy,
            title: Some(
                pkg.title
                    .clone()
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| pkg.name.clone()),
            ),
            description: pkg.notes.clone().filter(|n| !n.trim().is_empty()),
            source: SourceSettings::Http {
                url,
                media_type: media_type.clone(),
            },
            processing_activity_id: None,
            dcat: DatasetMetadata {
                keywords: pkg.tags().map(str::to_string).collect(),
                themes: iris(pkg.extra("theme")),
                publisher: pkg.organization.as_ref().map(|o| Agent {
                    name: o.title.clone().unwrap_or_else(|| o.name.clone()),
                    uri: None,
                    kind: None,
                }),
                contact: contact(pkg),
                license: license_iri(pkg),
                spatial: iris(pkg.extra("spatial_value").or(pkg.extra("spatial_uri"))),
                temporal_start: pkg.extra("temporal_start").map(str::to_string),
                temporal_end: pkg.extra("temporal_end").map(str::to_string),
                modified: pkg.metadata_modified.clone(),
                issued: pkg.metadata_created.clone(),
                languages: Vec::new(),
                landing_page,
                documentation: pkg.url.clone().filter(|u| is_http(u)),
                conforms_to: Vec::new(),
                media_type,
            },
        };
        Product::from_settings(&settings, &self.http).map_err(|e| e.to_string())
    }
}

/// The product id of a portal dataset: the prefix and the CKAN name, lowercased, with anything
/// a product id may not hold replaced by `-`. Stable as long as the name is.
pub fn product_id_for(prefix: &str, name: &str) -> Option<ProductId> {
    let cleaned: String = name
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id: String = format!("{prefix}{}", cleaned.trim_start_matches('-'))
        .chars()
        .take(128)
        .collect();
    ProductId::parse(&id).ok()
}

fn rule_matches(rule: &PortalRule, pkg: &Package) -> bool {
    let org_ok = rule
        .organization
        .as_deref()
        .is_none_or(|want| pkg.organization.as_ref().is_some_and(|o| o.name == want));
    let tag_ok = rule
        .tag
        .as_deref()
        .is_none_or(|want| pkg.tags().any(|t| t == want));
    let name_ok = rule
        .name
        .as_deref()
        .is_none_or(|want| match want.strip_suffix('*') {
            Some(prefix) => pkg.name.starts_with(prefix),
            None => pkg.name == want,
        });
    org_ok && tag_ok && name_ok
}

fn is_http(u: &str) -> bool {
    reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// IRIs from a CKAN extra that holds one IRI or a JSON list of them (DCAT-AP-DONL style).
fn iris(extra: Option<&str>) -> Vec<String> {
    let Some(v) = extra else { return Vec::new() };
    let list: Vec<String> = serde_json::from_str(v).unwrap_or_else(|_| vec![v.to_string()]);
    list.into_iter().filter(|u| is_http(u)).collect()
}

fn contact(pkg: &Package) -> Option<Contact> {
    let (name, email) = match (&pkg.maintainer, &pkg.maintainer_email) {
        (None, None) => (&pkg.author, &pkg.author_email),
        _ => (&pkg.maintainer, &pkg.maintainer_email),
    };
    let email = email
        .clone()
        .filter(|e| e.contains('@') && !e.contains(char::is_whitespace));
    let name = name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| email.clone())?;
    Some(Contact {
        name,
        email,
        url: None,
    })
}

/// The licence as an IRI: the portal's URL for it, or the well-known CKAN licence ids.
fn license_iri(pkg: &Package) -> Option<String> {
    if let Some(id) = pkg.license_id.as_deref().filter(|id| is_http(id)) {
        return Some(id.to_string());
    }
    if let Some(url) = pkg.license_url.as_deref().filter(|u| is_http(u)) {
        return Some(url.to_string());
    }
    let iri = match pkg.license_id.as_deref()? {
        "cc-zero" | "cc0" => "http://creativecommons.org/publicdomain/zero/1.0/",
        "cc-by" | "cc-by-4.0" => "http://creativecommons.org/licenses/by/4.0/",
        "cc-by-sa" | "cc-by-sa-4.0" => "http://creativecommons.org/licenses/by-sa/4.0/",
        "odc-odbl" => "http://opendatacommons.org/licenses/odbl/1-0/",
        "odc-pddl" => "http://opendatacommons.org/licenses/pddl/1-0/",
        _ => return None,
    };
    Some(iri.to_string())
}

fn format_media_type(format: &str) -> Option<&'static str> {
    Some(match format.trim().to_ascii_lowercase().as_str() {
        "geojson" => "application/geo+json",
        "json" => "application/json",
        "csv" => "text/csv",
        "xml" | "gml" | "wfs" => "application/xml",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "zip" | "shp" => "application/zip",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// `sluis catalog sync`: one poll against the configured portal, from a process of its own (it
/// writes its own audit chain). Returns what changed.
pub async fn sync_command(settings: Settings) -> Result<SyncReport, String> {
    if settings.catalog.portal.is_none() {
        return Err("no portal configured: add a [catalog.portal] section".into());
    }
    let db = Db::connect(&settings.database.url, 2, settings.database_timeout())
        .await
        .map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    // Its audit chain is signed with the connector key, like the server's.
    if settings.auth.create_missing_key {
        crate::auth::ensure_connector_key(&settings.auth.signing_key)
            .map_err(|e| format!("auth.signing_key: {e}"))?;
    }
    let signer = crate::audit::CheckpointSigner::from_pem_file(&settings.auth.signing_key)
        .map_err(|e| format!("auth.signing_key: {e}"))?;
    let timeout = std::time::Duration::from_millis(settings.database.timeout_ms);
    let (auditor, handle) = Auditor::start(db.clone(), &settings.audit, signer, timeout)
        .await
        .map_err(|e| format!("audit log: {e}"))?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(settings.upstream.connect_timeout_ms))
        .build()
        .map_err(|e| e.to_string())?;
    let harvester = Harvester::new(
        Arc::new(settings),
        db.clone(),
        auditor,
        Arc::new(Catalog::new(Vec::new())),
        http,
    )
    .map_err(|e| e.to_string())?;
    let result = harvester.sync_once().await.map_err(|e| e.to_string());
    drop(harvester);
    handle.shutdown().await;
    db.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ckan::{Organization, Tag};

    #[test]
    fn product_ids_come_from_ckan_names() {
        let id = |p: &str, n: &str| product_id_for(p, n).map(|i| i.to_string());
        assert_eq!(id("", "bomen-nijmegen"), Some("bomen-nijmegen".into()));
        assert_eq!(
            id("portal-", "Bomen Nijmegen"),
            Some("portal-bomen-nijmegen".into())
        );
        assert_eq!(id("", "-x"), Some("x".into()));
        assert_eq!(id("", "  "), None);
        assert_eq!(id("", &"a".repeat(300)).map(|s| s.len()), Some(128));
    }

    #[test]
    fn rules_match_on_every_given_field() {
        let pkg = Package {
            name: "wo2-schade".into(),
            organization: Some(Organization {
                name: "gemeente-nijmegen".into(),
                title: None,
            }),
            tags: Some(vec![Tag {
                name: "vertrouwelijk".into(),
            }]),
            ..Default::default()
        };
        let rule = |org: Option<&str>, tag: Option<&str>, name: Option<&str>| PortalRule {
            organization: org.map(Into::into),
            tag: tag.map(Into::into),
            name: name.map(Into::into),
            access: Access::Restricted,
            policy: Some("p.json".into()),
        };
        assert!(rule_matches(
            &rule(Some("gemeente-nijmegen"), None, None),
            &pkg
        ));
        assert!(rule_matches(
            &rule(None, Some("vertrouwelijk"), Some("wo2-*")),
            &pkg
        ));
        assert!(!rule_matches(
            &rule(Some("gemeente-nijmegen"), Some("open"), None),
            &pkg
        ));
        assert!(!rule_matches(&rule(None, None, Some("wo2")), &pkg));
    }

    #[test]
    fn licences_become_iris() {
        let with = |id: Option<&str>, url: Option<&str>| Package {
            license_id: id.map(Into::into),
            license_url: url.map(Into::into),
            ..Default::default()
        };
        assert_eq!(
            license_iri(&with(Some("cc-zero"), None)).as_deref(),
            Some("http://creativecommons.org/publicdomain/zero/1.0/")
        );
        assert_eq!(
            license_iri(&with(Some("x"), Some("https://example.org/l"))).as_deref(),
            Some("https://example.org/l")
        );
        assert_eq!(license_iri(&with(Some("notspecified"), None)), None);
    }

    #[test]
    fn status_reports_failures_until_a_success() {
        let s = HarvestStatus::new(Some("https://portal".into()));
        assert_eq!(s.snapshot().status, "pending");
        s.failed(&HarvestError::Portal(CkanError::Status(500)));
        s.failed(&HarvestError::Portal(CkanError::Timeout));
        let snap = s.snapshot();
        assert_eq!(snap.status, "failing");
        assert_eq!(snap.consecutive_failures, 2);
        assert_eq!(
            snap.last_error.as_deref(),
            Some("portal did not answer in time")
        );
        assert!(
            s.prometheus()
                .contains("sluis_catalog_harvest_consecutive_failures 2\n")
        );
        s.succeeded(3);
        let snap = s.snapshot();
        assert_eq!(
            (
                snap.status,
                snap.consecutive_failures,
                snap.harvested_products
            ),
            ("up", 0, 3)
        );
        assert!(snap.last_success.is_some() && snap.last_error.is_none());
        assert_eq!(HarvestStatus::new(None).snapshot().status, "disabled");
    }
}
