//! The behaviour sweep at the SQL level, connected as the application role exactly
//! as the server is: tenants A and B (and system rows) are seeded into every table;
//! then with no context nothing is visible, with A's context nothing of B (or of the
//! system) is visible or writable, and a pooled connection never carries a context
//! from one transaction into the next.
//!
//! Every table of the schema must have a seeder below: a new table fails
//! `every_table_has_a_seeder` until it joins the sweep.

mod common;

use basalt_server::db::{Db, DbScope};
use common::procs::Pgbouncer;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgConnection, PgPool, Postgres};
use uuid::Uuid;

/// How the app role reaches Postgres: directly, or through PgBouncer in
/// transaction pooling mode, as replicas behind it do (docs/scaling.md). Every
/// sweep below runs both ways: a context must never outlive its transaction on a
/// pooled server connection either.
#[derive(Clone, Copy)]
enum Via {
    Direct,
    Pgbouncer,
}

/// An app URL, and the PgBouncer behind it while it is in use.
struct AppUrl {
    url: String,
    _bouncer: Option<Pgbouncer>,
}

impl Via {
    fn app_url(self, db: &common::TestDb) -> AppUrl {
        match self {
            Via::Direct => AppUrl { url: db.app_url(), _bouncer: None },
            Via::Pgbouncer => {
                let bouncer = Pgbouncer::start();
                AppUrl { url: bouncer.app_url(&db.name), _bouncer: Some(bouncer) }
            }
        }
    }
}

