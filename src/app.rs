//! Wires the state and builds the two HTTP servers. Binding port 0 is allowed: tests start the
//! real application this way and ask for the ports it got.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};

use crate::audit::{Auditor, AuditorHandle};
use crate::auth::{AccessTokenIssuer, PartyId, TrustStore, VerifiedTokens, ensure_connector_key};
use crate::catalog::Access;
use crate::catalog::{Catalog, Product};
use crate::config::Settings;
use crate::consumer::Registry;
use crate::http;
use crate::policy::PolicyStore;
use crate::store::Db;
use crate::telemetry::Telemetry;

/// Shared by every request on both listeners.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub catalog: Arc<Catalog>,
    /// The portal harvest's health, for readiness and metrics.
    pub harvest: Arc<crate::catalog::sync::HarvestStatus>,
    pub auditor: Auditor,
    pub registry: Arc<Registry>,
    pub tokens: AccessTokenIssuer,
    /// `None` when the trust-anchor folder is missing or empty: no assertion can be trusted.
    pub trust: Option<TrustStore>,
    pub admin_token: Option<String>,
    /// The usage policies of restricted products, hot-reloaded from the policies folder.
    pub policies: Option<Arc<PolicyStore>>,
    /// Request spans (OpenTelemetry) and Prometheus metrics.
    pub telemetry: Arc<Telemetry>,
    /// Access tokens whose signature was verified before.
    pub verified_tokens: VerifiedTokens,
    /// Secret behind per-product, per-consumer pseudonym keys (derived from the signing key).
    pub pseudonym_secret: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("product `{id}`: {source}")]
    Product {
        id: String,
        source: crate::source::SourceError,
    },
    #[error("upstream HTTP client: {0}")]
    HttpClient(String),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("connector.party_id: {0}")]
    PartyId(String),
    #[error("auth.signing_key {path}: {why}")]
    SigningKey { path: String, why: String },
    #[error("{0}")]
    Tls(#[from] http::tls::TlsError),
    #[error("{0}")]
    Policies(String),
    #[error("{0}")]
    Telemetry(String),
}

pub struct Application {
    public_port: u16,
    admin_port: u16,
    public: Server,
    admin: Server,
    auditor: AuditorHandle,
    state: web::Data<AppState>,
    harvest_task: Option<tokio::task::JoinHandle<()>>,
}

/// Stops both listeners gracefully: in-flight requests finish (and are audited) first.
#[derive(Clone)]
pub struct StopHandle {
    public: ServerHandle,
    admin: ServerHandle,
}

impl StopHandle {
    pub async fn stop(&self) {
        tokio::join!(self.public.stop(true), self.admin.stop(true));
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let telemetry =
            Telemetry::from_settings(&settings.telemetry).map_err(StartError::Telemetry)?;
        Self::build_with_telemetry(settings, telemetry).await
    }

