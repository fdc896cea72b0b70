//! Test harness: fresh databases, the application started in-process or as the real binary, and
//! readers for the audit log.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use sluis::app::{Application, StopHandle};
use sluis::catalog::Access;
use sluis::config::{ProductSettings, Settings, SourceSettings};
use sqlx::{Connection, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once per database: `both_databases!(name, ...)` expects `async fn name(Backend)`.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_test_writer()
                .init();
        }
    });
}

/// The demo data shipped with the repository.
pub fn demo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/nijmegen/data")
        .join(name)
}

/// A fresh, empty database: a SQLite file in a temp folder, or a new PostgreSQL database.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

pub fn postgres_admin_url() -> String {
    std::env::var("SLUIS_TEST_POSTGRES_URL").expect(
        "SLUIS_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts a PostgreSQL",
    )
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        // reqwest is built without a default TLS provider; every test starts here.
        sluis::app::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Self {
                backend,
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("sluis.db").display()
                ),
                pg_name: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("sluis_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to the test PostgreSQL");
                conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                    .await
                    .expect("create test database");
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                Self {
                    backend,
                    url: format!("{base}/{name}"),
                    pg_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }

    /// A folder that lives as long as the database, for config files and test data.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Drops a PostgreSQL test database (best effort; the throwaway cluster goes anyway).
    pub async fn drop_db(&self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                let _ = conn
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await;
            }
        }
    }

    pub fn pg_name(&self) -> Option<&str> {
        self.pg_name.as_deref()
    }

    /// The same database seen by another server instance: never drops it.
    pub fn another_view(&self) -> TestDb {
        TestDb {
            backend: self.backend,
            url: self.url.clone(),
            pg_name: None,
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

/// A second server instance (replica) on the first one's database, sharing its signing key.
pub async fn spawn_replica(first: &TestApp, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let db = first.db.another_view();
    let mut settings = test_settings(&db);
    settings.auth.signing_key = first.db.dir().join("connector.key");
    customize(&mut settings);
    start(db, settings).await
}

pub fn file_product(id: &str, path: PathBuf) -> ProductSettings {
    ProductSettings {
        id: id.into(),
        access: Access::Open,
        policy: None,
        title: None,
        description: None,
        dcat: Default::default(),
        processing_activity_id: None,
        source: SourceSettings::File {
            path,
            media_type: None,
        },
    }
}

/// The admin token every test server is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789-abcdefghijklmnop";

/// Settings for a test: both listeners on port 0, the given database, the demo's products, a
/// signing key made on first start in the test's folder, and the test admin token.
pub fn test_settings(db: &TestDb) -> Settings {
    let mut s = Settings::empty();
    s.auth.signing_key = db.dir().join("connector.key");
    s.auth.create_missing_key = true;
    s.admin.token = Some(ADMIN_TOKEN.into());
    s.server.public_listen = "127.0.0.1:0".into();
    s.server.admin_listen = "127.0.0.1:0".into();
    s.server.workers = 2;
    s.server.shutdown_timeout_secs = 10;
    s.database.url = db.url.clone();
    s.database.timeout_ms = 2000;
    s.products = vec![
        file_product("stadsmuur", demo_file("stadsmuur.geojson")),
        file_product("wijken", demo_file("wijken.geojson")),
        ProductSettings {
            access: Access::Restricted,
            policy: Some("oorlogsschade.json".into()),
            ..file_product("oorlogsschade", demo_file("wo2_oorlogsschade.geojson"))
        },
    ];
    s
}

pub struct TestApp {
    pub public: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    stop: StopHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_, _| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    customize: impl FnOnce(&mut Settings, &TestDb),
) -> TestApp {
    let db = TestDb::new(backend).await;
    let mut settings = test_settings(&db);
    customize(&mut settings, &db);
    start(db, settings).await
}

/// Starts the application with exactly these settings on `db`.
pub async fn start(db: TestDb, settings: Settings) -> TestApp {
    let telemetry =
        sluis::telemetry::Telemetry::from_settings(&settings.telemetry).expect("telemetry");
    start_with_telemetry(db, settings, telemetry).await
}

/// Starts the application with a given telemetry pipeline (e.g. an in-memory span exporter).
pub async fn start_with_telemetry(
    db: TestDb,
    settings: Settings,
    telemetry: sluis::telemetry::Telemetry,
) -> TestApp {
    init_logs();
    let app = Application::build_with_telemetry(settings, telemetry)
        .await
        .expect("application starts");
    let public = format!("http://127.0.0.1:{}", app.public_port());
    let admin = format!("http://127.0.0.1:{}", app.admin_port());
    let stop = app.stop_handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        public,
        admin,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        db,
        stop,
        task,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.public))
            .send()
            .await
            .expect("request reaches the server")
    }

    /// An authenticated admin call with a JSON body (or none).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("admin request reaches the server")
    }

    /// Registers a consumer through the admin API.
    pub async fn register(&self, party_id: &str, groups: &[&str], certificate: Option<&str>) {
        let res = self
            .admin(
                reqwest::Method::POST,
                "/admin/consumers",
                Some(serde_json::json!({
                    "party_id": party_id,
                    "name": format!("Consumer {party_id}"),
                    "groups": groups,
                    "certificate": certificate,
                })),
            )
            .await;
        assert_eq!(
            res.status(),
            201,
            "register {party_id}: {}",
            res.text().await.unwrap_or_default()
        );
    }

    pub async fn set_status(&self, party_id: &str, status: &str) {
        let res = self
            .admin(
                reqwest::Method::PATCH,
                &format!("/admin/consumers/{party_id}"),
                Some(serde_json::json!({"status": status})),
            )
            .await;
        assert_eq!(res.status(), 200);
    }

    /// An iSHARE token request with the given assertion.
    pub async fn token_request(&self, client_id: &str, assertion: &str) -> reqwest::Response {
        token_request(&self.client, &self.public, client_id, assertion).await
    }

    /// Stops the server gracefully (audit queue flushed) and removes the database.
    pub async fn finish(self) {
        self.stop().await.drop_db().await;
    }

    /// Stops the server gracefully, keeping the database (for a second instance on it).
    pub async fn stop(self) -> TestDb {
        self.stop.stop().await;
        self.task
            .await
            .expect("server task")
            .expect("server ran cleanly");
        self.db
    }
}

