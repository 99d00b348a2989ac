//! Test harness: a real Postgres database per test (copied from a migrated
//! template, so each test starts from the real schema in milliseconds) and a real
//! server on a loopback port, driven through `basalt-client` like any user would.
//!
//! The Postgres server comes from `BASALT_TEST_DATABASE_URL` (an administrative
//! URL; default `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use basalt_client::{Client, CreateTenant, CreateUser, LoginRequest, RequestOptions, Tenant, User};
use basalt_server::app::{self, AppState};
use basalt_server::config::Config;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn admin_url() -> String {
    std::env::var("BASALT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `admin_url()` with another database name.
pub fn url_for(db: &str) -> String {
    let base = admin_url();
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h.to_string(), format!("?{q}")),
        None => (base.clone(), String::new()),
    };
    let head = head.rsplit_once('/').map(|(h, _)| h.to_string()).unwrap_or(head);
    format!("{head}/{db}{query}")
}

/// A fresh database with the current schema, dropped by [`TestDb::drop_db`].
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let template = ensure_template().await;
        let name = format!("basalt_t_{}_{}", chrono::Utc::now().timestamp(), Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url()).await.expect("connect to the test Postgres");
        sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template} OWNER basalt_owner"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        TestDb { url: url_for(&name), name }
    }

    /// A connection as the administrator (superuser: bypasses RLS; for seeding and checks).
    pub async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("admin connection")
    }

    pub fn app_url(&self) -> String {
        basalt_server::db::derive_app_url(&self.url, None).expect("app url")
    }

    pub async fn drop_db(&self) {
        if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
            let _ =
                sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn).await;
        }
    }
}

/// The migrated template, made once per schema version by whichever test gets the
/// lock first; old test databases (over two hours) are swept on the way.
async fn ensure_template() -> String {
    let version: u64 = basalt_server::db::migrate::MIGRATOR
        .iter()
        .fold(0xcbf29ce484222325, |h, m| m.checksum.iter().fold(h, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3)));
    let template = format!("basalt_tpl_{version:016x}");
    let mut conn = PgConnection::connect(&admin_url()).await.expect("connect to the test Postgres");
    sqlx::query("SELECT pg_advisory_lock(7243)").execute(&mut conn).await.expect("lock");
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&template)
        .fetch_optional(&mut conn)
        .await
        .expect("look up template");
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE {template}")).execute(&mut conn).await.expect("create template");
        basalt_server::db::migrate::migrate(&url_for(&template), None).await.expect("migrate template");
        let stale: Vec<(String,)> =
            sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'basalt\\_tpl\\_%' AND datname <> $1")
                .bind(&template)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
        for (db,) in stale {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut conn).await;
        }
    }
    let cutoff = chrono::Utc::now().timestamp() - 7200;
    let old: Vec<(String,)> = sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'basalt\\_t\\_%'")
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
    for (db,) in old {
        let ts = db.split('_').nth(2).and_then(|t| t.parse::<i64>().ok()).unwrap_or(i64::MAX);
        if ts < cutoff {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut conn).await;
        }
    }
    sqlx::query("SELECT pg_advisory_unlock(7243)").execute(&mut conn).await.ok();
    conn.close().await.ok();
    template
}

/// A running server on its own database, and a provider admin client.
pub struct TestApp {
    pub db: TestDb,
    pub state: AppState,
    pub endpoint: String,
    /// Provider admin at system scope (an API token).
    pub admin: Client,
    pub admin_token: String,
    _state_dir: Arc<TempDir>,
    server: tokio::task::JoinHandle<()>,
}

pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let db = TestDb::new().await;
        let dir = std::env::temp_dir().join(format!("basalt-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("state dir");
        let mut config = Config::with_database(db.url.clone(), dir.clone()).expect("config");
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.db_max_connections = 8;
        adjust(&mut config);
        let listener = app::bind(config.listen).await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let state = AppState::start(config).await.expect("start");
        let admin_token = basalt_server::dev::ensure_admin(&state.db, &dir).await.expect("admin");
        let serving = state.clone();
        let server = tokio::spawn(async move {
            let _ = app::serve(serving, listener, std::future::pending()).await;
        });
        TestApp {
            admin: Client::new(&endpoint, Some(admin_token.clone())),
            admin_token,
            endpoint,
            state,
            db,
            _state_dir: Arc::new(TempDir(dir)),
            server,
        }
    }

    /// The provider admin with a user token (JWT) from a password login.
    pub async fn admin_jwt(&self) -> String {
        let password = std::fs::read_to_string(self._state_dir.0.join("admin-password")).expect("admin password");
        let t = self
            .anonymous()
            .login(&LoginRequest { username: "admin".into(), password, tenant: None })
            .await
            .expect("admin login");
        t.token
    }

    /// A client with no credential.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.endpoint, None)
    }

    pub async fn create_tenant(&self, name: &str) -> Tenant {
        self.admin
            .create_tenant(&CreateTenant { name: name.into(), ..Default::default() }, &RequestOptions::default())
            .await
            .expect("create tenant")
    }

    /// The admin's client switched into `tenant`.
    pub async fn admin_in(&self, tenant: &Tenant) -> Client {
        let t = self.admin.switch_tenant(&tenant.name).await.expect("switch tenant");
        self.admin.with_token(t.token)
    }

    /// A new tenant with one user `admin` in it, and that user's logged-in client.
    pub async fn tenant_with_user(&self, name: &str) -> (Tenant, User, Client) {
        let tenant = self.create_tenant(name).await;
        let inside = self.admin_in(&tenant).await;
        let user = inside
            .create_user(
                &CreateUser { username: "admin".into(), password: Some(PASSWORD.into()), ..Default::default() },
                &RequestOptions::default(),
            )
            .await
            .expect("create tenant user");
        self.bind(&inside, &user, "tenant-admin").await;
        let client = self.login(&user.username, Some(&tenant.name)).await;
        (tenant, user, client)
    }

    /// Binds the built-in role `role` to `user`, as `granter` (in its context).
    pub async fn bind(&self, granter: &Client, user: &User, role: &str) -> basalt_client::RoleBinding {
        let role_id = basalt_server::authz::builtin_role_named(role).expect("built-in role").id;
        granter
            .create_role_binding(
                &basalt_client::CreateRoleBinding { role_id, user_id: user.id, ..Default::default() },
                &RequestOptions::default(),
            )
            .await
            .expect("bind role")
    }

    pub async fn login(&self, username: &str, tenant: Option<&str>) -> Client {
        let t = self
            .anonymous()
            .login(&LoginRequest {
                username: username.into(),
                password: PASSWORD.into(),
                tenant: tenant.map(String::from),
            })
            .await
            .expect("login");
        self.anonymous().with_token(t.token)
    }

    /// Raw HTTP for cases the typed client cannot express (bad input).
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn stop(self) {
        self.server.abort();
        self.state.db.pool().close().await;
        self.db.drop_db().await;
    }
}

/// A fingerprint of every row of every table (as the administrator, bypassing RLS):
/// equal fingerprints before and after a request mean it changed nothing.
pub async fn db_fingerprint(conn: &mut PgConnection) -> Vec<(String, i64, String)> {
    let tables: Vec<(String,)> =
        sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            .fetch_all(&mut *conn)
            .await
            .expect("tables");
    let mut out = Vec::new();
    for (t,) in tables {
        let (n, sum): (i64, Option<String>) =
            sqlx::query_as(&format!("SELECT count(*), md5(string_agg(x::text, '|' ORDER BY x::text)) FROM {t} x"))
                .fetch_one(&mut *conn)
                .await
                .expect("fingerprint");
        out.push((t, n, sum.unwrap_or_default()));
    }
    out
}