/// Each sweep as two tests: `direct::<name>` and `through_pgbouncer::<name>`.
macro_rules! both_ways {
    ($($name:ident),+ $(,)?) => {
        mod direct {
            $(#[tokio::test] async fn $name() { super::$name(super::Via::Direct).await })+
        }
        mod through_pgbouncer {
            $(#[tokio::test] async fn $name() { super::$name(super::Via::Pgbouncer).await })+
        }
    };
}

both_ways!(
    the_app_role_sees_only_its_context,
    the_app_role_cannot_write_another_tenants_rows,
    a_pooled_connection_forgets_the_context_at_commit,
    the_auth_scope_reads_credentials_and_writes_nothing,
    a_suspended_or_deleted_tenant_is_refused_when_entering,
);

/// Not business data (see schema_catalog.rs).
const NOT_TENANT_DATA: &[&str] = &["_sqlx_migrations"];

/// One row per table for a tenant (or the system, `$1` NULL). `$1` tenant, `$2` new
/// id, `$3` a user of that tenant. Ordered so references exist.
const SEEDERS: &[(&str, &str)] = &[
    ("tenants", "INSERT INTO tenants (id, name) VALUES ($2, 't-' || replace($2::text, '-', ''))"),
    ("users", "INSERT INTO users (id, tenant_id, username) VALUES ($2, $1, 'u-' || $2::text)"),
    (
        "api_tokens",
        "INSERT INTO api_tokens (id, tenant_id, user_id, context_tenant_id, name, secret_sha256)
         VALUES ($2, $1, $3, $1, 'k-' || $2::text, '\\x00')",
    ),
    (
        "audit_events",
        "INSERT INTO audit_events (id, tenant_id, actor_id, actor_name, action, target_type, outcome)
         VALUES ($2, $1, $3, 'seed', 'seed.create', 'seed', 'success')",
    ),
    ("roles", "INSERT INTO roles (id, tenant_id, name, permissions) VALUES ($2, $1, 'r-' || $2::text, '{user:read}')"),
    (
        "role_bindings",
        "INSERT INTO role_bindings (id, tenant_id, user_id, role_id, role_tenant_id)
         SELECT $2, $1, $3, r.id, r.tenant_id FROM roles r
          WHERE r.tenant_id IS NOT DISTINCT FROM $1 ORDER BY r.id LIMIT 1",
    ),
    // Groups are tenant rows only (none for the system).
    ("groups", "INSERT INTO groups (id, tenant_id, name) SELECT $2, $1, 'g-' || $2::text WHERE $1::uuid IS NOT NULL"),
    (
        "group_members",
        "INSERT INTO group_members (tenant_id, group_id, user_id)
         SELECT $1, g.id, $3 FROM groups g WHERE g.tenant_id = $1 ORDER BY g.id LIMIT 1",
    ),
    (
        "invitations",
        "INSERT INTO invitations (id, tenant_id, email, secret_sha256, created_by, expires_at)
         VALUES ($2, $1, 'i@example.com', '\\x00', $3, now() + interval '1 day')",
    ),
    // Tenant policies are tenant rows only (none for the system).
    ("tenant_policies", "INSERT INTO tenant_policies (tenant_id) SELECT $1 WHERE $1::uuid IS NOT NULL"),
    ("login_failures", "INSERT INTO login_failures (id, tenant_id, username) VALUES ($2, $1, 'u-' || $3::text)"),
    (
        "idempotency_keys",
        "INSERT INTO idempotency_keys (id, tenant_id, actor_id, key, request_sha256, response_status, response_body)
         VALUES ($2, $1, $3, 'k-' || $2::text, '\\x00', 201, '{}')",
    ),
    // The estate: system rows whatever the tenant ($1 is ignored).
    ("regions", "INSERT INTO regions (id, name, endpoint) SELECT $2, 'r-' || $2::text, 'http://r' WHERE $1::uuid IS NULL OR true"),
    (
        "clusters",
        "INSERT INTO clusters (id, region_id, name, alias)
         SELECT $2, r.id, 'c-' || $2::text, 'a-' || $2::text FROM regions r WHERE $1::uuid IS NULL OR true
          ORDER BY r.id LIMIT 1",
    ),
    (
        "hosts",
        "INSERT INTO hosts (id, cluster_id, position, uri, vcpus, memory_mib)
         SELECT $2, c.id, 0, 'test:///' || $2::text, 4, 1024 FROM clusters c WHERE $1::uuid IS NULL OR true
          ORDER BY c.id LIMIT 1",
    ),
    // An entitlement of the tenant to the first region (both tenants share it).
    (
        "tenant_regions",
        "INSERT INTO tenant_regions (tenant_id, region_id)
         SELECT $1, r.id FROM regions r WHERE $1::uuid IS NOT NULL ORDER BY r.id LIMIT 1",
    ),
    // Federation bookkeeping: system rows only. The state makes this database a
    // region's, confirmed, where both tenants are entitled.
    (
        "federation_state",
        "INSERT INTO federation_state (region_id, region_name, global_url, confirmed_until)
         SELECT r.id, r.name, 'http://g', now() + interval '1 hour' FROM regions r WHERE $1::uuid IS NULL
          ORDER BY r.id LIMIT 1",
    ),
    ("federation_nonces", "INSERT INTO federation_nonces (key_id, nonce) SELECT 'k1', $2::text WHERE $1::uuid IS NULL"),
    // Live server processes: system rows only.
    ("server_instances", "INSERT INTO server_instances (id) SELECT $2 WHERE $1::uuid IS NULL"),
    (
        "region_objects",
        "INSERT INTO region_objects (id, region_id, kind)
         SELECT $2, r.id, 'vm' FROM regions r WHERE $1::uuid IS NULL ORDER BY r.id LIMIT 1",
    ),
    (
        "placements",
        "INSERT INTO placements (id, host_id, vm_id, vcpus, memory_mib)
         SELECT $2, h.id, $2, 1, 64 FROM hosts h WHERE $1::uuid IS NULL OR true ORDER BY h.id LIMIT 1",
    ),
    // A tenant's quota on the newest cluster (none for the system).
    (
        "quotas",
        "INSERT INTO quotas (id, tenant_id, cluster_id, vcpus, memory_mib, max_vms)
         SELECT $2, $1, c.id, 4, 1024, 2 FROM clusters c WHERE $1::uuid IS NOT NULL ORDER BY c.id DESC LIMIT 1",
    ),
    (
        "templates",
        "INSERT INTO templates (id, tenant_id, name, vcpus, memory_mib, disk_gib) VALUES ($2, $1, 't-' || $2::text, 1, 64, 1)",
    ),
    // Placement groups are tenant rows only (none for the system).
    (
        "placement_groups",
        "INSERT INTO placement_groups (id, tenant_id, cluster_id, name)
         SELECT $2, $1, $2, 'pg-' || $2::text WHERE $1::uuid IS NOT NULL",
    ),
    (
        "vms",
        "INSERT INTO vms (id, tenant_id, name, cluster_id, template_id, vcpus, memory_mib, state, power_state)
         SELECT $2, $1, 'v-' || replace($2::text, '-', ''), $2, $2, 1, 64, 'stopped', 'stopped' WHERE $1::uuid IS NOT NULL",
    ),
    (
        "vm_snapshots",
        "INSERT INTO vm_snapshots (id, tenant_id, vm_id, name)
         SELECT $2, $1, v.id, 's-' || $2::text FROM vms v WHERE v.tenant_id = $1 ORDER BY v.id LIMIT 1",
    ),
    // Networks, interfaces and volumes are tenant rows only (none for the system).
    (
        "networks",
        "INSERT INTO networks (id, tenant_id, cluster_id, name, cidr)
         SELECT $2, $1, $2, 'n-' || $2::text, '10.0.0.0/24' WHERE $1::uuid IS NOT NULL",
    ),
    (
        "vm_interfaces",
        "INSERT INTO vm_interfaces (id, tenant_id, vm_id, network_id, ip, mac)
         SELECT $2, $1, v.id, n.id, '10.0.0.2', '52:54:00:00:00:01' FROM vms v JOIN networks n ON n.tenant_id = v.tenant_id
          WHERE v.tenant_id = $1 ORDER BY v.id, n.id LIMIT 1",
    ),
    (
        "volumes",
        "INSERT INTO volumes (id, tenant_id, cluster_id, name, size_gib, path, vm_id, device)
         SELECT $2, $1, v.cluster_id, 'd-' || $2::text, 1, '/seed/' || $2::text, v.id, 'vdb' FROM vms v
          WHERE v.tenant_id = $1 ORDER BY v.id LIMIT 1",
    ),
    // Security groups (perm-f): tenant rows only; a rule, and the group's
    // membership of the tenant's first VM.
    (
        "security_groups",
        "INSERT INTO security_groups (id, tenant_id, cluster_id, name)
         SELECT $2, $1, $2, 'sg-' || $2::text WHERE $1::uuid IS NOT NULL",
    ),
    (
        "security_group_rules",
        "INSERT INTO security_group_rules (id, tenant_id, security_group_id, direction, protocol, port_from, port_to, remote_cidr)
         SELECT $2, $1, g.id, 'ingress', 'tcp', 22, 22, '0.0.0.0/0' FROM security_groups g WHERE g.tenant_id = $1
          ORDER BY g.id LIMIT 1",
    ),
    (
        "vm_security_groups",
        "INSERT INTO vm_security_groups (id, tenant_id, vm_id, security_group_id)
         SELECT $2, $1, v.id, g.id FROM vms v JOIN security_groups g ON g.tenant_id = v.tenant_id
          WHERE v.tenant_id = $1 ORDER BY v.id, g.id LIMIT 1",
    ),
    (
        "console_tickets",
        "INSERT INTO console_tickets (id, tenant_id, vm_id, user_id, secret_sha256, expires_at)
         SELECT $2, $1, v.id, $3, '\\x00', now() + interval '1 minute' FROM vms v WHERE v.tenant_id = $1
          ORDER BY v.id LIMIT 1",
    ),
    (
        "operations",
        "INSERT INTO operations (id, tenant_id, kind, target_type, target_id) VALUES ($2, $1, 'seed', 'vm', $2)",
    ),
    // A tenant's request for capacity on the newest cluster (none for the system).
    (
        "quota_requests",
        "INSERT INTO quota_requests (id, tenant_id, cluster_id, vcpus, memory_mib, max_vms, requested_by)
         SELECT $2, $1, c.id, 8, 2048, 4, $3 FROM clusters c WHERE $1::uuid IS NOT NULL ORDER BY c.id DESC LIMIT 1",
    ),
    // Provider notices: system rows whatever the tenant ($1 is ignored).
    (
        "notices",
        "INSERT INTO notices (id, title, severity, starts_at) SELECT $2, 'n-' || $2::text, 'info', now()
          WHERE $1::uuid IS NULL OR true",
    ),    // Snapshot schedules and maintenance windows (perm-e): a tenant's schedule of
    // its first VM, and a system row about the newest cluster whatever the tenant.
    (
        "snapshot_schedules",
        "INSERT INTO snapshot_schedules (id, tenant_id, vm_id, name, interval_minutes, keep, next_run_at)
         SELECT $2, $1, v.id, 'ss-' || $2::text, 60, 1, now() FROM vms v WHERE v.tenant_id = $1 ORDER BY v.id LIMIT 1",
    ),
    (
        "maintenance_windows",
        "INSERT INTO maintenance_windows (id, cluster_id, title, starts_at, ends_at)
         SELECT $2, c.id, 'm-' || $2::text, now(), now() + interval '1 hour' FROM clusters c ORDER BY c.id DESC LIMIT 1",
    ),
    // Public IP pools and floating IPs (perm-g): a pool is a system row on the
    // newest cluster whatever the tenant ($1 is ignored); a floating IP is a
    // tenant row (none for the system) from the newest pool, on a VM.
    (
        "ip_pools",
        "INSERT INTO ip_pools (id, cluster_id, name, cidr, gateway)
         SELECT $2, c.id, 'p-' || $2::text, '203.0.113.0/28', '203.0.113.1' FROM clusters c
          WHERE $1::uuid IS NULL OR true ORDER BY c.id DESC LIMIT 1",
    ),
    (
        "floating_ips",
        "INSERT INTO floating_ips (id, tenant_id, cluster_id, ip_pool_id, address, vm_id)
         SELECT $2, $1, p.cluster_id, p.id, '203.0.113.2', v.id FROM ip_pools p, vms v
          WHERE v.tenant_id = $1 ORDER BY p.id DESC, v.id LIMIT 1",
    ),
    // webhooks (perm-h): tenant rows only, a delivery of the tenant's own webhook.
    (
        "webhooks",
        "INSERT INTO webhooks (id, tenant_id, url, events, secret_sealed, cursor_event_id)
         SELECT $2, $1, 'http://example.com/', '{*}', '\\x01', $2 WHERE $1::uuid IS NOT NULL",
    ),
    (
        "job_tenants",
        "INSERT INTO job_tenants (tenant_id, job) SELECT $1, 'webhooks' WHERE $1::uuid IS NOT NULL ON CONFLICT DO NOTHING",
    ),
    (
        "webhook_deliveries",
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_type, payload)
         SELECT $2, $1, w.id, 'ping', '{}' FROM webhooks w WHERE w.tenant_id = $1 ORDER BY w.id LIMIT 1",
    ),
];

/// Tables of the provider's estate: every row is the system's (tenant_id pinned
/// NULL by a CHECK), so a tenant owns none.
const SYSTEM_ONLY: &[&str] = &[
    "regions",
    "clusters",
    "hosts",
    "placements",
    "federation_state",
    "federation_nonces",
    "region_objects",
    "server_instances",
    "notices",
    // Public IP pools (perm-g).
    "ip_pools",
    // Maintenance windows (perm-e).
    "maintenance_windows",
];

/// System rows a tenant context may read: how many (as the administrator sees
/// it, `$1` the tenant), and why.
const SHARED_SYSTEM_ROWS: &[(&str, &str, &str)] = &[
    (
        "regions",
        "SELECT count(*) FROM regions WHERE id IN (SELECT region_id FROM tenant_regions WHERE tenant_id = $1)",
        "the names of the regions the tenant is entitled to",
    ),
    (
        "clusters",
        "SELECT count(*) FROM clusters WHERE id IN (SELECT cluster_id FROM quotas WHERE tenant_id = $1)",
        "the clusters the tenant holds a quota on",
    ),
    (
        "templates",
        "SELECT count(*) FROM templates WHERE tenant_id IS NULL AND published AND $1::uuid IS NOT NULL",
        "public templates (the published ones)",
    ),
    (
        "notices",
        "SELECT count(*) FROM notices WHERE tenant_id IS NULL AND $1::uuid IS NOT NULL",
        "the provider's notices: every tenant reads every one",
    ),
    // Public IP pools (perm-g).
    (
        "ip_pools",
        "SELECT count(*) FROM ip_pools WHERE cluster_id IN (SELECT cluster_id FROM quotas WHERE tenant_id = $1)",
        "the pools of the clusters the tenant holds a quota on (allocating needs their range; the API shows none)",
    ),
    // Maintenance windows (perm-e).
    (
        "maintenance_windows",
        "SELECT count(*) FROM maintenance_windows WHERE cluster_id IN (SELECT cluster_id FROM quotas WHERE tenant_id = $1)",
        "the maintenance windows of the clusters the tenant holds a quota on",
    ),
];

/// Tenant rows the system context reads, and why.
const SYSTEM_READS_TENANT_ROWS: &[(&str, &str)] = &[
    ("tenants", "the tenant registry"),
    ("quotas", "provider staff assign capacity to tenants"),
    ("tenant_regions", "provider staff entitle tenants to regions; the controller pushes them"),
    ("quota_requests", "provider staff decide tenants' requests for capacity"),
    ("job_tenants", "the webhook and schedule jobs find the tenants they must visit (their ids, nothing else)"),
];

struct Seeded {
    a: Uuid,
    b: Uuid,
    a_user: Uuid,
}

/// Seeds A, B and system rows as the administrator (who bypasses RLS).
async fn seed(conn: &mut PgConnection) -> Seeded {
    let mut tenants = Vec::new();
    for _ in 0..2 {
        let tenant = Uuid::now_v7();
        let user = Uuid::now_v7();
        run_seeder(&mut *conn, "tenants", None, tenant, user).await.expect("seed tenant");
        run_seeder(&mut *conn, "users", Some(tenant), user, user).await.expect("seed user");
        for (table, _) in &SEEDERS[2..] {
            run_seeder(&mut *conn, table, Some(tenant), Uuid::now_v7(), user).await.expect("seed");
        }
        tenants.push((tenant, user));
    }
    // System rows: provider staff, their token, a system audit event and key.
    let staff = Uuid::now_v7();
    run_seeder(&mut *conn, "users", None, staff, staff).await.expect("seed staff");
    for (table, _) in &SEEDERS[2..] {
        run_seeder(&mut *conn, table, None, Uuid::now_v7(), staff).await.expect("seed system");
    }
    Seeded { a: tenants[0].0, b: tenants[1].0, a_user: tenants[0].1 }
}

async fn run_seeder<'c, E: Executor<'c, Database = Postgres>>(
    exec: E,
    table: &str,
    tenant: Option<Uuid>,
    id: Uuid,
    user: Uuid,
) -> Result<u64, sqlx::Error> {
    let sql = SEEDERS.iter().find(|(t, _)| *t == table).map(|(_, s)| *s).expect("seeder");
    sqlx::query(sql).bind(tenant).bind(id).bind(user).execute(exec).await.map(|r| r.rows_affected())
}

async fn tables(conn: &mut PgConnection) -> Vec<String> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .fetch_all(conn)
            .await
            .expect("tables");
    rows.into_iter().map(|(t,)| t).filter(|t| !NOT_TENANT_DATA.contains(&t.as_str())).collect()
}

