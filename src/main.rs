//! The `sluis` command line: serve the connector, run migrations; later issues add consumer,
//! policy, audit, certs and catalog commands. Errors print as one line on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluis::app::Application;
use sluis::config::Settings;
use sluis::store::Db;

#[derive(Parser)]
#[command(name = "sluis", version, about = "A sovereign data-sharing connector")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then run the connector until SIGTERM/SIGINT.
    Serve {
        /// Configuration file.
        #[arg(long, default_value = "sluis.toml")]
        config: PathBuf,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// Configuration file.
        #[arg(long, default_value = "sluis.toml")]
        config: PathBuf,
    },
    /// The catalog and its open-data portal.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// ODRL usage policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The audit log: verify its chains and checkpoints, prune old records.
    Audit {
        #[command(subcommand)]
        command: sluis::audit::cli::AuditCommand,
    },
    /// Certificates and keys.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Sign an iSHARE client assertion (development helper; prints the JWT).
    Assertion {
        /// The consumer's private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// Certificate chain for x5c (PEM files, leaf first; each may hold several certificates).
        #[arg(long = "cert", required = true)]
        certs: Vec<PathBuf>,
        /// The consumer's party id (iss, sub, client_id).
        #[arg(long)]
        client_id: String,
        /// The connector's party id (aud).
        #[arg(long, default_value = "did:ishare:EU.NL.NTRNL-00000001")]
        audience: String,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Poll the configured portal once, store and audit the changes, and print them.
    Sync {
        /// Configuration file.
        #[arg(long, default_value = "sluis.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Parse and validate ODRL policies; exit 2 with one line per problem when any is invalid.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Evaluate one AuthZEN request (JSON) against one ODRL policy; prints the AuthZEN response.
    Eval {
        #[arg(long)]
        policy: PathBuf,
        #[arg(long)]
        request: PathBuf,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Make a development CA, the connector's key and certificate, and one example consumer.
    Dev {
        /// Output folder; its `trust/` subfolder is the trust-anchor folder.
        #[arg(long, default_value = "certs/dev")]
        out: PathBuf,
        /// The connector's party id (certificate subject serialNumber).
        #[arg(long, default_value = "did:ishare:EU.NL.NTRNL-00000001")]
        connector: String,
        /// The example consumer's party id.
        #[arg(long, default_value = "did:ishare:EU.NL.NTRNL-00000002")]
        consumer: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Policy { command } => {
            let code = match command {
                PolicyCommand::Check { files } => sluis::policy::cli::check(&files),
                PolicyCommand::Eval { policy, request } => {
                    sluis::policy::cli::eval(&policy, &request)
                }
            };
            return ExitCode::from(u8::try_from(code).unwrap_or(2));
        }
        Command::Audit { command } => {
            let code = actix_web::rt::System::new().block_on(sluis::audit::cli::run(command));
            return ExitCode::from(code);
        }
        Command::Certs {
            command:
                CertsCommand::Dev {
                    out,
                    connector,
                    consumer,
                },
        } => certs_dev(&out, &connector, &consumer),
        Command::Assertion {
            key,
            certs,
            client_id,
            audience,
        } => assertion(&key, &certs, &client_id, &audience),
        command => actix_web::rt::System::new().block_on(async move {
            match command {
                Command::Serve { config } => serve(config).await,
                Command::Migrate { config } => migrate(config).await,
                Command::Catalog {
                    command: CatalogCommand::Sync { config },
                } => catalog_sync(config).await,
                _ => Ok(()),
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, message }) => {
            eprintln!("sluis: {message}");
            ExitCode::from(code)
        }
    }
}

struct Failure {
    code: u8,
    message: String,
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 2,
        message: e.to_string(),
    }
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 1,
        message: e.to_string(),
    }
}

fn load(config: &std::path::Path) -> Result<Settings, Failure> {
    // The default file may be absent (all settings from the environment); an explicit one not.
    let default = config == std::path::Path::new("sluis.toml");
    Settings::load(config, default).map_err(usage)
}

async fn catalog_sync(config: PathBuf) -> Result<(), Failure> {
    let settings = load(&config)?;
    sluis::app::install_crypto_provider();
    let report = sluis::catalog::sync::sync_command(settings)
        .await
        .map_err(runtime)?;
    println!("{report}");
    Ok(())
}

async fn serve(config: PathBuf) -> Result<(), Failure> {
    let settings = load(&config)?;
    let app = Application::build(settings).await.map_err(runtime)?;
    tracing::info!(
        public_port = app.public_port(),
        admin_port = app.admin_port(),
        "sluis is ready"
    );
    let stop = app.stop_handle();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: draining in-flight requests and the audit queue");
        stop.stop().await;
    });
    app.run_until_stopped().await.map_err(runtime)?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(config: PathBuf) -> Result<(), Failure> {
    let settings = load(&config)?;
    let db = Db::connect(&settings.database.url, 1, settings.database_timeout())
        .await
        .map_err(runtime)?;
    db.migrate().await.map_err(runtime)?;
    db.close().await;
    println!("migrations applied ({})", db.kind());
    Ok(())
}

fn certs_dev(out: &std::path::Path, connector: &str, consumer: &str) -> Result<(), Failure> {
    use sluis::auth::{PartyId, devcerts};
    let connector = PartyId::parse(connector).map_err(|e| usage(format!("--connector: {e}")))?;
    let consumer = PartyId::parse(consumer).map_err(|e| usage(format!("--consumer: {e}")))?;
    let made = devcerts::generate(out, &connector, &consumer).map_err(runtime)?;
    println!("development PKI written to {}", out.display());
    println!(
        "  trust anchors (auth.trust_anchors): {}",
        made.trust_dir.display()
    );
    println!(
        "  connector key (auth.signing_key):   {}{}",
        made.connector_key.display(),
        if made.connector_key_created {
            ""
        } else {
            " (existing key kept)"
        }
    );
    println!(
        "  connector certificate:              {}",
        made.connector_cert.display()
    );
    println!(
        "  consumer {consumer}: {} + {}",
        made.consumer_key.display(),
        made.consumer_cert.display()
    );
    Ok(())
}

fn assertion(
    key: &std::path::Path,
    certs: &[PathBuf],
    client_id: &str,
    audience: &str,
) -> Result<(), Failure> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| usage(format!("{}: {e}", p.display())))
    };
    let key = read(key)?;
    let chain = certs
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let chain: Vec<&str> = chain.iter().map(String::as_str).collect();
    let jwt =
        sluis::auth::sign_client_assertion(&key, &chain, client_id, audience, chrono::Utc::now())
            .map_err(usage)?;
    println!("{jwt}");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers the process still stops on SIGKILL; say so once.
            tracing::warn!("could not install signal handlers");
            std::future::pending::<()>().await;
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SLUIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
