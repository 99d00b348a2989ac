//! The schema's isolation rules, checked in Postgres' own catalog: every table has
//! row-level security enabled *and forced* with policies for every command; the app
//! role cannot bypass RLS and owns nothing; every unique key, foreign key and index
//! of a tenant table includes (indexes: leads with) `tenant_id`.
//!
//! A table added without these fails `the_schema_follows_the_isolation_rules`; the
//! second test proves the checker does catch such a table.

mod common;

use sqlx::PgConnection;

/// Tables that are not business data, with the reason.
const NOT_TENANT_DATA: &[(&str, &str)] =
    &[("_sqlx_migrations", "migration bookkeeping; owned by basalt_owner, no grant to the app role")];

/// Constraints and indexes allowed to leave out `tenant_id`, with the reason.
const KEY_EXCEPTIONS: &[(&str, &str)] = &[
    ("tenants_live_name", "tenant names are global: they are what users type at login"),
    ("tenants_tenant_id", "the tenant registry's own tenant_id (= id)"),
    ("role_bindings_role", "the role's own tenant: pinned to tenant_id by a CHECK, NULL for built-in and system roles"),
    ("role_bindings_role_id_fkey", "existence of built-in and system roles, whose composite key has a NULL tenant"),
    ("clusters_region_id_fkey", "the estate is system rows (tenant_id pinned NULL)"),
    ("hosts_cluster_id_fkey", "the estate is system rows (tenant_id pinned NULL)"),
    ("placements_host_id_fkey", "the estate is system rows (tenant_id pinned NULL)"),
    (
        "role_bindings_user",
        "the auth context finds one user's bindings before a tenant is chosen (RLS limits them to that user)",
    ),
    ("role_bindings_group", "the auth context finds the bindings of one user's groups before a tenant is chosen"),
    ("group_members_user", "the auth context finds one user's memberships before a tenant is chosen"),
    ("tenant_regions_region_id_fkey", "an entitlement names a region of the estate (a system row)"),
    ("region_objects_region_id_fkey", "the controller's routing hints are system rows (tenant_id pinned NULL)"),
    ("quotas_cluster_id_fkey", "a tenant's quota on a cluster of the estate (a system row)"),
    ("quota_requests_cluster_id_fkey", "a tenant's request for capacity on a cluster of the estate (a system row)"),
    ("notices_region_id_fkey", "a provider notice (a system row) about a region of the estate"),
    // Public IP pools and floating IPs (perm-g).
    ("ip_pools_cluster_id_fkey", "the estate is system rows (tenant_id pinned NULL)"),
    ("floating_ips_ip_pool_id_fkey", "a tenant's address from a provider pool (a system row); no cascade: a pool in use stays"),
    (
        "floating_ips_pool_address",
        "an address of a pool is held by one tenant at a time, across tenants (the allocation's guard)",
    ),
    ("maintenance_windows_cluster_id_fkey", "a maintenance window (a system row) on a cluster of the estate"),
    (
        "invitations_role_id_fkey",
        "the role an invitation binds may be built-in (NULL tenant); its visibility is checked in the context at creation",
    ),
    (
        "api_tokens_context_tenant_id_fkey",
        "the tenant a provider-staff token acts in; for tenant users a CHECK pins it to tenant_id",
    ),
];