async fn count<'c, E: Executor<'c, Database = Postgres>>(exec: E, sql: &str, tenant: Option<Uuid>) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).bind(tenant).fetch_one(exec).await.expect(sql);
    n
}

/// A refused write: an error, or no row touched.
fn refused(result: Result<u64, sqlx::Error>) -> bool {
    matches!(result, Ok(0) | Err(_))
}

#[tokio::test]
async fn every_table_has_a_seeder() {
    let db = common::TestDb::new().await;
    let mut admin = db.admin().await;
    let all = tables(&mut admin).await;
    db.drop_db().await;
    let missing: Vec<&String> = all.iter().filter(|t| !SEEDERS.iter().any(|(s, _)| s == t)).collect();
    assert!(missing.is_empty(), "tables without a seeder in the isolation sweep: {missing:?}");
}

async fn the_app_role_sees_only_its_context(via: Via) {
    let db = common::TestDb::new().await;
    let app_url = via.app_url(&db);
    let mut admin = db.admin().await;
    let s = seed(&mut admin).await;
    let all = tables(&mut admin).await;
    let app = Db::connect(&app_url.url, 2).await.expect("app pool");

    for table in &all {
        // No context at all: no rows, inside or outside a transaction (in fact
        // no privilege: the login role can only enter a context).
        let sql = format!("SELECT count(*) FROM {table}");
        let outside = sqlx::query_as::<_, (i64,)>(&sql).fetch_one(app.pool()).await;
        assert!(matches!(outside, Ok((0,)) | Err(_)), "{table}: rows visible with no context");
        let mut tx = app.pool().begin().await.unwrap();
        let inside = sqlx::query_as::<_, (i64,)>(&sql).fetch_one(&mut *tx).await;
        assert!(matches!(inside, Ok((0,)) | Err(_)), "{table}: rows visible in a transaction with no context");
        tx.rollback().await.unwrap();

        // A tenant context with no privilege on the table at all (hosts,
        // placements) cannot even ask: that is the strongest answer.
        let (readable,): (bool,) = sqlx::query_as("SELECT has_table_privilege('basalt_ctx_tenant', $1, 'SELECT')")
            .bind(table)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        if !readable {
            assert!(SYSTEM_ONLY.contains(&table.as_str()), "{table}: tenant contexts cannot read their own rows");
            continue;
        }

        // A's context: A's rows, nothing of B, nothing of the system.
        let mut tx = app.begin(DbScope::Tenant(s.a), None, false).await.unwrap();
        let own = count(&mut *tx, &format!("SELECT count(*) FROM {table} WHERE tenant_id = $1"), Some(s.a)).await;
        let other = count(&mut *tx, &format!("SELECT count(*) FROM {table} WHERE tenant_id = $1"), Some(s.b)).await;
        let system = count(
            &mut *tx,
            &format!("SELECT count(*) FROM {table} WHERE tenant_id IS NULL AND $1::uuid IS NULL"),
            None,
        )
        .await;
        let total = count(&mut *tx, &format!("SELECT count(*) FROM {table} WHERE $1::uuid IS NULL"), None).await;
        tx.rollback().await.unwrap();
        let shared = match SHARED_SYSTEM_ROWS.iter().find(|(t, _, _)| t == table) {
            Some((_, sql, _)) => count(&mut admin, sql, Some(s.a)).await,
            None => 0,
        };
        if !SYSTEM_ONLY.contains(&table.as_str()) {
            assert!(own > 0, "{table}: A cannot see its own rows");
        }
        assert_eq!(other, 0, "{table}: A sees B's rows");
        assert_eq!(system, shared, "{table}: A sees system rows it should not (or misses shared ones)");
        assert_eq!(total, own + shared, "{table}: A sees rows that are not A's");

        // System scope: system rows, and of tenant data only the tenant registry.
        let mut tx = app.begin(DbScope::System, None, false).await.unwrap();
        let tenant_rows =
            count(&mut *tx, &format!("SELECT count(*) FROM {table} WHERE tenant_id = $1"), Some(s.a)).await;
        tx.rollback().await.unwrap();
        if !SYSTEM_READS_TENANT_ROWS.iter().any(|(t, _)| t == table) {
            assert_eq!(tenant_rows, 0, "{table}: system scope sees tenant rows");
        }
    }
    app.pool().close().await;
    db.drop_db().await;
}

