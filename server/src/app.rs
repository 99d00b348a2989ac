//! The application: shared state, start-up (migrate, connect, keys), and serving.

use std::sync::Arc;

use crate::auth::jwt::Keys;
use crate::compute::libvirt::Libvirt;
use crate::compute::Compute;
use crate::config::Config;
use crate::db::Db;
use crate::federation::{Federation, Mode};
use crate::metrics::Metrics;

/// What every request handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub keys: Arc<Keys>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub compute: Compute,
    /// Set at a global controller or a region (None: standalone).
    pub federation: Option<Arc<crate::federation::Federation>>,
    /// Webhook secrets' sealing key and the delivery client (`webhooks`).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Migrate(#[from] crate::db::migrate::MigrateError),
    #[error("connecting as the app role: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Keys(#[from] crate::auth::jwt::KeyError),
    #[error(transparent)]
    Webhooks(#[from] crate::webhooks::StartError),
    #[error(transparent)]
    Federation(#[from] crate::federation::FederationError),
    #[error("reading the federation state: {0}")]
    FederationState(crate::error::ApiError),
    #[error("listening on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

impl AppState {
    /// Migrates the database, connects the app pool and loads the signing key.
    pub async fn start(config: Config) -> Result<AppState, StartError> {
        let db = connect(&config).await?;
        let federation = match config.federation.mode {
            Mode::Standalone => {
                crate::api::regions::ensure_local(&db, &format!("http://{}", config.listen)).await?;
                None
            }
            _ => Some(Arc::new(Federation::new(config.federation.clone())?)),
        };
        if let Some(fed) = federation.as_ref().filter(|f| f.mode() == Mode::Region) {
            crate::federation::sync::load_saved(&db, fed).await.map_err(StartError::FederationState)?;
        }
        let keys = Keys::load_or_generate(&config.jwt_key_file, chrono::Duration::seconds(config.token_ttl_seconds))?;
        let webhooks = crate::webhooks::Webhooks::start(&config.webhooks)?;
        let compute = Compute::new(Arc::new(Libvirt::new()), config.state_dir.clone(), config.cpu_overcommit);
        Ok(AppState {
            db,
            keys: Arc::new(keys),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
            compute,
            federation,
            webhooks: Arc::new(webhooks),
        })
    }
}

/// Migrates the database, connects the app pool and brings the built-in roles up to date.
pub async fn connect(config: &Config) -> Result<Db, StartError> {
    crate::db::migrate::migrate(&config.database_url, config.app_database_password.as_deref()).await?;
    let db = Db::connect(&config.app_database_url, config.db_max_connections).await?;
    crate::authz::sync_builtin_roles(&db).await?;
    Ok(db)
}

/// Serves the API on `listener` until `shutdown` completes; runs the periodic jobs.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mode = state.federation.as_ref().map_or(Mode::Standalone, |f| f.mode());
    let mut background = vec![tokio::spawn(crate::jobs::run(state.clone()))];
    // Compute lives in standalone installs and regions; the controller checks regions.
    if mode != Mode::Global {
        crate::compute::reconciler::startup(&state).await;
    }
    // Alive before the first request: a sibling's reconciler must never take
    // this process's new operations for a dead one's.
    if let Err(e) = crate::instances::beat(&state.db).await {
        tracing::warn!(error = %e, "could not register this instance; will retry");
    }
    background.push(tokio::spawn(crate::instances::run(state.db.clone())));
    if mode != Mode::Global {
        background.push(tokio::spawn(crate::compute::reconciler::run(state.clone())));
        background.push(tokio::spawn(crate::compute::schedules::run(state.clone())));
    }
    // Webhooks are tenant rows of the identity side: regions hold none.
    if mode != Mode::Region {
        background.push(tokio::spawn(crate::webhooks::worker::run(state.clone())));
    }
    if let Some(fed) = state.federation.clone() {
        background.push(match mode {
            Mode::Global => tokio::spawn(crate::federation::health::run(state.clone(), fed)),
            _ => tokio::spawn(crate::federation::sync::register_until_done(state.clone(), fed)),
        });
    }
    let db = state.db.clone();
    let router = crate::api::router(state);
    let result = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
    for task in background {
        task.abort();
    }
    crate::instances::leave(&db).await;
    result
}

/// Binds `addr`, with an error that names it.
pub async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr: addr.to_string(), source })
}
