//! Does a tenant's request get slower as the estate grows?
//!
//! For 10, 1,000 and 10,000 tenants of the same size (one administrator, five
//! VMs each), seeded in bulk on a fresh database, a real server answers
//! `GET /v1/vms` for one tenant (a user token: RLS on `vms`) and `GET /v1/tenants`
//! for provider staff (the first page of the registry). Figures are wall-clock
//! per request over loopback, sequential, after a warm-up; the target is that a
//! tenant's list stays flat within 1.2× from 10 to 10,000 tenants (the staff
//! list pages by id, so it should stay flat too).
//!
//! Run with `cargo bench -p basalt-server --bench scale` (the test Postgres of
//! `BASALT_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use basalt_server::app::{self, AppState};
use basalt_server::auth::Context;
use basalt_server::config::Config;
use basalt_server::testing::TestDb;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const SCALES: [usize; 3] = [10, 1_000, 10_000];
const VMS_PER_TENANT: usize = 5;
const WARMUP: usize = 50;
const ITERATIONS: usize = 400;

/// Bulk seed: `n` tenants, each with an administrator bound to `tenant-admin` and five VMs.
async fn seed(conn: &mut PgConnection, n: usize) -> Result<(Uuid, Uuid)> {
    let admin_role = basalt_server::authz::builtin_role_named("tenant-admin").context("role")?.id;
    sqlx::query(
        "INSERT INTO tenants (id, name)
         SELECT gen_random_uuid(), 'scale-' || i FROM generate_series(1, $1) AS i",
    )
    .bind(n as i32)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO users (id, tenant_id, username) SELECT gen_random_uuid(), id, 'admin' FROM tenants")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO role_bindings (id, tenant_id, user_id, role_id)
         SELECT gen_random_uuid(), tenant_id, id, $1 FROM users WHERE tenant_id IS NOT NULL",
    )
    .bind(admin_role)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO vms (id, tenant_id, name, cluster_id, template_id, vcpus, memory_mib, state, power_state)
         SELECT gen_random_uuid(), t.id, 'vm-' || v, gen_random_uuid(), gen_random_uuid(), 1, 128, 'running', 'running'
           FROM tenants t, generate_series(1, $1) AS v",
    )
    .bind(VMS_PER_TENANT as i32)
    .execute(&mut *conn)
    .await?;
    sqlx::query("ANALYZE").execute(&mut *conn).await?;
    // The tenant measured: one from the middle of the registry.
    let (tenant, user): (Uuid, Uuid) = sqlx::query_as(
        "SELECT t.id, u.id FROM tenants t JOIN users u ON u.tenant_id = t.id ORDER BY t.name OFFSET $1 LIMIT 1",
    )
    .bind((n / 2) as i64)
    .fetch_one(&mut *conn)
    .await?;
    Ok((tenant, user))
}

/// p50 and p99 of `ITERATIONS` sequential GETs of `url`.
async fn measure(http: &reqwest::Client, url: &str, token: &str) -> Result<(Duration, Duration)> {
    let get = || async {
        let resp = http.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
        resp.bytes().await?;
        Ok::<_, anyhow::Error>(())
    };
    for _ in 0..WARMUP {
        get().await?;
    }
    let mut times = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let start = Instant::now();
        get().await?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok((times[ITERATIONS / 2], times[ITERATIONS * 99 / 100]))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    for n in SCALES {
        let db = TestDb::new().await?;
        let dir = std::env::temp_dir().join(format!("basalt-scale-{}", Uuid::new_v4().simple()));
        let mut config = Config::with_database(db.url.clone(), dir.clone())?;
        config.listen = "127.0.0.1:0".parse()?;
        let listener = app::bind(config.listen).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        // Started first: it writes the built-in roles the seed binds.
        let state = AppState::start(config).await?;
        let mut conn = db.admin().await?;
        let started = Instant::now();
        let (tenant, user) = seed(&mut conn, n).await?;
        eprintln!("seeded {n} tenants in {:?}", started.elapsed());
        let (tenant_token, _) = state.keys.issue(user, "admin", Some(tenant), Context::Tenant(tenant))?;
        let staff = basalt_server::dev::ensure_admin(&state.db, &dir).await?;
        let serving = state.clone();
        let server = tokio::spawn(async move {
            let _ = app::serve(serving, listener, std::future::pending()).await;
        });
        let vms = measure(&http, &format!("{endpoint}/v1/vms"), &tenant_token).await?;
        let tenants = measure(&http, &format!("{endpoint}/v1/tenants?limit=50"), &staff).await?;
        rows.push((n, vms, tenants));
        server.abort();
        state.db.pool().close().await;
        conn.close().await?;
        db.drop_db().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    let base = rows[0].1 .0.as_secs_f64();
    let staff_base = rows[0].2 .0.as_secs_f64();
    println!("| tenants | tenant GET /v1/vms p50 | p99 | vs 10 | staff GET /v1/tenants p50 | p99 | vs 10 |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (n, (p50, p99), (s50, s99)) in &rows {
        println!(
            "| {n} | {:.2} ms | {:.2} ms | {:.2}× | {:.2} ms | {:.2} ms | {:.2}× |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            p50.as_secs_f64() / base,
            s50.as_secs_f64() * 1e3,
            s99.as_secs_f64() * 1e3,
            s50.as_secs_f64() / staff_base,
        );
    }
    Ok(())
}
