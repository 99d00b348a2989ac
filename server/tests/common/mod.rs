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
use sqlx::PgConnection;

pub mod procs;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

/// libvirt's in-process test driver.
pub const TEST_HOST: &str = "test:///default";

/// A running VM of `client`'s tenant (created and waited for); its id.
pub async fn running_vm(client: &Client, name: &str, cluster: Uuid, template: Uuid) -> Uuid {
    let body =
        basalt_client::CreateVm { name: name.into(), cluster_id: cluster, template_id: template, ..Default::default() };
    let op: basalt_client::Operation =
        client.post_at("/v1/vms", &body, &RequestOptions::default()).await.expect("create vm");
    let op = client.wait_operation(op.id, std::time::Duration::from_secs(20)).await.expect("poll");
    assert_eq!(op.status, basalt_client::OperationStatus::Succeeded, "{:?}", op.error);
    op.target_id
}

/// A fresh database (see `basalt_server::testing`), with panicking helpers for tests.
pub struct TestDb(basalt_server::testing::TestDb);

impl std::ops::Deref for TestDb {
    type Target = basalt_server::testing::TestDb;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl TestDb {
    pub async fn new() -> TestDb {
        TestDb(basalt_server::testing::TestDb::new().await.expect("test database"))
    }

    pub async fn admin(&self) -> PgConnection {
        self.0.admin().await.expect("admin connection")
    }

    pub fn app_url(&self) -> String {
        self.0.app_url().expect("app url")
    }
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
                &basalt_client::CreateRoleBinding { role_id, user_id: Some(user.id), ..Default::default() },
                &RequestOptions::default(),
            )
            .await
            .expect("bind role")
    }

    /// A cluster of one libvirt test-driver host: `west` gets the plain URI
    /// (whose domains tests read), others the same driver under another name
    /// (a host belongs to one cluster).
    pub async fn test_cluster(&self, name: &str) -> basalt_client::Cluster {
        let host = if name == "west" { TEST_HOST.to_string() } else { format!("{TEST_HOST}?name={name}") };
        let body = basalt_client::CreateCluster { name: name.into(), hosts: vec![host], ..Default::default() };
        self.admin.post_at("/v1/clusters", &body, &RequestOptions::default()).await.expect("create cluster")
    }

    /// The public template `tiny` (1 vCPU, 128 MiB).
    pub async fn tiny_template(&self) -> basalt_client::Template {
        let body =
            basalt_client::CreateTemplate { name: "tiny".into(), vcpus: 1, memory_mib: 128, ..Default::default() };
        self.admin.post_at("/v1/templates", &body, &RequestOptions::default()).await.expect("create template")
    }

    /// A new user `username` of `tenant`, created by `granter` (its admin) and
    /// bound to the built-in cluster role `role` on `cluster` only; its logged-in client.
    pub async fn cluster_delegate(
        &self,
        granter: &Client,
        tenant: &Tenant,
        username: &str,
        role: &str,
        cluster: Uuid,
    ) -> Client {
        let body = CreateUser { username: username.into(), password: Some(PASSWORD.into()), ..Default::default() };
        let user = granter.create_user(&body, &RequestOptions::default()).await.expect("create delegate");
        let role_id = basalt_server::authz::builtin_role_named(role).expect("built-in role").id;
        let bind = basalt_client::CreateRoleBinding {
            role_id,
            user_id: Some(user.id),
            cluster_id: Some(cluster),
            ..Default::default()
        };
        granter.create_role_binding(&bind, &RequestOptions::default()).await.expect("bind cluster role");
        self.login(username, Some(&tenant.name)).await
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
