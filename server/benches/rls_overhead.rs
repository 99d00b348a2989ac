//! What does row-level security cost a request?
//!
//! Every Basalt request runs as `basalt_app` (NOBYPASSRLS) inside a transaction whose
//! first statements are `BEGIN` and `SELECT basalt_enter(...)`, which switches to the
//! context role `basalt_ctx_tenant`, whose forced policy filters every row by
//! `tenant_id = basalt_tenant()`. This benchmark puts a number on that
//! design by timing the read behind `GET /v1/users` four ways, on a fresh database
//! seeded with 1,000 tenants of 100 users each:
//!
//! * **RLS** — exactly what the API does: [`Db::begin`] in a tenant scope for one of
//!   its users (`BEGIN`, then the prepared `SELECT basalt_enter(..)`), the
//!   unfiltered `SELECT ... ORDER BY id LIMIT 50`, `COMMIT`.
//! * **explicit WHERE** — the baseline without RLS: a `BYPASSRLS` login role, a plain
//!   `BEGIN`, the same select with `WHERE tenant_id = $1`, `COMMIT`.
//! * **explicit WHERE + the same checks** — the baseline doing what `basalt_enter`
//!   does besides setting the context (is the user disabled? is the tenant deleted or
//!   suspended?), folded into `BEGIN` the same way: the fair comparison for RLS proper.
//! * **RLS, enter folded into BEGIN** — `BEGIN; SELECT FROM basalt_enter(..)` as one
//!   simple-protocol message (one round trip fewer, but parsed and planned every
//!   time), then the RLS select: whether folding pays with sqlx.
//!
//! The variants are interleaved, each round in a rotated order (a b c d, b c d a, ...),
//! over the same pseudo-random sequence of tenants, so machine noise and the cost of
//! going first hit all of them alike. Per-request latency is
//! wall-clock time from `BEGIN` to the end of `COMMIT`, seen from the client.
//!
//! Run with `cargo bench -p basalt-server --bench rls_overhead`. The admin URL comes from
//! `BASALT_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! and must be a superuser; the `basalt_app` and `basalt_bench_bypass` roles log in
//! without a password, so the server must trust local connections. The benchmark
//! creates a throw-away database `basalt_bench_<random>` and drops it at the end; the
//! cluster-wide roles stay.

use anyhow::{bail, Context, Result};
use basalt_server::db::{self, Db, DbScope};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use std::str::FromStr;
use std::time::{Duration, Instant};
use uuid::Uuid;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const BYPASS_ROLE: &str = "basalt_bench_bypass";
const TENANTS: usize = 1_000;
const USERS_PER_TENANT: usize = 100;
const SEED_BATCH: usize = 10_000;
const WARMUP: usize = 200;
const ITERATIONS: usize = 2_000;
const PAGE: usize = 50;
const PRNG_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

const SELECT_RLS: &str = "SELECT id, tenant_id, username, email, disabled, version, \
     created_at, updated_at FROM users ORDER BY id LIMIT 50";
const SELECT_EXPLICIT: &str = "SELECT id, tenant_id, username, email, disabled, version, \
     created_at, updated_at FROM users WHERE tenant_id = $1 ORDER BY id LIMIT 50";

