//! A real `basalt-server` in-process on a loopback port, on its own database,
//! with a provider admin whose API token the provider uses.

use std::path::PathBuf;

use basalt_client::Client;
use basalt_server::app::{self, AppState};
use basalt_server::config::Config;
use uuid::Uuid;

use crate::db::TestDb;

pub struct TestServer {
    pub endpoint: String,
    /// The provider admin's API token (system scope).
    pub admin_token: String,
    /// The same admin, for checking the API between Terraform steps.
    pub admin: Client,
    db: TestDb,
    state: AppState,
    state_dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let db = TestDb::new().await.expect("test database");
        let state_dir = std::env::temp_dir().join(format!("basalt-acc-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&state_dir).expect("state dir");
        let mut config = Config::with_database(db.url.clone(), state_dir.clone()).expect("config");
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.db_max_connections = 8;
        let listener = app::bind(config.listen).await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let state = AppState::start(config).await.expect("start server");
        let admin_token = basalt_server::dev::ensure_admin(&state.db, &state_dir).await.expect("admin");
        let serving = state.clone();
        let task = tokio::spawn(async move {
            let _ = app::serve(serving, listener, std::future::pending()).await;
        });
        let admin = Client::new(&endpoint, Some(admin_token.clone()));
        TestServer { endpoint, admin_token, admin, db, state, state_dir, task }
    }

    /// The database URL as the administrator (bypasses RLS: for checks only).
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    pub async fn stop(self) {
        self.task.abort();
        self.state.db.pool().close().await;
        self.db.drop_db().await;
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}
