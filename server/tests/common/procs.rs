//! Real `basalt-server` processes for tests that need several (federation,
//! replicas behind PgBouncer): start, kill, restart, and call them over HTTP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method};
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_basalt-server");

/// One `basalt-server` process; killed when dropped.
pub struct Proc {
    args: Vec<String>,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    pub fn start(args: Vec<String>, port: u16, log: PathBuf) -> Proc {
        let mut p = Proc { args, port, log, child: None };
        p.restart();
        p
    }

    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let child = Command::new(BIN)
            .args(&self.args)
            .env("BASALT_LOG", "info,sqlx=warn,tower_http=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start basalt-server");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// Replaces a file in one step (a keyring is re-read when it changes).
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

pub struct Api {
    pub http: reqwest::Client,
}

impl Api {
    pub async fn call(&self, method: Method, url: &str, token: &str, body: Option<Value>) -> (u16, Value, HeaderMap) {
        let mut req = self.http.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            // Not up (yet, or any more): status 0, for the caller to judge.
            Err(e) => return (0, json!({ "transport_error": e.to_string() }), HeaderMap::new()),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), headers)
    }

    pub async fn ok(&self, method: Method, url: &str, token: &str, body: Option<Value>) -> Value {
        let (status, v, _) = self.call(method.clone(), url, token, body).await;
        assert!((200..300).contains(&status), "{method} {url}: {status} {v}");
        v
    }
}

impl Api {
    /// Makes user `ops` tenant admin of `tenant` through `write` (as the provider
    /// `admin`, switched into the tenant) and answers its token from a password
    /// login at `login` (which may be another process than `write`).
    pub async fn tenant_admin(&self, write: &str, login: &str, admin: &str, tenant: &str) -> String {
        let inside = self
            .ok(Method::POST, &format!("{write}/v1/auth/switch-tenant"), admin, Some(json!({"tenant": tenant})))
            .await;
        let inside = inside["token"].as_str().expect("token").to_string();
        let body = json!({"username": "ops", "password": super::PASSWORD});
        let user = self.ok(Method::POST, &format!("{write}/v1/users"), &inside, Some(body)).await;
        let role = basalt_server::authz::builtin_role_named("tenant-admin").expect("role").id;
        let binding = json!({"role_id": role, "user_id": user["id"]});
        self.ok(Method::POST, &format!("{write}/v1/role-bindings"), &inside, Some(binding)).await;
        let credentials = json!({"username": "ops", "password": super::PASSWORD, "tenant": tenant});
        let login = self.ok(Method::POST, &format!("{login}/v1/auth/login"), "", Some(credentials)).await;
        login["token"].as_str().expect("token").to_string()
    }
}

/// Polls `check` every 100 ms until it is true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {within:?}");
}

/// PgBouncer (Debian's package) in transaction pooling mode in front of the test
/// Postgres, as replicas behind it see it; killed when dropped.
///
/// Debian 12 ships 1.18, which does not track named prepared statements in
/// transaction mode, so clients connect with `statement-cache-capacity=0` (sqlx
/// then prepares afresh in each transaction) and PgBouncer runs `DISCARD ALL`
/// whenever it hands a server connection back, so no prepared statement or
/// session setting of one client can meet another (docs/scaling.md).
pub struct Pgbouncer {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl Pgbouncer {
    pub fn start() -> Pgbouncer {
        let upstream = sqlx::postgres::PgConnectOptions::from_str(&basalt_server::testing::admin_url())
            .expect("test database URL");
        let dir = std::env::temp_dir().join(format!("basalt-pgbouncer-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("pgbouncer dir");
        let port = free_port();
        let ini = format!(
            "[databases]\n* = host={host} port={pgport}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir =\nauth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
             max_client_conn = 500\ndefault_pool_size = 8\nserver_reset_query = DISCARD ALL\n\
             server_reset_query_always = 1\nignore_startup_parameters = extra_float_digits\n",
            host = upstream.get_host(),
            pgport = upstream.get_port(),
            users = dir.join("users.txt").display(),
        );
        std::fs::write(dir.join("pgbouncer.ini"), ini).expect("pgbouncer.ini");
        std::fs::write(dir.join("users.txt"), "\"basalt_app\" \"\"\n\"postgres\" \"\"\n").expect("users.txt");
        let log = std::fs::File::create(dir.join("pgbouncer.log")).expect("pgbouncer log");
        let mut cmd = Command::new(pgbouncer_binary());
        // PgBouncer refuses to run as root; it drops to `postgres` when asked.
        if nix::unistd::geteuid().is_root() {
            cmd.args(["-u", "postgres"]);
        }
        let child = cmd
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pgbouncer (scripts/setup installs it)");
        let bouncer = Pgbouncer { port, dir, child };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "pgbouncer did not listen: {}", bouncer.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }

    /// The app role's URL for `database`, through PgBouncer.
    pub fn app_url(&self, database: &str) -> String {
        format!("postgres://basalt_app@127.0.0.1:{}/{database}?statement-cache-capacity=0", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pgbouncer_binary() -> PathBuf {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("pgbouncer"))
}
