//! The `basalt-server` command: `serve`, `dev`, `migrate`, `create-admin`, `openapi`.

use std::net::SocketAddr;
use std::path::PathBuf;

use basalt_server::config::{Config, FileConfig};
use basalt_server::federation::Mode;
use basalt_server::{app, dev};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "basalt-server", version, about = "Basalt: a multi-tenant VM control plane for MSPs")]
struct Cli {
    /// A TOML file with settings (flags and BASALT_* variables win over it).
    #[arg(long, global = true, env = "BASALT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (migrates first).
    Serve(Box<ServeArgs>),
    /// Run a self-contained instance: private Postgres, admin token, API.
    Dev(DevArgs),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Create (or re-key) a provider admin and print a new API token for it.
    CreateAdmin {
        #[command(flatten)]
        db: DbArgs,
        /// Where to write `admin-token` and `admin-password`.
        #[arg(long, env = "BASALT_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Federation keys: a new controller master key, or a region's derived keys.
    #[command(subcommand)]
    Federation(FederationCommand),
    /// Print the permission catalog.
    Permissions {
        /// Print only the number of permissions.
        #[arg(long)]
        count: bool,
        /// Print the catalog and built-in roles as Markdown (docs/rbac.md).
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Subcommand)]
enum FederationCommand {
    /// Print a new master key line (`<key id> <hex secret>`) for the controller's keyring.
    NewKey {
        /// The key id (default: `k` and today's date).
        #[arg(long)]
        id: Option<String>,
    },
    /// Print the keyring a region is given: each controller key derived for that region.
    RegionKeys {
        /// The controller's keyring file.
        #[arg(long)]
        keys: PathBuf,
        /// The region's name.
        #[arg(long)]
        region: String,
    },
}

#[derive(Args)]
struct DbArgs {
    /// Administrative Postgres URL (owner of the schema; used for migrations).
    #[arg(long, env = "BASALT_DATABASE_URL")]
    database_url: Option<String>,
    /// URL of the `basalt_app` login role (default: the admin URL with user basalt_app).
    #[arg(long, env = "BASALT_APP_DATABASE_URL")]
    app_database_url: Option<String>,
    /// Password to set for (and log in as) `basalt_app`.
    #[arg(long, env = "BASALT_APP_DATABASE_PASSWORD", hide_env_values = true)]
    app_database_password: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// standalone (default: everything in one process), global (the controller of
    /// a federation) or region (a regional gateway).
    #[arg(long, value_enum, env = "BASALT_MODE")]
    mode: Option<Mode>,
    /// The federation keyring (`<key id> <hex secret>` lines; the first signs):
    /// master secrets at the controller, derived keys in a region.
    #[arg(long, env = "BASALT_FEDERATION_KEYS")]
    federation_keys: Option<PathBuf>,
    /// A region's name (region mode).
    #[arg(long, env = "BASALT_REGION_NAME")]
    region_name: Option<String>,
    /// The URL the controller reaches this region at (region mode).
    #[arg(long, env = "BASALT_PUBLIC_URL")]
    public_url: Option<String>,
    /// The global controller's URL (region mode).
    #[arg(long, env = "BASALT_GLOBAL_URL")]
    global_url: Option<String>,
    /// Seconds between health checks of each region (global mode; default 30).
    #[arg(long, env = "BASALT_HEALTH_INTERVAL_SECONDS")]
    health_interval_seconds: Option<u64>,
    /// A region answering slower than this many milliseconds is degraded (default 1000).
    #[arg(long, env = "BASALT_DEGRADED_AFTER_MS")]
    degraded_after_ms: Option<u64>,
    #[arg(long, env = "BASALT_LISTEN")]
    listen: Option<SocketAddr>,
    /// Where the JWT signing key is kept.
    #[arg(long, env = "BASALT_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[arg(long, env = "BASALT_JWT_KEY_FILE")]
    jwt_key_file: Option<PathBuf>,
    /// The key sealing webhook signing secrets (default: STATE_DIR/webhook-secrets.key, generated).
    #[arg(long, env = "BASALT_WEBHOOK_KEY_FILE")]
    webhook_key_file: Option<PathBuf>,
    /// Let webhooks target loopback, private and link-local addresses (default false).
    #[arg(long, env = "BASALT_WEBHOOK_ALLOW_PRIVATE_TARGETS")]
    webhook_allow_private_targets: Option<bool>,
    /// Lifetime of user tokens, in seconds.
    #[arg(long, env = "BASALT_TOKEN_TTL_SECONDS")]
    token_ttl_seconds: Option<i64>,
    /// Days a deleted tenant is kept before it is purged.
    #[arg(long, env = "BASALT_TENANT_RETENTION_DAYS")]
    tenant_retention_days: Option<i64>,
    #[arg(long, env = "BASALT_PURGE_INTERVAL_SECONDS")]
    purge_interval_seconds: Option<u64>,
    #[arg(long, env = "BASALT_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    #[arg(long, env = "BASALT_DB_MAX_CONNECTIONS")]
    db_max_connections: Option<u32>,
    /// Schedulable vCPUs per host CPU (default 4).
    #[arg(long, env = "BASALT_CPU_OVERCOMMIT")]
    cpu_overcommit: Option<u32>,
    /// Seconds between reconciler passes (default 30).
    #[arg(long, env = "BASALT_RECONCILE_INTERVAL_SECONDS")]
    reconcile_interval_seconds: Option<u64>,
}

#[derive(Args)]
struct DevArgs {
    #[arg(long, default_value = ".basalt-dev", env = "BASALT_STATE_DIR")]
    state_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080", env = "BASALT_LISTEN")]
    listen: SocketAddr,
    /// Use this Postgres instead of starting a private one.
    #[arg(long)]
    database_url: Option<String>,
}

impl DbArgs {
    fn into_file_config(self) -> FileConfig {
        FileConfig {
            database_url: self.database_url,
            app_database_url: self.app_database_url,
            app_database_password: self.app_database_password,
            ..FileConfig::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BASALT_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let file = FileConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve(a) => {
            let flags = FileConfig {
                mode: a.mode,
                federation_keys: a.federation_keys,
                region_name: a.region_name,
                public_url: a.public_url,
                global_url: a.global_url,
                health_interval_seconds: a.health_interval_seconds,
                degraded_after_ms: a.degraded_after_ms,
                listen: a.listen,
                state_dir: a.state_dir,
                jwt_key_file: a.jwt_key_file,
                webhook_key_file: a.webhook_key_file,
                webhook_allow_private_targets: a.webhook_allow_private_targets,
                token_ttl_seconds: a.token_ttl_seconds,
                tenant_retention_days: a.tenant_retention_days,
                purge_interval_seconds: a.purge_interval_seconds,
                max_body_bytes: a.max_body_bytes,
                db_max_connections: a.db_max_connections,
                cpu_overcommit: a.cpu_overcommit,
                reconcile_interval_seconds: a.reconcile_interval_seconds,
                ..a.db.into_file_config()
            };
            let config = Config::resolve(flags, file)?;
            let listener = app::bind(config.listen).await?;
            let state = app::AppState::start(config).await?;
            tracing::info!(addr = %listener.local_addr()?, "serving");
            app::serve(state, listener, dev::shutdown_signal()).await?;
        }
        Command::Dev(a) => {
            dev::run(dev::DevOptions { state_dir: a.state_dir, listen: a.listen, database_url: a.database_url })
                .await?;
        }
        Command::Migrate(db) => {
            let config = Config::resolve(db.into_file_config(), file)?;
            basalt_server::db::migrate::migrate(&config.database_url, config.app_database_password.as_deref()).await?;
            println!("migrations applied");
        }
        Command::CreateAdmin { db, state_dir } => {
            let flags = FileConfig { state_dir, ..db.into_file_config() };
            let config = Config::resolve(flags, file)?;
            std::fs::create_dir_all(&config.state_dir)?;
            let db = app::connect(&config).await?;
            let token = dev::ensure_admin(&db, &config.state_dir).await?;
            println!("{token}");
        }
        Command::Federation(FederationCommand::NewKey { id }) => {
            let id = id.unwrap_or_else(|| format!("k{}", chrono::Utc::now().format("%Y%m%d")));
            println!("{id} {}", hex::encode(rand::random::<[u8; 32]>()));
        }
        Command::Federation(FederationCommand::RegionKeys { keys, region }) => {
            print!("{}", basalt_server::federation::region_keyring_text(&keys, &region)?);
        }
        Command::Openapi => println!("{}", basalt_server::api::openapi::document_json()),
        Command::Permissions { count, markdown } => {
            use basalt_server::authz::Permission;
            if count {
                println!("{}", Permission::ALL.len());
            } else if markdown {
                print!("{}", basalt_server::authz::catalog_markdown());
            } else {
                for p in Permission::ALL {
                    println!("{}\t{}", p.name(), p.description());
                }
            }
        }
    }
    Ok(())
}
