//! Wires the state and builds the two HTTP servers. Binding port 0 is allowed: tests start the
//! real application this way and ask for the ports it got.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};

use crate::audit::{Auditor, AuditorHandle};
use crate::catalog::{Catalog, Product};
use crate::config::Settings;
use crate::http;
use crate::store::Db;

/// Shared by every request on both listeners.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub catalog: Arc<Catalog>,
    pub auditor: Auditor,
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
}

pub struct Application {
    public_port: u16,
    admin_port: u16,
    public: Server,
    admin: Server,
    auditor: AuditorHandle,
    state: web::Data<AppState>,
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
        install_crypto_provider();
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
        let catalog = Arc::new(Catalog::new(products));

        let (auditor, auditor_handle) = Auditor::start(
            db.clone(),
            settings.audit.queue_capacity,
            settings.audit.max_batch,
        )
        .await?;

        let public_listener = bind(&settings.server.public_listen)?;
        let admin_listener = bind(&settings.server.admin_listen)?;
        let public_port = local_port(&public_listener);
        let admin_port = local_port(&admin_listener);
        let settings = Arc::new(settings);
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            db,
            catalog,
            auditor,
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
        .listen(public_listener)
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
        self.auditor.shutdown().await;
        self.state.db.close().await;
        public.and(admin)
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
