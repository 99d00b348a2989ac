//! `basalt-server dev`: a complete Basalt on one machine with nothing to set up:
//! a private Postgres (unless `--database-url` is given), migrations, a provider
//! admin with an API token, and the API, until Ctrl-C.
//!
//! It writes `<state dir>/admin-token`, `<state dir>/admin-password` (both 0600)
//! and `<state dir>/env` (`BASALT_ENDPOINT`, `BASALT_TOKEN`, `BASALT_DATABASE_URL`).
//! Restarting with the same state dir keeps the data and the token.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::Rng;
use uuid::Uuid;

use crate::app::{self, AppState};
use crate::auth::api_token;
use crate::config::Config;
use crate::db::{Db, DbScope};
use crate::embedded_pg::EmbeddedPostgres;

pub const ADMIN_USERNAME: &str = "admin";
const DEV_TOKEN_NAME: &str = "dev-admin";

#[derive(Debug)]
pub struct DevOptions {
    pub state_dir: PathBuf,
    pub listen: std::net::SocketAddr,
    pub database_url: Option<String>,
}

/// Runs dev mode until Ctrl-C (or SIGTERM); stops the private Postgres on the way out.
pub async fn run(opts: DevOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.state_dir)?;
    let state_dir = opts.state_dir.canonicalize()?;
    let embedded = match &opts.database_url {
        Some(_) => None,
        None => {
            let dir = state_dir.clone();
            Some(tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir)).await??)
        }
    };
    let result = serve_dev(&opts, &state_dir, embedded.as_ref()).await;
    if let Some(pg) = embedded {
        tokio::task::spawn_blocking(move || pg.stop()).await??;
    }
    result
}

async fn serve_dev(opts: &DevOptions, state_dir: &Path, pg: Option<&EmbeddedPostgres>) -> anyhow::Result<()> {
    let admin_url = match (&opts.database_url, pg) {
        (Some(url), _) => url.clone(),
        (None, Some(pg)) => pg.admin_url(),
        (None, None) => anyhow::bail!("no database"),
    };
    let mut config = Config::with_database(admin_url.clone(), state_dir.to_path_buf())?;
    config.listen = opts.listen;
    // Dev mode runs on one machine: its webhooks may call a receiver on it.
    config.webhooks.allow_private_targets = true;
    let listener = app::bind(config.listen).await?;
    let state = AppState::start(config).await?;
    let token = ensure_admin(&state.db, state_dir).await?;
    ensure_default_cluster(&state).await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let env = format!("BASALT_ENDPOINT={endpoint}\nBASALT_TOKEN={token}\nBASALT_DATABASE_URL={admin_url}\n");
    write_private(&state_dir.join("env"), env.as_bytes())?;
    println!("Basalt is running (dev mode). State: {}", state_dir.display());
    print!("{env}");
    println!("Admin user `{ADMIN_USERNAME}`, password in {}", state_dir.join("admin-password").display());
    println!(
        "Try: curl -H \"Authorization: Bearer $BASALT_TOKEN\" {endpoint}/v1/me   (after: set -a; . {}/env)",
        state_dir.display()
    );
    println!("Ctrl-C stops it.");
    std::io::stdout().flush()?;
    app::serve(state, listener, shutdown_signal()).await?;
    Ok(())
}

/// The one host of dev mode's default cluster: libvirt's in-process test driver.
pub const DEV_HOST: &str = "test:///default";

/// Makes sure a cluster `default` with libvirt's test driver as its one host
/// exists (when the install has no cluster at all), in the local region.
pub async fn ensure_default_cluster(state: &AppState) -> anyhow::Result<()> {
    let cap = state.compute.schedulable(DEV_HOST).await?;
    let mut tx = state.db.begin(DbScope::System, None, true).await?;
    let (clusters,): (i64,) = sqlx::query_as("SELECT count(*) FROM clusters").fetch_one(&mut *tx).await?;
    if clusters == 0 {
        let cluster = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO clusters (id, region_id, name, alias)
             SELECT $1, id, 'default', 'default' FROM regions ORDER BY id LIMIT 1",
        )
        .bind(cluster)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO hosts (id, cluster_id, position, uri, vcpus, memory_mib) VALUES ($1, $2, 0, $3, $4, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(cluster)
        .bind(DEV_HOST)
        .bind(cap.cpus as i32)
        .bind(cap.memory_mib as i64)
        .execute(&mut *tx)
        .await?;
        println!("Created cluster `default` ({cluster}) on {DEV_HOST}");
    }
    tx.commit().await?;
    Ok(())
}

/// Makes sure the provider admin exists and has a working API token in
/// `<state dir>/admin-token`; returns the token.
pub async fn ensure_admin(db: &Db, state_dir: &Path) -> anyhow::Result<String> {
    let token_file = state_dir.join("admin-token");
    if let Ok(existing) = std::fs::read_to_string(&token_file) {
        let existing = existing.trim().to_string();
        if api_token::authenticate(db, &existing).await.is_ok() {
            return Ok(existing);
        }
    }
    let password_file = state_dir.join("admin-password");
    let mut tx = db.begin(DbScope::System, None, true).await?;
    let found: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM users WHERE tenant_id IS NULL AND username = $1")
        .bind(ADMIN_USERNAME)
        .fetch_optional(&mut *tx)
        .await?;
    let user_id = match found {
        Some((id,)) => id,
        None => {
            let password = random_password();
            let hash = crate::auth::password::hash(password.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let id = Uuid::now_v7();
            sqlx::query("INSERT INTO users (id, tenant_id, username, password_hash) VALUES ($1, NULL, $2, $3)")
                .bind(id)
                .bind(ADMIN_USERNAME)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
            let _ = std::fs::remove_file(&password_file);
            write_private(&password_file, password.as_bytes())?;
            id
        }
    };
    // The provider admin role, bound at system scope (idempotent).
    let admin_role = crate::authz::builtin_role_named("provider-admin").map(|r| r.id);
    sqlx::query(
        "INSERT INTO role_bindings (id, tenant_id, user_id, role_id, role_tenant_id, cluster_id)
         VALUES ($1, NULL, $2, $3, NULL, NULL) ON CONFLICT ON CONSTRAINT role_bindings_unique DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(admin_role)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND name = $2")
        .bind(user_id)
        .bind(DEV_TOKEN_NAME)
        .execute(&mut *tx)
        .await?;
    let id = Uuid::now_v7();
    let (secret, digest) = api_token::generate_secret();
    sqlx::query(
        "INSERT INTO api_tokens (id, tenant_id, user_id, context_tenant_id, name, secret_sha256)
         VALUES ($1, NULL, $2, NULL, $3, $4)",
    )
    .bind(id)
    .bind(user_id)
    .bind(DEV_TOKEN_NAME)
    .bind(digest)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let token = api_token::format_token(id, &secret);
    let _ = std::fs::remove_file(&token_file);
    write_private(&token_file, token.as_bytes())?;
    Ok(token)
}

fn random_password() -> String {
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..24).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect()
}

/// Writes a file only its owner can read (it holds secrets).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