async fn the_app_role_cannot_write_another_tenants_rows(via: Via) {
    let db = common::TestDb::new().await;
    let app_url = via.app_url(&db);
    let mut admin = db.admin().await;
    let s = seed(&mut admin).await;
    let all = tables(&mut admin).await;
    let before = common::db_fingerprint(&mut admin).await;
    let app = Db::connect(&app_url.url, 2).await.expect("app pool");

    for table in &all {
        let mut tx = app.begin(DbScope::Tenant(s.a), Some(s.a_user), true).await.unwrap();
        // Every statement runs in a savepoint so one refusal does not abort the rest.
        async fn attempt(tx: &mut sqlx::PgConnection, sql: &str, bind: Option<Uuid>) -> Result<u64, sqlx::Error> {
            tx.execute("SAVEPOINT attempt").await?;
            let r = sqlx::query(sql).bind(bind).execute(&mut *tx).await.map(|r| r.rows_affected());
            tx.execute(if r.is_ok() { "RELEASE SAVEPOINT attempt" } else { "ROLLBACK TO SAVEPOINT attempt" }).await?;
            r
        }
        let c: &mut sqlx::PgConnection = &mut tx;
        // Insert a row claiming to be B's.
        c.execute("SAVEPOINT attempt").await.unwrap();
        let inserted = run_seeder(&mut *c, table, Some(s.b), Uuid::now_v7(), s.a_user).await;
        c.execute(if inserted.is_ok() { "RELEASE SAVEPOINT attempt" } else { "ROLLBACK TO SAVEPOINT attempt" })
            .await
            .unwrap();
        assert!(refused(inserted), "{table}: A inserted a row for B");
        // Touch B's rows.
        let updated = attempt(c, &format!("UPDATE {table} SET id = id WHERE tenant_id = $1"), Some(s.b)).await;
        assert!(refused(updated), "{table}: A updated B's rows");
        let deleted = attempt(c, &format!("DELETE FROM {table} WHERE tenant_id = $1"), Some(s.b)).await;
        assert!(refused(deleted), "{table}: A deleted B's rows");
        // Move one of A's rows to B.
        if table != "tenants" {
            let moved =
                attempt(c, &format!("UPDATE {table} SET tenant_id = $1 WHERE tenant_id IS NOT NULL"), Some(s.b)).await;
            assert!(refused(moved), "{table}: A moved a row into B");
        }
        tx.rollback().await.unwrap();
    }
    app.pool().close().await;
    let after = common::db_fingerprint(&mut admin).await;
    db.drop_db().await;
    assert_eq!(before, after, "the database changed");
}

