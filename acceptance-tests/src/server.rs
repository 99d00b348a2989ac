//! Real `basalt-server`s in-process on loopback ports, each on its own database,
//! with a provider admin whose API token the provider uses: one standalone
//! server ([`TestServer::start`]), or a federation of a global controller and
//! two regions ([`TestServer::start_federated`]) behind the controller's endpoint.

use std::path::PathBuf;
use std::time::Duration;

use basalt_client::{Client, Page, Region};
use basalt_server::app::{self, AppState};
use basalt_server::config::Config;
use basalt_server::federation::signing::Keyring;
use basalt_server::federation::Mode;
use uuid::Uuid;

use crate::db::TestDb;

/// One running server process's worth of state.
struct Part {
    db: TestDb,
    state: AppState,
    state_dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

pub struct TestServer {
    /// The endpoint users call (the controller's, when federated).
    pub endpoint: String,
    /// The provider admin's API token (system scope).
    pub admin_token: String,
    /// The same admin, for checking the API between Terraform steps.
    pub admin: Client,
    /// The first part is the one users call.
    parts: Vec<Part>,
}

impl Part {
    /// Starts a server on a fresh database; `adjust` sets its mode (it gets the endpoint).
    async fn start(adjust: impl FnOnce(&mut Config, &str)) -> (Part, String) {
        let db = TestDb::new().await.expect("test database");
        let state_dir = std::env::temp_dir().join(format!("basalt-acc-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&state_dir).expect("state dir");
        let mut config = Config::with_database(db.url.clone(), state_dir.clone()).expect("config");
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.db_max_connections = 8;
        let listener = app::bind(config.listen).await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        adjust(&mut config, &endpoint);
        let state = AppState::start(config).await.expect("start server");
        let serving = state.clone();
        let task = tokio::spawn(async move {
            let _ = app::serve(serving, listener, std::future::pending()).await;
        });
        (Part { db, state, state_dir, task }, endpoint)
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let (part, endpoint) = Part::start(|_, _| {}).await;
        TestServer::with_admin(vec![part], endpoint).await
    }

    /// A global controller and regions `r1` and `r2`, health-checked every second;
    /// answers once both regions are healthy.
    pub async fn start_federated() -> TestServer {
        let keys_dir = std::env::temp_dir().join(format!("basalt-acc-keys-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&keys_dir).expect("keys dir");
        let master = format!("k1 {}\n", Uuid::new_v4().simple().to_string().repeat(2));
        let master_path = keys_dir.join("global.keys");
        std::fs::write(&master_path, &master).expect("master keys");
        let (global, global_url) = Part::start(|c, _| {
            c.federation.mode = Mode::Global;
            c.federation.keys_file = Some(master_path.clone());
            c.federation.health_interval_seconds = 1;
        })
        .await;
        let mut parts = vec![global];
        for name in ["r1", "r2"] {
            let ring = Keyring::parse(&master, "master").expect("keyring").derive_for_region(name);
            let path = keys_dir.join(format!("{name}.keys"));
            std::fs::write(&path, ring.to_file_text()).expect("region keys");
            let (region, _) = Part::start(|c, endpoint| {
                c.federation.mode = Mode::Region;
                c.federation.keys_file = Some(path.clone());
                c.federation.region_name = Some(name.to_string());
                c.federation.public_url = Some(endpoint.to_string());
                c.federation.global_url = Some(global_url.clone());
            })
            .await;
            parts.push(region);
        }
        let server = TestServer::with_admin(parts, global_url).await;
        let start = std::time::Instant::now();
        loop {
            let page: Page<Region> = server.admin.get_at("/v1/regions").await.expect("regions");
            if page.items.len() == 2 && page.items.iter().all(|r| r.health == "healthy") {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "regions not healthy: {:?}", page.items);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    async fn with_admin(parts: Vec<Part>, endpoint: String) -> TestServer {
        let front = &parts[0];
        let admin_token = basalt_server::dev::ensure_admin(&front.state.db, &front.state_dir).await.expect("admin");
        let admin = Client::new(&endpoint, Some(admin_token.clone()));
        TestServer { endpoint, admin_token, admin, parts }
    }

    /// The database URL of the server users call, as the administrator
    /// (bypasses RLS: for checks only).
    pub fn database_url(&self) -> &str {
        &self.parts[0].db.url
    }

    /// Every server's database URL as the administrator (the regions' too).
    pub fn database_urls(&self) -> Vec<&str> {
        self.parts.iter().map(|p| p.db.url.as_str()).collect()
    }

    pub async fn stop(self) {
        for part in self.parts {
            part.task.abort();
            part.state.db.pool().close().await;
            part.db.drop_db().await;
            let _ = std::fs::remove_dir_all(&part.state_dir);
        }
    }
}