/// One row of `GET /v1/users`, decoded the way the API decodes it.
type UserRow = (Uuid, Option<Uuid>, String, Option<String>, bool, i64, DateTime<Utc>, DateTime<Utc>);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let admin_url = std::env::var("BASALT_BENCH_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
    let db_name = format!("basalt_bench_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let mut admin = PgConnection::connect(&admin_url).await.context("connecting with BASALT_BENCH_DATABASE_URL")?;
    sqlx::query(&format!("CREATE DATABASE \"{db_name}\"")).execute(&mut admin).await?;
    eprintln!("created database {db_name}");

    let outcome = run(&with_database(&admin_url, &db_name)?).await;

    let dropped = sqlx::query(&format!("DROP DATABASE \"{db_name}\" WITH (FORCE)")).execute(&mut admin).await;
    admin.close().await?;
    outcome?;
    dropped.context("dropping the benchmark database")?;
    eprintln!("dropped database {db_name}");
    Ok(())
}

/// Everything that needs the throw-away database; the caller drops it afterwards.
async fn run(db_admin_url: &str) -> Result<()> {
    db::migrate::migrate(db_admin_url, None).await.context("migrating the benchmark database")?;
    let mut admin = PgConnection::connect(db_admin_url).await?;
    ensure_bypass_role(&mut admin).await?;
    let server_version: (String,) = sqlx::query_as("SHOW server_version").fetch_one(&mut admin).await?;

    let started = Instant::now();
    let tenants = seed(&mut admin).await?;
    eprintln!(
        "seeded {} tenants x {USERS_PER_TENANT} users in {:.1} s",
        tenants.len(),
        started.elapsed().as_secs_f64()
    );
    admin.close().await?;

    let app = Db::connect(&db::derive_app_url(db_admin_url, None)?, 4).await?;
    let bypass_opts = PgConnectOptions::from_str(db_admin_url)?.username(BYPASS_ROLE);
    let bypass = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(bypass_opts)
        .await
        .context("logging in as the BYPASSRLS role")?;

    print_plans(&app, &bypass, tenants[0].0).await?;
    let results = measure(&app, &bypass, &tenants).await?;
    print_results(&results, &server_version.0);
    app.pool().close().await;
    bypass.close().await;
    Ok(())
}

/// The admin URL with its database swapped: `scheme://authority/<db>?query`.
fn with_database(url: &str, db_name: &str) -> Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let Some((scheme, after)) = base.split_once("://") else {
        bail!("database URL must look like postgres://user@host/db");
    };
    let authority = after.split_once('/').map_or(after, |(a, _)| a);
    let mut out = format!("{scheme}://{authority}/{db_name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// A login role that skips RLS, standing in for "no RLS at all"; it can only read users.
async fn ensure_bypass_role(admin: &mut PgConnection) -> Result<()> {
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(BYPASS_ROLE)
        .fetch_optional(&mut *admin)
        .await?;
    let verb = if exists.is_some() { "ALTER" } else { "CREATE" };
    for stmt in [
        format!("{verb} ROLE {BYPASS_ROLE} LOGIN NOSUPERUSER BYPASSRLS"),
        format!("GRANT USAGE ON SCHEMA public TO {BYPASS_ROLE}"),
        format!("GRANT SELECT ON users, tenants TO {BYPASS_ROLE}"),
    ] {
        sqlx::query(&stmt).execute(&mut *admin).await?;
    }
    Ok(())
}

/// Inserts the tenants and their users as the superuser (which RLS does not apply to)
/// and returns the tenant ids. User ids are UUIDv7, sorted, and handed out round-robin
/// over the tenants, as if all tenants had grown side by side: a tenant's users are
/// spread over the whole primary key, not clustered at one end of it.
async fn seed(admin: &mut PgConnection) -> Result<Vec<(Uuid, Uuid)>> {
    let tenants = sorted_v7(TENANTS);
    let names: Vec<String> = (0..TENANTS).map(|i| format!("bench-tenant-{i:04}")).collect();
    sqlx::query("INSERT INTO tenants (id, name) SELECT * FROM UNNEST($1::uuid[], $2::text[])")
        .bind(&tenants)
        .bind(&names)
        .execute(&mut *admin)
        .await?;

    let ids = sorted_v7(TENANTS * USERS_PER_TENANT);
    for (batch_no, batch) in ids.chunks(SEED_BATCH).enumerate() {
        let first = batch_no * SEED_BATCH;
        let (mut tenant_ids, mut usernames, mut emails) = (vec![], vec![], vec![]);
        for n in first..first + batch.len() {
            let (user, tenant) = (n / TENANTS, n % TENANTS);
            tenant_ids.push(tenants[tenant]);
            usernames.push(format!("user-{user:03}"));
            emails.push(format!("user-{user:03}@tenant-{tenant:04}.example"));
        }
        sqlx::query(
            "INSERT INTO users (id, tenant_id, username, email) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[])",
        )
        .bind(batch)
        .bind(&tenant_ids)
        .bind(&usernames)
        .bind(&emails)
        .execute(&mut *admin)
        .await?;
    }
    sqlx::query("ANALYZE tenants, users").execute(&mut *admin).await?;
    // Each tenant's first user (user 0 of tenant t is id number t) acts in its requests.
    Ok(tenants.iter().copied().zip(ids.iter().copied()).collect())
}

fn sorted_v7(n: usize) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    ids.sort_unstable();
    ids
}

/// Prints the plans both variants get, so a reader can check which index is used.
async fn print_plans(app: &Db, bypass: &PgPool, tenant: Uuid) -> Result<()> {
    let mut tx = app.begin(DbScope::Tenant(tenant), None, false).await?;
    let rls: Vec<(String,)> = sqlx::query_as(&format!("EXPLAIN {SELECT_RLS}")).fetch_all(&mut *tx).await?;
    tx.rollback().await?;
    let explicit_sql = SELECT_EXPLICIT.replace("$1", &format!("'{tenant}'::uuid"));
    let explicit: Vec<(String,)> = sqlx::query_as(&format!("EXPLAIN {explicit_sql}")).fetch_all(bypass).await?;
    for (title, plan) in [("RLS (basalt_app, tenant context)", rls), ("explicit WHERE (basalt_bench_bypass)", explicit)]
    {
        println!("\nEXPLAIN, {title}:");
        for (line,) in plan {
            println!("    {line}");
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Rls,
    Explicit,
    ExplicitWithChecks,
    RlsFolded,
}

impl Variant {
    const ALL: [Variant; 4] = [Variant::Rls, Variant::Explicit, Variant::ExplicitWithChecks, Variant::RlsFolded];

    fn label(self) -> &'static str {
        match self {
            Variant::Rls => "RLS (BEGIN, then prepared basalt_enter)",
            Variant::Explicit => "explicit WHERE (BYPASSRLS role)",
            Variant::ExplicitWithChecks => "explicit WHERE + the same checks",
            Variant::RlsFolded => "RLS, enter folded into BEGIN (simple)",
        }
    }
}

struct Measured {
    variant: Variant,
    stats: Stats,
}

/// Warms up, then runs the variants interleaved over the same tenant sequence.
async fn measure(app: &Db, bypass: &PgPool, tenants: &[(Uuid, Uuid)]) -> Result<Vec<Measured>> {
    let mut rng = XorShift64(PRNG_SEED);
    let mut samples: [Vec<Duration>; 4] = std::array::from_fn(|_| Vec::with_capacity(ITERATIONS));
    for i in 0..WARMUP + ITERATIONS {
        let (tenant, actor) = tenants[rng.below(tenants.len())];
        // Rotate which variant goes first: the first request of a round is
        // measurably slower here, and that must not favour any one variant.
        let n = Variant::ALL.len();
        for slot in (0..n).map(|k| (k + i) % n) {
            let elapsed = request(Variant::ALL[slot], app, bypass, tenant, actor).await?;
            if i >= WARMUP {
                samples[slot].push(elapsed);
            }
        }
    }
    Ok(Variant::ALL.into_iter().zip(samples).map(|(variant, s)| Measured { variant, stats: Stats::of(s) }).collect())
}

/// Times one request of `variant` and checks it returned one page of `tenant`'s users.
async fn request(variant: Variant, app: &Db, bypass: &PgPool, tenant: Uuid, actor: Uuid) -> Result<Duration> {
    let started = Instant::now();
    let rows: Vec<UserRow> = match variant {
        Variant::Rls => {
            let mut tx = app.begin(DbScope::Tenant(tenant), Some(actor), false).await?;
            let rows = sqlx::query_as(SELECT_RLS).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        }
        Variant::Explicit => {
            let mut tx = bypass.begin().await?;
            let rows = sqlx::query_as(SELECT_EXPLICIT).bind(tenant).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        }
        Variant::ExplicitWithChecks => {
            // What an application without RLS must also do to refuse a disabled user
            // or a deleted tenant: look both up, folded into BEGIN like basalt_enter.
            let mut conn = bypass.acquire().await?;
            let checks = format!(
                "BEGIN; SELECT u.disabled, t.state FROM users u, tenants t WHERE u.id = '{actor}' AND t.id = '{tenant}'"
            );
            sqlx::Executor::execute(&mut *conn, checks.as_str()).await?;
            let rows = sqlx::query_as(SELECT_EXPLICIT).bind(tenant).fetch_all(&mut *conn).await?;
            sqlx::Executor::execute(&mut *conn, "COMMIT").await?;
            rows
        }
        Variant::RlsFolded => {
            let mut conn = app.pool().acquire().await?;
            let enter = format!("BEGIN; SELECT FROM basalt_enter('tenant', '{tenant}', '{actor}', false)");
            sqlx::Executor::execute(&mut *conn, enter.as_str()).await?;
            let rows = sqlx::query_as(SELECT_RLS).fetch_all(&mut *conn).await?;
            sqlx::Executor::execute(&mut *conn, "COMMIT").await?;
            rows
        }
    };
    let elapsed = started.elapsed();
    if rows.len() != PAGE || rows.iter().any(|r| r.1 != Some(tenant)) {
        bail!("{}: expected {PAGE} rows of tenant {tenant}, got {} rows", variant.label(), rows.len());
    }
    Ok(elapsed)
}

/// Latency summary in microseconds.
struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort_unstable();
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        // Nearest-rank percentile; `samples` is never empty (ITERATIONS > 0).
        let rank = |p: f64| {
            let idx = (p * samples.len() as f64).ceil() as usize;
            micros(samples[idx.clamp(1, samples.len()) - 1])
        };
        let total: Duration = samples.iter().sum();
        Stats { p50: rank(0.50), p99: rank(0.99), mean: micros(total) / samples.len() as f64 }
    }
}