async fn a_pooled_connection_forgets_the_context_at_commit(via: Via) {
    let db = common::TestDb::new().await;
    let app_url = via.app_url(&db);
    let mut admin = db.admin().await;
    let s = seed(&mut admin).await;
    // One connection, so every step below reuses it.
    let pool = PgPoolOptions::new().max_connections(1).connect(&app_url.url).await.unwrap();
    let app = Db::from_pool(pool.clone());
    let users_visible = |r: Result<(i64,), sqlx::Error>| matches!(r, Ok((n,)) if n > 0);
    let count_users = || sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM users");
    // What the next user of the connection gets: a plain transaction, no context
    // entered. (Through PgBouncer every statement must be in a transaction: an
    // autocommit statement's parse and execute may meet different server
    // connections.)
    let next_user = |pool: PgPool| async move {
        let mut bare = pool.begin().await.unwrap();
        let (role, setting): (String, Option<String>) =
            sqlx::query_as("SELECT current_user::text, current_setting('basalt.tenant_id', true)")
                .fetch_one(&mut *bare)
                .await
                .unwrap();
        // Last: without a context the app role may not even read the table.
        let users = count_users().fetch_one(&mut *bare).await;
        bare.rollback().await.unwrap();
        (users_visible(users), role, setting.unwrap_or_default())
    };
    let clean = (false, "basalt_app".to_string(), String::new());

    let mut tx = app.begin(DbScope::Tenant(s.a), None, false).await.unwrap();
    assert!(users_visible(count_users().fetch_one(&mut *tx).await));
    tx.commit().await.unwrap();
    assert_eq!(next_user(pool.clone()).await, clean, "rows, role or tenant setting survived the commit");

    let mut tx = app.begin(DbScope::Tenant(s.a), None, false).await.unwrap();
    assert!(users_visible(count_users().fetch_one(&mut *tx).await));
    tx.rollback().await.unwrap();
    assert_eq!(next_user(pool.clone()).await, clean, "rows, role or tenant setting survived the rollback");

    // A transaction dropped without commit (a handler that failed) is rolled back
    // before its connection serves anyone else.
    {
        let mut tx = app.begin(DbScope::Tenant(s.a), None, true).await.unwrap();
        sqlx::query("UPDATE users SET email = 'dropped@example.com'").execute(&mut *tx).await.unwrap();
    }
    let mut tx = app.begin(DbScope::Tenant(s.a), None, false).await.unwrap();
    let (changed,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE email = 'dropped@example.com'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(changed, 0, "a dropped transaction was not rolled back");
    assert_eq!(next_user(pool.clone()).await, clean, "a dropped transaction left its context behind");

    // Even a session-level setting by a careless query (simple protocol: one
    // message, valid through PgBouncer too) grants nothing without a context.
    sqlx::raw_sql(&format!("SELECT set_config('basalt.tenant_id', '{}', false)", s.a)).execute(&pool).await.unwrap();
    assert!(!next_user(pool.clone()).await.0, "a session-level tenant setting made rows visible");
    pool.close().await;
    db.drop_db().await;
}

async fn the_auth_scope_reads_credentials_and_writes_nothing(via: Via) {
    let db = common::TestDb::new().await;
    let app_url = via.app_url(&db);
    let mut admin = db.admin().await;
    let s = seed(&mut admin).await;
    let app = Db::connect(&app_url.url, 1).await.unwrap();
    // The auth scope reads the tenant registry (names, for login) and exactly the
    // user it authenticates: the actor, here A's user.
    let mut tx = app.begin(DbScope::Auth, Some(s.a_user), false).await.unwrap();
    let (tenants,): (i64,) = sqlx::query_as("SELECT count(*) FROM tenants").fetch_one(&mut *tx).await.unwrap();
    assert!(tenants >= 2);
    let users: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM users").fetch_all(&mut *tx).await.unwrap();
    assert_eq!(users, vec![(s.a_user,)], "the auth scope sees users other than the one it authenticates");
    let (tokens,): (i64,) = sqlx::query_as("SELECT count(*) FROM api_tokens").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(tokens, 0, "the auth scope sees tokens it was not asked for");
    tx.rollback().await.unwrap();
    // Invitations too: the auth scope sees one only when asked to redeem it.
    for table in ["audit_events", "idempotency_keys", "invitations", "tenant_policies"] {
        let mut tx = app.begin(DbScope::Auth, None, false).await.unwrap();
        let r = sqlx::query_as::<_, (i64,)>(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut *tx).await;
        assert!(matches!(r, Ok((0,)) | Err(_)), "{table} readable in the auth scope");
        tx.rollback().await.unwrap();
    }
    let mut tx = app.begin(DbScope::Auth, None, false).await.unwrap();
    let wrote = run_seeder(&mut *tx, "users", Some(s.a), Uuid::now_v7(), s.a_user).await;
    assert!(wrote.is_err(), "the auth scope inserted a user");
    tx.rollback().await.unwrap();
    app.pool().close().await;
    db.drop_db().await;
}

async fn a_suspended_or_deleted_tenant_is_refused_when_entering(via: Via) {
    let db = common::TestDb::new().await;
    let app_url = via.app_url(&db);
    let mut admin = db.admin().await;
    let s = seed(&mut admin).await;
    sqlx::query("UPDATE tenants SET state = 'suspended' WHERE id = $1").bind(s.a).execute(&mut admin).await.unwrap();
    let app = Db::connect(&app_url.url, 1).await.unwrap();
    let code = |r: Result<_, sqlx::Error>| match r {
        Err(sqlx::Error::Database(d)) => d.code().map(|c| c.to_string()),
        _ => None,
    };
    assert!(app.begin(DbScope::Tenant(s.a), None, false).await.is_ok(), "reads must work while suspended");
    assert_eq!(code(app.begin(DbScope::Tenant(s.a), None, true).await.map(|_| ())), Some("BS423".into()));
    sqlx::query("UPDATE tenants SET state = 'deleted', deleted_at = now() WHERE id = $1")
        .bind(s.a)
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(code(app.begin(DbScope::Tenant(s.a), None, false).await.map(|_| ())), Some("BS404".into()));
    assert_eq!(code(app.begin(DbScope::Tenant(Uuid::now_v7()), None, false).await.map(|_| ())), Some("BS404".into()));
    app.pool().close().await;
    db.drop_db().await;
}
