//! The application: shared state, start-up (migrate, connect, keys), and serving.

use std::sync::Arc;

use crate::auth::jwt::Keys;
use crate::compute::libvirt::Libvirt;
use crate::compute::Compute;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;

/// What every request handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub keys: Arc<Keys>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub compute: Compute,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Migrate(#[from] crate::db::migrate::MigrateError),
    #[error("connecting as the app role: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Keys(#[from] crate::auth::jwt::KeyError),
    #[error("listening on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

impl AppState {
    /// Migrates the database, connects the app pool and loads the signing key.
    pub async fn start(config: Config) -> Result<AppState, StartError> {
        crate::db::migrate::migrate(&config.database_url, config.app_database_password.as_deref()).await?;
        let db = Db::connect(&config.app_database_url, config.db_max_connections).await?;
        crate::authz::sync_builtin_roles(&db).await?;
        crate::api::regions::ensure_local(&db, &format!("http://{}", config.listen)).await?;
        let keys = Keys::load_or_generate(&config.jwt_key_file, chrono::Duration::seconds(config.token_ttl_seconds))?;
        let compute = Compute::new(Arc::new(Libvirt::new()), config.state_dir.clone(), config.cpu_overcommit);
        Ok(AppState { db, keys: Arc::new(keys), config: Arc::new(config), metrics: Arc::new(Metrics::new()), compute })
    }
}

/// Serves the API on `listener` until `shutdown` completes; runs the periodic jobs.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::compute::reconciler::startup(&state).await;
    let jobs = tokio::spawn(crate::jobs::run(state.clone()));
    let reconciler = tokio::spawn(crate::compute::reconciler::run(state.clone()));
    let router = crate::api::router(state);
    let result = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
    jobs.abort();
    reconciler.abort();
    result
}

/// Binds `addr`, with an error that names it.
pub async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr: addr.to_string(), source })
}
