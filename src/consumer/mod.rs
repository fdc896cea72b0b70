//! The consumer registry: parties that may obtain access tokens, with their certificate, groups
//! and status. Reads are cached per replica; every change evicts the cached copy here and, on
//! PostgreSQL, on every other replica through LISTEN/NOTIFY, so a suspension holds on the next
//! request everywhere. While a replica cannot listen, it does not cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::PartyId;
use crate::store::{Db, StoreError, consumers};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsumerStatus {
    Active,
    Suspended,
}

impl ConsumerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Consumer {
    pub party_id: PartyId,
    pub name: String,
    /// PEM; when present, the client assertion's leaf certificate must be exactly this one.
    pub certificate: Option<String>,
    /// Group IRIs, e.g. `urn:sluis:group:gemeenten`; policies address them as party collections.
    pub groups: Vec<String>,
    /// Named lists of values policies may refer to (`sluis:subject.NAME`), e.g. `wijkcodes`.
    pub attributes: BTreeMap<String, Vec<String>>,
    pub status: ConsumerStatus,
    pub created_us: i64,
    pub updated_us: i64,
}

/// Why a registration or change was refused; each names the field.
#[derive(Debug, thiserror::Error)]
pub enum InvalidConsumer {
    #[error("party_id: {0}")]
    PartyId(String),
    #[error("name: must be 1 to 200 characters")]
    Name,
    #[error("certificate: not a PEM X.509 certificate")]
    Certificate,
    #[error("groups: `{0}` is not an IRI")]
    Group(String),
    #[error("attributes: {0}")]
    Attributes(String),
}

/// Attribute names are identifiers (policies name them as `sluis:subject.NAME`); values are short
/// strings, a bounded number of each.
pub fn validate_attributes(
    attributes: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<String>>, InvalidConsumer> {
    if attributes.len() > 32 {
        return Err(InvalidConsumer::Attributes("at most 32 attributes".into()));
    }
    for (name, values) in attributes {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(InvalidConsumer::Attributes(format!(
                "`{name}` is not a name of letters, digits and _"
            )));
        }
        if values.len() > 1024
            || values
                .iter()
                .any(|v| v.len() > 256 || v.chars().any(char::is_control))
        {
            return Err(InvalidConsumer::Attributes(format!(
                "`{name}`: at most 1024 values of at most 256 characters"
            )));
        }
    }
    Ok(attributes.clone())
}

pub fn validate_name(name: &str) -> Result<String, InvalidConsumer> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(InvalidConsumer::Name);
    }
    Ok(name.to_string())
}

/// Accepts exactly one PEM certificate and returns it normalised.
pub fn validate_certificate(pem: &str) -> Result<String, InvalidConsumer> {
    let cert =
        openssl::x509::X509::from_pem(pem.as_bytes()).map_err(|_| InvalidConsumer::Certificate)?;
    let pem = cert.to_pem().map_err(|_| InvalidConsumer::Certificate)?;
    String::from_utf8(pem).map_err(|_| InvalidConsumer::Certificate)
}

/// An IRI here: a scheme, a colon, and no whitespace or characters IRIs forbid.
pub fn validate_groups(groups: &[String]) -> Result<Vec<String>, InvalidConsumer> {
    let iri = |g: &str| {
        let Some((scheme, rest)) = g.split_once(':') else {
            return false;
        };
        let scheme_ok = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        scheme_ok
            && !rest.is_empty()
            && g.len() <= 512
            && !g
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>\"{}|\\^`".contains(c))
    };
    let mut out: Vec<String> = Vec::with_capacity(groups.len());
    for g in groups {
        if !iri(g) {
            return Err(InvalidConsumer::Group(g.clone()));
        }
        if !out.contains(g) {
            out.push(g.clone());
        }
    }
    Ok(out)
}

/// Registry with a per-replica cache that is only used while it can be kept exact.
pub struct Registry {
    db: Db,
    cache: RwLock<HashMap<String, Arc<Consumer>>>,
    /// Bumped on every eviction: a read that raced with an eviction is not cached.
    generation: AtomicU64,
    /// On PostgreSQL: whether the change listener is connected (cache only while it is).
    cache_enabled: AtomicBool,
}