async fn violations(conn: &mut PgConnection) -> Vec<String> {
    let mut out = Vec::new();
    let skip: Vec<&str> = NOT_TENANT_DATA.iter().map(|(t, _)| *t).collect();
    let excepted: Vec<&str> = KEY_EXCEPTIONS.iter().map(|(c, _)| *c).collect();

    // RLS enabled and forced, a policy for each command, a tenant_id column.
    let tables: Vec<(String, bool, bool, Vec<String>, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                coalesce(array_agg(DISTINCT p.polcmd::text) FILTER (WHERE p.polcmd IS NOT NULL), '{}'),
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_policy p ON p.polrelid = c.oid
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          GROUP BY c.oid, c.relname",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("tables");
    for (table, enabled, forced, cmds, has_tenant) in tables {
        if skip.contains(&table.as_str()) {
            continue;
        }
        if !enabled || !forced {
            out.push(format!("{table}: row level security must be enabled and forced"));
        }
        // r = SELECT, a = INSERT, w = UPDATE, d = DELETE, * = ALL
        for (cmd, label) in [("r", "SELECT"), ("a", "INSERT"), ("w", "UPDATE"), ("d", "DELETE")] {
            if !cmds.iter().any(|c| c == cmd || c == "*") {
                out.push(format!("{table}: no policy for {label}"));
            }
        }
        if !has_tenant {
            out.push(format!("{table}: no tenant_id column"));
        }
    }

    // Unique constraints and foreign keys (other than primary keys) include tenant_id.
    let keys: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT c.conname::text, t.relname::text, c.contype::text,
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid
                         AND a.attnum = ANY (c.conkey) AND a.attname = 'tenant_id')
           FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
          WHERE n.nspname = 'public' AND c.contype IN ('u', 'f')",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("constraints");
    for (name, table, kind, has_tenant) in keys {
        if !has_tenant && !skip.contains(&table.as_str()) && !excepted.contains(&name.as_str()) {
            let what = if kind == "u" { "unique key" } else { "foreign key" };
            out.push(format!("{table}: {what} {name} does not include tenant_id"));
        }
    }

    // Indexes other than primary keys lead with tenant_id.
    let indexes: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT i.relname::text, t.relname::text, a.attname::text
           FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_class t ON t.oid = x.indrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
           LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
          WHERE n.nspname = 'public' AND NOT x.indisprimary",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("indexes");
    for (index, table, first) in indexes {
        if first.as_deref() != Some("tenant_id")
            && !skip.contains(&table.as_str())
            && !excepted.contains(&index.as_str())
        {
            out.push(format!("{table}: index {index} does not lead with tenant_id"));
        }
    }

    // The app role: no superuser, no BYPASSRLS, owns nothing, no grant on bookkeeping.
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'basalt_app'")
            .fetch_one(&mut *conn)
            .await
            .expect("app role");
    if superuser || bypass {
        out.push("basalt_app must be NOSUPERUSER NOBYPASSRLS".into());
    }
    let owned: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
          WHERE r.rolname = 'basalt_app'
         UNION ALL
         SELECT p.proname::text FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE r.rolname = 'basalt_app'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("owned");
    for (o,) in owned {
        out.push(format!("basalt_app owns {o}"));
    }
    let (migrations_grant,): (bool,) =
        sqlx::query_as("SELECT has_table_privilege('basalt_app', '_sqlx_migrations', 'SELECT,INSERT,UPDATE,DELETE')")
            .fetch_one(&mut *conn)
            .await
            .expect("grant");
    if migrations_grant {
        out.push("basalt_app must have no access to _sqlx_migrations".into());
    }
    out
}

#[tokio::test]
async fn the_schema_follows_the_isolation_rules() {
    let db = common::TestDb::new().await;
    let mut conn = db.admin().await;
    let found = violations(&mut conn).await;
    db.drop_db().await;
    assert!(found.is_empty(), "isolation rule violations:\n{}", found.join("\n"));
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_by_the_app_role() {
    let db = common::TestDb::new().await;
    let mut conn = db.admin().await;
    let (upd, del): (bool, bool) = sqlx::query_as(
        "SELECT has_table_privilege('basalt_app', 'audit_events', 'UPDATE'),
                has_table_privilege('basalt_app', 'audit_events', 'DELETE')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    db.drop_db().await;
    assert!(!upd && !del, "the app role must not be able to UPDATE or DELETE audit events");
}

#[tokio::test]
async fn the_checker_catches_a_table_without_isolation() {
    let db = common::TestDb::new().await;
    let mut conn = db.admin().await;
    sqlx::query("CREATE TABLE gadgets (id uuid PRIMARY KEY, tenant_id uuid, name text, UNIQUE (name))")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE widgets (id uuid PRIMARY KEY, name text)").execute(&mut conn).await.unwrap();
    sqlx::query("ALTER TABLE widgets ENABLE ROW LEVEL SECURITY").execute(&mut conn).await.unwrap();
    sqlx::query("CREATE INDEX widgets_name ON widgets (name)").execute(&mut conn).await.unwrap();
    let found = violations(&mut conn).await;
    db.drop_db().await;
    let has = |s: &str| found.iter().any(|v| v.contains(s));
    assert!(has("gadgets: row level security must be enabled and forced"), "{found:?}");
    assert!(has("gadgets: no policy for SELECT"), "{found:?}");
    assert!(has("gadgets: unique key gadgets_name_key does not include tenant_id"), "{found:?}");
    assert!(has("widgets: row level security must be enabled and forced"), "{found:?}");
    assert!(has("widgets: no tenant_id column"), "{found:?}");
    assert!(has("widgets: index widgets_name does not lead with tenant_id"), "{found:?}");
}