    /// As [`Application::build`], with a given telemetry pipeline (tests pass an in-memory one).
    pub async fn build_with_telemetry(
        settings: Settings,
        telemetry: Telemetry,
    ) -> Result<Self, StartError> {
        install_crypto_provider();
        let our_party = PartyId::parse(&settings.connector.party_id)
            .map_err(|e| StartError::PartyId(e.to_string()))?;
        let tokens = load_signing_key(&settings, our_party)?;
        let trust = load_trust_anchors(&settings.auth.trust_anchors);
        let tls = settings
            .server
            .tls
            .as_ref()
            .map(http::tls::server_config)
            .transpose()?;
        let timeout = settings.database_timeout();
        let db = Db::connect(
            &settings.database.url,
            settings.database.max_connections,
            timeout,
        )
        .await?;
        db.migrate().await?;

        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.upstream.connect_timeout_ms))
            .read_timeout(Duration::from_millis(settings.upstream.read_timeout_ms))
            .user_agent(concat!("sluis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StartError::HttpClient(e.to_string()))?;
        let products = settings
            .products
            .iter()
            .map(|p| {
                Product::from_settings(p, &http).map_err(|source| StartError::Product {
                    id: p.id.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policies = load_policies(&settings, &products)?;
        let catalog = Arc::new(Catalog::new(products));

        // Audit checkpoints are signed with the same connector key as access tokens.
        let checkpoint_signer = crate::audit::CheckpointSigner::from_pem_file(
            &settings.auth.signing_key,
        )
        .map_err(|e| StartError::SigningKey {
            path: settings.auth.signing_key.display().to_string(),
            why: e.to_string(),
        })?;
        let (auditor, auditor_handle) = Auditor::start(
            db.clone(),
            &settings.audit,
            checkpoint_signer,
            Duration::from_millis(settings.database.timeout_ms),
        )
        .await?;

        let public_listener = bind(&settings.server.public_listen)?;
        let admin_listener = bind(&settings.server.admin_listen)?;
        let public_port = local_port(&public_listener);
        let admin_port = local_port(&admin_listener);
        if tls.is_none()
            && public_listener
                .local_addr()
                .is_ok_and(|a| !a.ip().is_loopback())
        {
            tracing::warn!(
                listen = %settings.server.public_listen,
                "PLAIN HTTP ON A NON-LOOPBACK ADDRESS: tokens and data travel unencrypted; configure [server.tls]"
            );
        }
        let registry = Registry::start(db.clone());
        let settings = Arc::new(settings);
        let harvester = Arc::new(
            crate::catalog::sync::Harvester::new(
                settings.clone(),
                db.clone(),
                auditor.clone(),
                catalog.clone(),
                http.clone(),
            )
            .map_err(|e| StartError::Catalog(e.to_string()))?,
        );
        // The last good harvest is served from the start, whether or not the portal answers.
        harvester
            .reload()
            .await
            .map_err(|e| StartError::Catalog(e.to_string()))?;
        let harvest = harvester.status();
        let harvest_task = harvester.spawn();
        let state = web::Data::new(AppState {
            telemetry: Arc::new(telemetry),
            verified_tokens: VerifiedTokens::default(),
            pseudonym_secret: pseudonym_secret(&settings)?,
            admin_token: settings.admin.token.clone(),
            settings: settings.clone(),
            db,
            catalog,
            harvest,
            auditor,
            registry,
            tokens,
            trust,
            policies,
        });

        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let shutdown = settings.server.shutdown_timeout_secs;
        let public_state = state.clone();
        let public = HttpServer::new(move || {
            App::new()
                .app_data(public_state.clone())
                .configure(http::public::configure)
        })
        .workers(workers)
        .tcp_nodelay(true)
        .shutdown_timeout(shutdown)
        .disable_signals()
        .on_connect(http::tls::remember_client_cert);
        let public = match tls {
            Some(tls) => public.listen_rustls_0_23(public_listener, tls),
            None => public.listen(public_listener),
        }
        .map_err(|source| StartError::Bind {
            addr: settings.server.public_listen.clone(),
            source,
        })?
        .run();
        let admin_state = state.clone();
        let admin = HttpServer::new(move || {
            App::new()
                .app_data(admin_state.clone())
                .configure(http::admin::configure)
        })
        .workers(1)
        .shutdown_timeout(shutdown)
        .disable_signals()
        .listen(admin_listener)
        .map_err(|source| StartError::Bind {
            addr: settings.server.admin_listen.clone(),
            source,
        })?
        .run();

        Ok(Self {
            public_port,
            admin_port,
            public,
            admin,
            auditor: auditor_handle,
            state,
            harvest_task,
        })
    }

    pub fn public_port(&self) -> u16 {
        self.public_port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            public: self.public.handle(),
            admin: self.admin.handle(),
        }
    }

    /// Runs until both listeners are stopped, then flushes the audit log and closes the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (public, admin) = tokio::join!(self.public, self.admin);
        if let Some(task) = self.harvest_task {
            task.abort();
        }
        self.auditor.shutdown().await;
        self.state.telemetry.shutdown();
        self.state.db.close().await;
        public.and(admin)
    }
}

fn load_signing_key(
    settings: &Settings,
    our_party: PartyId,
) -> Result<AccessTokenIssuer, StartError> {
    let path = &settings.auth.signing_key;
    let fail = |why: String| StartError::SigningKey {
        path: path.display().to_string(),
        why,
    };
    if settings.auth.create_missing_key
        && ensure_connector_key(path).map_err(|e| fail(e.to_string()))?
    {
        tracing::warn!(path = %path.display(), "created a development signing key (auth.create_missing_key)");
    }
    let pem = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    AccessTokenIssuer::new(
        &pem,
        our_party,
        Duration::from_secs(settings.auth.access_token_ttl_secs),
    )
    .map_err(|e| fail(e.to_string()))
}

/// Loads and validates every policy; a restricted product whose policy is missing or invalid stops
/// the start. The folder is then watched: a valid edit applies on the next request, an invalid
/// one keeps the last valid version.
fn load_policies(
    settings: &Settings,
    products: &[Product],
) -> Result<Option<Arc<PolicyStore>>, StartError> {
    let dir = settings
        .admin
        .policies_dir
        .clone()
        .unwrap_or_else(|| "policies".into());
    let restricted: Vec<&Product> = products
        .iter()
        .filter(|p| p.access == Access::Restricted)
        .collect();
    if !dir.is_dir() {
        if restricted.is_empty() {
            return Ok(None);
        }
        return Err(StartError::Policies(format!(
            "admin.policies_dir: {} is not a folder, but restricted products need their policies",
            dir.display()
        )));
    }
    let store = PolicyStore::open(&dir)
        .map_err(|e| StartError::Policies(e.to_string().replace('\n', "; ")))?;
    for p in restricted {
        let policy = p.policy.as_deref().unwrap_or_default();
        if store.get(policy).is_none() {
            return Err(StartError::Policies(format!(
                "product `{}`: policy `{policy}` is not in {}",
                p.id,
                dir.display()
            )));
        }
    }
    store
        .watch(Duration::from_millis(200))
        .map_err(|e| StartError::Policies(e.to_string()))?;
    tracing::info!(dir = %dir.display(), policies = store.status().policies.len(), "policies loaded");
    Ok(Some(Arc::new(store)))
}

/// Pseudonyms must be stable across restarts and replicas and unguessable: derived from the
/// connector's signing key (rotating the key rotates the pseudonyms).
fn pseudonym_secret(settings: &Settings) -> Result<[u8; 32], StartError> {
    use sha2::{Digest, Sha256};
    let key = std::fs::read(&settings.auth.signing_key).map_err(|e| StartError::SigningKey {
        path: settings.auth.signing_key.display().to_string(),
        why: e.to_string(),
    })?;
    let mut h = Sha256::new();
    h.update(b"sluis pseudonym secret v1\0");
    h.update(&key);
    Ok(h.finalize().into())
}

fn load_trust_anchors(dir: &std::path::Path) -> Option<TrustStore> {
    match TrustStore::load_dir(dir) {
        Ok(t) => {
            tracing::info!(anchors = t.len(), dir = %dir.display(), "trust anchors loaded");
            Some(t)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no usable trust anchors: the token endpoint refuses every client assertion");
            None
        }
    }
}

fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })
}

fn local_port(l: &TcpListener) -> u16 {
    l.local_addr().map(|a| a.port()).unwrap_or_default()
}

/// rustls needs exactly one process-wide crypto provider; a second call is a harmless no-op.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