impl Registry {
    /// Starts the registry; on PostgreSQL also the task that listens for changes.
    pub fn start(db: Db) -> Arc<Self> {
        let registry = Arc::new(Self {
            cache_enabled: AtomicBool::new(matches!(db, Db::Sqlite(..))),
            db,
            cache: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        });
        if let Db::Postgres(pg) = &registry.db {
            tokio::spawn(listen(Arc::downgrade(&registry), pg.clone()));
        }
        registry
    }

    /// The consumer as stored now (within the notification delay on other replicas).
    pub async fn get(&self, party_id: &str) -> Result<Option<Arc<Consumer>>, StoreError> {
        if self.cache_enabled.load(Ordering::Acquire) {
            if let Some(c) = self.read_cache().get(party_id) {
                return Ok(Some(c.clone()));
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        // Boxed: a query future is large, and every restricted request's future holds this one.
        let found = Box::pin(consumers::get(&self.db, party_id))
            .await?
            .map(Arc::new);
        if let Some(c) = &found {
            if self.cache_enabled.load(Ordering::Acquire) {
                let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
                if self.generation.load(Ordering::Acquire) == generation {
                    cache.insert(party_id.to_string(), c.clone());
                }
            }
        }
        Ok(found)
    }

    pub async fn list(&self) -> Result<Vec<Consumer>, StoreError> {
        consumers::list(&self.db).await
    }

    /// `Ok(false)` when the party id is already registered.
    pub async fn register(&self, c: &Consumer) -> Result<bool, StoreError> {
        consumers::insert(&self.db, c).await
    }

    /// Stores a change and evicts the cached copy; other replicas hear of it through NOTIFY.
    pub async fn update(&self, c: &Consumer) -> Result<bool, StoreError> {
        let stored = consumers::update(&self.db, c).await;
        self.evict(Some(c.party_id.as_str()));
        stored
    }

    fn evict(&self, party_id: Option<&str>) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        match party_id {
            Some(p) => {
                cache.remove(p);
            }
            None => cache.clear(),
        }
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Consumer>>> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keeps a LISTEN connection open; caching is switched off whenever it is not, because changes
/// announced while disconnected are lost.
async fn listen(registry: std::sync::Weak<Registry>, pg: crate::store::Pg) {
    loop {
        let connected = async {
            let connect = sqlx::postgres::PgListener::connect_with(pg.pool());
            let mut l = crate::store::in_home(pg.home(), connect).await?;
            l.listen(consumers::CHANGES_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "consumer change listener cannot connect; cache off");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if registry.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        {
            let Some(r) = registry.upgrade() else { return };
            r.evict(None);
            r.cache_enabled.store(true, Ordering::Release);
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let Some(r) = registry.upgrade() else { return };
                    r.evict(Some(n.payload()));
                }
                Ok(None) | Err(_) => {
                    let Some(r) = registry.upgrade() else { return };
                    r.cache_enabled.store(false, Ordering::Release);
                    r.evict(None);
                    tracing::warn!("consumer change listener lost its connection; cache off");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_must_be_iris() {
        let ok = vec![
            "urn:sluis:group:gemeenten".to_string(),
            "https://example.org/g".into(),
        ];
        assert_eq!(validate_groups(&ok).unwrap(), ok);
        for bad in ["gemeenten", "urn:", "urn:a b", ":x", "1x:y", "urn:<x>"] {
            assert!(validate_groups(&[bad.to_string()]).is_err(), "{bad}");
        }
        let dup = vec!["urn:a:b".to_string(), "urn:a:b".into()];
        assert_eq!(validate_groups(&dup).unwrap().len(), 1);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            validate_name("  Gemeente Arnhem ").unwrap(),
            "Gemeente Arnhem"
        );
        assert!(validate_name("").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(201)).is_err());
    }
}