fn print_results(results: &[Measured], server_version: &str) {
    let by = |v: Variant| results.iter().find(|m| m.variant == v).map(|m| &m.stats);
    let (Some(rls), Some(explicit)) = (by(Variant::Rls), by(Variant::Explicit)) else {
        return;
    };
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = Utc::now().format("%Y-%m-%d");

    println!(
        "\n{ITERATIONS} requests per variant after {WARMUP} warm-up rounds, interleaved; \
         {TENANTS} tenants x {USERS_PER_TENANT} users; page of {PAGE}.\n"
    );
    println!("{:<36} {:>10} {:>10} {:>10}", "variant", "p50 µs", "p99 µs", "mean µs");
    for m in results {
        let s = &m.stats;
        println!("{:<36} {:>10.0} {:>10.0} {:>10.0}", m.variant.label(), s.p50, s.p99, s.mean);
    }
    println!("ratio RLS / explicit WHERE: p50 {:.2}, p99 {:.2}", rls.p50 / explicit.p50, rls.p99 / explicit.p99);
    if let Some(checked) = by(Variant::ExplicitWithChecks) {
        println!(
            "ratio RLS / explicit WHERE + the same checks: p50 {:.2}, p99 {:.2}",
            rls.p50 / checked.p50,
            rls.p99 / checked.p99
        );
    }

    println!("\nMarkdown for docs/performance.md:\n");
    println!("`cargo bench -p basalt-server --bench rls_overhead` — {date}, nproc {nproc}, PostgreSQL {server_version}, {TENANTS} tenants x {USERS_PER_TENANT} users, {ITERATIONS} requests per variant, `GET /v1/users` read (page of {PAGE}).\n");
    println!("| variant | p50 (µs) | p99 (µs) | mean (µs) | p50 vs explicit | p99 vs explicit |");
    println!("|---|---:|---:|---:|---:|---:|");
    for m in results {
        let s = &m.stats;
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.2}× | {:.2}× |",
            m.variant.label(),
            s.p50,
            s.p99,
            s.mean,
            s.p50 / explicit.p50,
            s.p99 / explicit.p99
        );
    }
}

/// xorshift64: a tiny deterministic PRNG, so every run visits the same tenants.
struct XorShift64(u64);

impl XorShift64 {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (the modulo bias is irrelevant for n = 1,000).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
