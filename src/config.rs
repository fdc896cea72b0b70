//! Settings: built-in defaults, then the TOML file, then `SLUIS_<SECTION>__<KEY>` environment
//! overrides; secrets may come from files (`*_file` keys). Validation happens here, once, so that
//! the rest of the crate trusts what it is given. Knows nothing of HTTP or SQL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::catalog::{Access, CatalogSettings, DatasetMetadata, ProductId};

/// A configuration problem, worded as one line that names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn bad(key: impl std::fmt::Display, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("`{key}`: {why}"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub connector: ConnectorSettings,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub upstream: UpstreamSettings,
    #[serde(default)]
    pub catalog: CatalogSettings,
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetrySettings,
    #[serde(default)]
    pub products: Vec<ProductSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// Our own party id: the `aud` of client assertions and the `iss` of access tokens.
    pub party_id: String,
    pub name: String,
}

impl Default for ConnectorSettings {
    fn default() -> Self {
        Self {
            party_id: "did:ishare:EU.NL.NTRNL-00000001".into(),
            name: "Sluis".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub public_listen: String,
    pub admin_listen: String,
    /// HTTP worker threads per listener; 0 means one per CPU core.
    pub workers: usize,
    /// How long SIGTERM waits for in-flight requests before closing them.
    pub shutdown_timeout_secs: u64,
    /// HTTPS (rustls) on the public listener when set.
    pub tls: Option<TlsSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to (mTLS).
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is asked for: `none`, `optional` or `required`.
    #[serde(default)]
    pub client_auth: ClientAuth,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    None,
    Optional,
    Required,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            public_listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:8081".into(),
            workers: 0,
            shutdown_timeout_secs: 30,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    /// Read the URL from this file instead (a secret mounted by the orchestrator).
    pub url_file: Option<PathBuf>,
    pub max_connections: u32,
    /// How long a statement waits for a locked or unreachable database before the request fails
    /// closed (503).
    pub timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://sluis.db?mode=rwc".into(),
            url_file: None,
            max_connections: 8,
            timeout_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Folder of PEM CA certificates trusted for client-assertion `x5c` chains.
    pub trust_anchors: PathBuf,
    /// The connector's RSA private key (PEM) that signs access tokens.
    pub signing_key: PathBuf,
    /// Create a missing signing key on start (development); production leaves this off.
    pub create_missing_key: bool,
    /// Lifetime of issued access tokens.
    pub access_token_ttl_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            trust_anchors: "certs/trust".into(),
            signing_key: "certs/connector.key".into(),
            create_missing_key: false,
            access_token_ttl_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Create a random token in `token_file` when the file is missing (development).
    pub create_missing_token: bool,
    pub policies_dir: Option<PathBuf>,
}

/// Admin tokens shorter than this are refused on a non-loopback admin listener.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Records waiting for their batch; when full, requests are refused (503), never dropped.
    pub queue_capacity: usize,
    /// Most records committed in one transaction.
    pub max_batch: usize,
    /// A signed checkpoint at least every this many records...
    pub checkpoint_records: u64,
    /// ...and every this many milliseconds while records wait for one. Records after a
    /// chain's last checkpoint could be cut off unseen if the server crashed: this bounds that.
    pub checkpoint_interval_ms: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 8192,
            max_batch: 512,
            checkpoint_records: 10_000,
            checkpoint_interval_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    /// Time to establish a connection to an upstream source.
    pub connect_timeout_ms: u64,
    /// Longest silence allowed while waiting for upstream headers or the next chunk of body.
    pub read_timeout_ms: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5000,
            read_timeout_ms: 30000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSettings {
    pub id: String,
    pub access: Access,
    /// File name in the policies folder; required for restricted products.
    pub policy: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub source: SourceSettings,
    /// Logboek Dataverwerkingen: the processing activity (URI in the register) this product's
    /// requests belong to; carried on every span as `dpl.core.processing_activity_id`.
    pub processing_activity_id: Option<String>,
    /// DCAT-AP-NL dataset metadata for the catalog.
    #[serde(default)]
    pub dcat: DatasetMetadata,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceSettings {
    /// A file next to the connector; the bytes are read on every request.
    File {
        path: PathBuf,
        media_type: Option<String>,
    },
    /// An upstream HTTP(S) URL, e.g. a GeoServer WFS GetFeature request.
    Http {
        url: String,
        media_type: Option<String>,
    },
    /// A SQL query on PostgreSQL, run per request in a read-only transaction with a statement
    /// timeout; connect as a role that may only read. Row filters are applied in SQL.
    Postgres {
        /// Connection URL; use `url_file` instead when it holds a password.
        url: Option<String>,
        /// A file holding the connection URL (a mounted secret).
        url_file: Option<PathBuf>,
        /// The SELECT whose rows are the product; filters wrap it as a subquery.
        query: String,
        /// `geojson`, `json` or `csv`.
        format: String,
        /// A PostGIS geometry column: the features' geometry (WKT in CSV).
        geometry_column: Option<String>,
        /// Longitude and latitude columns (WGS 84) that make Point geometries without PostGIS.
        lon_column: Option<String>,
        lat_column: Option<String>,
        /// Longest a query may run, streaming included (default 30 s).
        statement_timeout_ms: Option<u64>,
        /// Connections to this database at most (default 4).
        max_connections: Option<u32>,
    },
}

impl Settings {
    /// Loads `file` (which must exist unless `allow_missing`), then the environment.
    pub fn load(file: &Path, allow_missing: bool) -> Result<Self, ConfigError> {
        if !file.exists() && !allow_missing {
            return Err(ConfigError(format!(
                "file {} not found (pass --config FILE)",
                file.display()
            )));
        }
        let figment = Figment::from(Serialized::defaults(Settings::empty()))
            .merge(Toml::file(file))
            .merge(
                // Only SLUIS_<SECTION>__<KEY>: other SLUIS_* variables (SLUIS_LOG) are not settings.
                Env::prefixed("SLUIS_")
                    .filter(|k| k.as_str().contains("__"))
                    .split("__")
                    .lowercase(true),
            );
        let mut settings: Settings = figment.extract().map_err(|e| {
            // figment names the key and the source; keep only the first error, on one line.
            let first = e.into_iter().next();
            ConfigError(first.map_or_else(|| "unreadable".to_string(), |e| one_line(&e)))
        })?;
        settings.resolve_secrets()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Built-in defaults with no products: what an empty file gives.
    pub fn empty() -> Self {
        Self {
            connector: Default::default(),
            server: Default::default(),
            database: Default::default(),
            auth: Default::default(),
            admin: Default::default(),
            audit: Default::default(),
            upstream: Default::default(),
            catalog: Default::default(),
            telemetry: Default::default(),
            products: Vec::new(),
        }
    }

    fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.database.url_file {
            self.database.url = read_secret(path).map_err(|e| bad("database.url_file", e))?;
        }
        if let Some(path) = &self.admin.token_file {
            if self.admin.create_missing_token && !path.exists() {
                create_token_file(path).map_err(|e| bad("admin.token_file", e))?;
                tracing::warn!(file = %path.display(), "created a development admin token");
            }
            self.admin.token = Some(read_secret(path).map_err(|e| bad("admin.token_file", e))?);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        parse_addr("server.public_listen", &self.server.public_listen)?;
        self.catalog
            .validate()
            .map_err(|(key, why)| bad(key, why))?;
        let admin = parse_addr("server.admin_listen", &self.server.admin_listen)?;
        let token_len = self.admin.token.as_ref().map_or(0, |t| t.chars().count());
        if !admin.ip().is_loopback() && token_len < MIN_ADMIN_TOKEN_LEN {
            return Err(bad(
                "admin.token",
                format!(
                    "an admin listener on a non-loopback address needs a token of at least {MIN_ADMIN_TOKEN_LEN} characters"
                ),
            ));
        }
        if let Some(tls) = &self.server.tls {
            for (key, path) in [("server.tls.cert", &tls.cert), ("server.tls.key", &tls.key)] {
                if !path.is_file() {
                    return Err(bad(
                        key,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
            if tls.client_auth != ClientAuth::None && tls.client_ca.is_none() {
                return Err(bad(
                    "server.tls.client_ca",
                    "client certificate authentication needs a CA file",
                ));
            }
        }
        if self.auth.access_token_ttl_secs == 0 || self.auth.access_token_ttl_secs > 86_400 {
            return Err(bad(
                "auth.access_token_ttl_secs",
                "must be between 1 and 86400",
            ));
        }
        let scheme = self.database.url.split(':').next().unwrap_or_default();
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            return Err(bad(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if self.audit.queue_capacity == 0 || self.audit.max_batch == 0 {
            return Err(bad(
                "audit.queue_capacity/audit.max_batch",
                "must be at least 1",
            ));
        }
        if self.audit.checkpoint_records == 0 || self.audit.checkpoint_interval_ms == 0 {
            return Err(bad(
                "audit.checkpoint_records/audit.checkpoint_interval_ms",
                "must be at least 1",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.products.iter().enumerate() {
            let key = format!("products[{i}]");
            ProductId::parse(&p.id).map_err(|e| bad(format!("{key}.id"), e))?;
            if !seen.insert(p.id.as_str()) {
                return Err(bad(
                    format!("{key}.id"),
                    format!("product `{}` is declared twice", p.id),
                ));
            }
            if p.access == Access::Restricted && p.policy.is_none() {
                return Err(bad(
                    format!("{key}.policy"),
                    format!("restricted product `{}` needs a policy", p.id),
                ));
            }
            match &p.source {
                SourceSettings::File { path, media_type } => {
                    if !path.is_file() {
                        return Err(bad(
                            format!("{key}.source.path"),
                            format!("{} is not a readable file", path.display()),
                        ));
                    }
                    check_media_type(&key, media_type.as_deref())?;
                }
                SourceSettings::Http { url, media_type } => {
                    let ok = reqwest::Url::parse(url)
                        .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                    if !ok {
                        return Err(bad(
                            format!("{key}.source.url"),
                            "must be an absolute http(s) URL",
                        ));
                    }
                    check_media_type(&key, media_type.as_deref())?;
                }
                SourceSettings::Postgres {
                    url,
                    url_file,
                    format,
                    geometry_column,
                    lon_column,
                    lat_column,
                    ..
                } => {
                    if url.is_some() == url_file.is_some() {
                        return Err(bad(
                            format!("{key}.source.url"),
                            "give exactly one of url and url_file",
                        ));
                    }
                    if !["geojson", "json", "csv"].contains(&format.as_str()) {
                        return Err(bad(
                            format!("{key}.source.format"),
                            "must be geojson, json or csv",
                        ));
                    }
                    let lon_lat = (lon_column.is_some(), lat_column.is_some());
                    if lon_lat.0 != lon_lat.1 || (lon_lat.0 && geometry_column.is_some()) {
                        return Err(bad(
                            format!("{key}.source.geometry_column"),
                            "give geometry_column, or lon_column and lat_column, or neither",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn public_addr(&self) -> SocketAddr {
        // Validated in `load`; tests build settings in code and always pass valid addresses.
        parse_addr("server.public_listen", &self.server.public_listen)
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        parse_addr("server.admin_listen", &self.server.admin_listen)
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn database_timeout(&self) -> Duration {
        Duration::from_millis(self.database.timeout_ms)
    }
}

fn check_media_type(key: &str, media_type: Option<&str>) -> Result<(), ConfigError> {
    if let Some(m) = media_type {
        if crate::source::parse_media_type(m).is_none() {
            return Err(bad(
                format!("{key}.source.media_type"),
                format!("`{m}` is not a media type"),
            ));
        }
    }
    Ok(())
}

fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        bad(
            key,
            format!("`{value}` is not an address such as 127.0.0.1:8080"),
        )
    })
}

fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret)
}

/// A random 256-bit token, base64url, in a new file readable only by its owner.
fn create_token_file(path: &Path) -> Result<(), String> {
    use base64::Engine;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| e.to_string())?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(token.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn one_line(e: &figment::Error) -> String {
    e.to_string().replace('\n', " ")
}