pub async fn token_request(
    client: &reqwest::Client,
    base: &str,
    client_id: &str,
    assertion: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "iSHARE"),
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .expect("token request reaches the server")
}

/// One stored audit record, as the library reads it (the column set is the library's too).
pub use sluis::audit::StoredRecord;

const SELECT_RECORDS: &str = "SELECT transaction_id, chain_id, seq, time_us, party_id, product, \
    action, purpose, decision, reasons, policy_id, policy_version, status, method, path, trace_id, \
    span_id, prev_hash, hash FROM audit_records ORDER BY chain_id, seq";

/// Every audit record in the database, in chain order.
pub async fn audit_records(url: &str) -> Vec<StoredRecord> {
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url)
            .await
            .expect("open sqlite");
        sqlx::query_as(SELECT_RECORDS)
            .fetch_all(&mut c)
            .await
            .expect("read audit")
    } else {
        let mut c = sqlx::PgConnection::connect(url)
            .await
            .expect("open postgres");
        sqlx::query_as(SELECT_RECORDS)
            .fetch_all(&mut c)
            .await
            .expect("read audit")
    }
}

pub async fn audit_record(url: &str, txid: &str) -> StoredRecord {
    audit_records(url)
        .await
        .into_iter()
        .find(|r| r.transaction_id == txid)
        .unwrap_or_else(|| panic!("no audit record for transaction {txid}"))
}

/// Checks every chain: contiguous sequence numbers from 1, each record linked to and hashed over
/// its predecessor, recomputed with the library's own hash.
pub fn assert_chains_intact(records: &[StoredRecord]) {
    use sluis::audit::{GENESIS_HASH, record_hash};
    let mut by_chain: std::collections::BTreeMap<&str, Vec<&StoredRecord>> = Default::default();
    for r in records {
        by_chain.entry(&r.chain_id).or_default().push(r);
    }
    for (chain, recs) in by_chain {
        let mut prev = GENESIS_HASH.to_string();
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(
                r.seq,
                i as i64 + 1,
                "chain {chain}: sequence gap at {}",
                r.transaction_id
            );
            assert_eq!(
                r.prev_hash, prev,
                "chain {chain}: broken link at seq {}",
                r.seq
            );
            let entry = r.entry().unwrap_or_else(|e| {
                panic!("chain {chain}: record {} is not canonical: {e}", r.seq)
            });
            assert_eq!(
                record_hash(&entry, chain, r.seq, &r.prev_hash),
                r.hash,
                "chain {chain}: record {} does not match its hash",
                r.seq
            );
            prev = r.hash.clone();
        }
    }
}

pub fn txid(res: &reqwest::Response) -> String {
    res.headers()
        .get("sluis-transaction-id")
        .expect("every response carries Sluis-Transaction-Id")
        .to_str()
        .expect("ascii")
        .to_string()
}

/// The real binary, started with a config file; stderr is captured for assertions.
pub struct Process {
    pub child: std::process::Child,
    pub public: String,
    pub admin: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn sluis_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluis")
}

/// Writes a config for `db` with `products_toml` appended, starts `sluis serve`, waits for ready.
pub async fn spawn_process(db: &TestDb, products_toml: &str) -> Process {
    let public_port = free_port();
    let admin_port = free_port();
    let config = db.dir().join("sluis.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\npublic_listen = \"127.0.0.1:{public_port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\nworkers = 2\n\
             [database]\nurl = \"{}\"\n[auth]\nsigning_key = \"{}\"\ncreate_missing_key = true\n{products_toml}",
            db.url,
            db.dir().join("connector.key").display()
        ),
    )
    .expect("write config");
    let child = std::process::Command::new(sluis_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("SLUIS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sluis");
    let p = Process {
        child,
        public: format!("http://127.0.0.1:{public_port}"),
        admin: format!("http://127.0.0.1:{admin_port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{}/health/ready", p.admin)).send().await {
            if r.status().is_success() {
                return p;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sluis did not become ready");
}

impl Process {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "signal delivered");
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits for exit; returns the exit code and everything written to stderr.
    pub fn wait(mut self) -> (Option<i32>, String) {
        use std::io::Read;
        let status = self.child.wait().expect("wait for sluis");
        let mut err = String::new();
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        (status.code(), err)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Runs a command and returns its stdout; a failure shows the command and both outputs.
pub fn run_command(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Python of a venv under target/ named `name` with the pinned `requirements` installed,
/// (re)built when the requirements change. `python3` (or `SLUIS_PYTHON`) makes the venv; PyPI is
/// needed the first time. Serialised: tests on both databases may ask at once.
pub fn python_venv(name: &str, requirements: &Path) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let pinned = std::fs::read_to_string(requirements).expect("requirements file");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let marker = venv.join("sluis-installed-requirements.txt");
    let python = venv.join("bin/python");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(pinned.as_str()) {
        return python;
    }
    let interpreter = std::env::var("SLUIS_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    run_command(
        std::process::Command::new(interpreter)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    );
    run_command(
        std::process::Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
    );
    std::fs::write(&marker, pinned).expect("venv marker");
    python
}
