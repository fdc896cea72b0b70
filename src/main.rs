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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = actix_web::rt::System::new().block_on(async move {
        match cli.command {
            Command::Serve { config } => serve(config).await,
            Command::Migrate { config } => migrate(config).await,
        }
    });
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
