//! A fresh Postgres database per test, cloned from a migrated template (the same
//! template, named by the migrations' checksum, that the server's own tests use,
//! created under the same advisory lock), so each test starts from the real
//! schema in milliseconds.

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// The administrative URL (`BASALT_TEST_DATABASE_URL`, default the local superuser).
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

/// A database with the current schema; dropped by [`TestDb::drop_db`].
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

    pub async fn drop_db(&self) {
        if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
            let _ =
                sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn).await;
        }
    }
}

/// The template's name: a checksum of every migration, as the server's tests compute it.
fn template_name() -> String {
    let version: u64 = basalt_server::db::migrate::MIGRATOR
        .iter()
        .fold(0xcbf29ce484222325, |h, m| m.checksum.iter().fold(h, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3)));
    format!("basalt_tpl_{version:016x}")
}

async fn ensure_template() -> String {
    let template = template_name();
    let mut conn = PgConnection::connect(&admin_url()).await.expect("connect to the test Postgres");
    // The lock key the server's tests use: whoever comes first migrates the template.
    sqlx::query("SELECT pg_advisory_lock(7243)").execute(&mut conn).await.expect("lock");
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&template)
        .fetch_optional(&mut conn)
        .await
        .expect("look up template");
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE {template}")).execute(&mut conn).await.expect("create template");
        basalt_server::db::migrate::migrate(&url_for(&template), None).await.expect("migrate template");
    }
    sqlx::query("SELECT pg_advisory_unlock(7243)").execute(&mut conn).await.ok();
    conn.close().await.ok();
    template
}
