//! Test support shared by the server's own tests and the Terraform acceptance
//! tests: a fresh database per test, copied from a migrated template (named by the
//! migrations' checksum and made once, under an advisory lock, by whichever test
//! comes first), so every test starts from the real schema in milliseconds.
//!
//! The Postgres server comes from `BASALT_TEST_DATABASE_URL` (an administrative
//! URL; default `postgres://postgres@127.0.0.1:5432/postgres`). Not used by the
//! server itself.

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// Advisory lock key under which the template is made.
const TEMPLATE_LOCK: i64 = 7243;
/// Test databases older than this are swept (left behind by a failed test).
const STALE_AFTER_SECONDS: i64 = 7200;

#[derive(Debug, thiserror::Error)]
pub enum TestDbError {
    #[error("test database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrating the test template: {0}")]
    Migrate(#[from] crate::db::migrate::MigrateError),
}

/// The administrative URL of the test Postgres.
pub fn admin_url() -> String {
    std::env::var("BASALT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// [`admin_url`] with another database name.
pub fn url_for(db: &str) -> String {
    let base = admin_url();
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h.to_string(), format!("?{q}")),
        None => (base.clone(), String::new()),
    };
    let head = head.rsplit_once('/').map(|(h, _)| h.to_string()).unwrap_or(head);
    format!("{head}/{db}{query}")
}

/// A fresh database with the current schema; dropped by [`TestDb::drop_db`].
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> Result<TestDb, TestDbError> {
        let template = ensure_template().await?;
        let name = format!("basalt_t_{}_{}", chrono::Utc::now().timestamp(), Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url()).await?;
        sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template} OWNER basalt_owner"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(TestDb { url: url_for(&name), name })
    }

    /// A connection as the administrator (superuser: bypasses RLS; for seeding and checks).
    pub async fn admin(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect(&self.url).await
    }

    /// The URL of the app role on this database.
    pub fn app_url(&self) -> Result<String, sqlx::Error> {
        crate::db::derive_app_url(&self.url, None)
    }

    pub async fn drop_db(&self) {
        if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
            let _ =
                sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn).await;
        }
    }
}

fn template_name() -> String {
    let version: u64 = crate::db::migrate::MIGRATOR
        .iter()
        .fold(0xcbf29ce484222325, |h, m| m.checksum.iter().fold(h, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3)));
    format!("basalt_tpl_{version:016x}")
}

/// The migrated template for the current schema, made if missing; old templates
/// and stale test databases are swept on the way.
async fn ensure_template() -> Result<String, TestDbError> {
    let template = template_name();
    let mut conn = PgConnection::connect(&admin_url()).await?;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(TEMPLATE_LOCK).execute(&mut conn).await?;
    let result = make_template(&mut conn, &template).await;
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(TEMPLATE_LOCK).execute(&mut conn).await?;
    conn.close().await?;
    result.map(|()| template)
}

async fn make_template(conn: &mut PgConnection, template: &str) -> Result<(), TestDbError> {
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(template)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE {template}")).execute(&mut *conn).await?;
        crate::db::migrate::migrate(&url_for(template), None).await?;
        let old: Vec<(String,)> =
            sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'basalt\\_tpl\\_%' AND datname <> $1")
                .bind(template)
                .fetch_all(&mut *conn)
                .await?;
        for (db,) in old {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut *conn).await;
        }
    }
    let cutoff = chrono::Utc::now().timestamp() - STALE_AFTER_SECONDS;
    let tests: Vec<(String,)> = sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'basalt\\_t\\_%'")
        .fetch_all(&mut *conn)
        .await?;
    for (db,) in tests {
        let created = db.split('_').nth(2).and_then(|t| t.parse::<i64>().ok()).unwrap_or(i64::MAX);
        if created < cutoff {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut *conn).await;
        }
    }
    Ok(())
}
