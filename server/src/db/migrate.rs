//! Schema migrations and the two roles they rely on.
//!
//! `basalt-server migrate` (and every start-up) connects with an administrative
//! URL, makes sure the roles exist (`basalt_owner`: NOLOGIN, owns every object;
//! `basalt_app`: LOGIN, NOSUPERUSER, NOBYPASSRLS), hands the database to the owner,
//! and then runs the SQL files of `migrations/` under `SET ROLE basalt_owner` so
//! that everything they create belongs to the owner, not to the administrator.

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::str::FromStr;

use super::{APP_ROLE, CONTEXT_ROLES, OWNER_ROLE};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Creates the roles (idempotent, safe when several databases of one cluster
/// migrate at once), gives the database to the owner, and applies migrations.
pub async fn migrate(admin_url: &str, app_password: Option<&str>) -> Result<(), MigrateError> {
    let opts = PgConnectOptions::from_str(admin_url)?;
    let mut conn = PgConnection::connect_with(&opts).await?;
    ensure_roles(&mut conn, app_password).await?;
    let (owned,): (bool,) =
        sqlx::query_as("SELECT pg_get_userbyid(datdba) = $1 FROM pg_database WHERE datname = current_database()")
            .bind(OWNER_ROLE)
            .fetch_one(&mut conn)
            .await?;
    if !owned {
        let db = current_db(&mut conn).await?;
        sqlx::query(&format!("ALTER DATABASE \"{db}\" OWNER TO {OWNER_ROLE}")).execute(&mut conn).await?;
    }
    sqlx::query(&format!("SET ROLE {OWNER_ROLE}")).execute(&mut conn).await?;
    MIGRATOR.run(&mut conn).await?;
    sqlx::query("RESET ROLE").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

async fn current_db(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    let (name,): (String,) = sqlx::query_as("SELECT current_database()").fetch_one(conn).await?;
    Ok(name.replace('"', "\"\""))
}

/// Roles are cluster-wide: several databases (or replicas) may migrate at once, so
/// every step first looks whether it is needed, and a lost race is retried.
async fn ensure_roles(conn: &mut PgConnection, app_password: Option<&str>) -> Result<(), sqlx::Error> {
    let mut attempt = 0;
    loop {
        match try_ensure_roles(conn, app_password).await {
            Err(sqlx::Error::Database(d)) if attempt < 5 && is_race(d.code().as_deref()) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Duplicate role, or "tuple concurrently updated" from a concurrent ALTER.
fn is_race(code: Option<&str>) -> bool {
    matches!(code, Some("42710") | Some("23505") | Some("XX000") | Some("40001"))
}

async fn try_ensure_roles(conn: &mut PgConnection, app_password: Option<&str>) -> Result<(), sqlx::Error> {
    let mut roles = vec![
        (OWNER_ROLE, "NOLOGIN NOSUPERUSER NOBYPASSRLS"),
        (APP_ROLE, "LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"),
    ];
    roles.extend(CONTEXT_ROLES.iter().map(|r| (*r, "NOLOGIN NOSUPERUSER NOBYPASSRLS")));
    for (role, attrs) in roles {
        let found: Option<(bool, bool, bool)> =
            sqlx::query_as("SELECT rolsuper, rolbypassrls, rolinherit FROM pg_roles WHERE rolname = $1")
                .bind(role)
                .fetch_optional(&mut *conn)
                .await?;
        match found {
            None => {
                sqlx::query(&format!("CREATE ROLE {role} {attrs}")).execute(&mut *conn).await?;
            }
            // An existing role keeps whatever it had: make sure it cannot bypass RLS
            // (and that the app role inherits no context's privileges).
            Some((superuser, bypass, inherit)) if superuser || bypass || (role == APP_ROLE && inherit) => {
                let extra = if role == APP_ROLE { " NOINHERIT" } else { "" };
                sqlx::query(&format!("ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS{extra}")).execute(&mut *conn).await?;
            }
            Some(_) => {}
        }
    }
    for ctx in CONTEXT_ROLES {
        ensure_member(conn, APP_ROLE, ctx).await?;
    }
    if let Some(pw) = app_password {
        // Passwords cannot be bound parameters in ALTER ROLE; quote as a literal.
        let lit = pw.replace('\'', "''");
        sqlx::query(&format!("ALTER ROLE {APP_ROLE} PASSWORD '{lit}'")).execute(&mut *conn).await?;
    }
    // The administrator must be able to SET ROLE to the owner.
    let (me,): (String,) = sqlx::query_as("SELECT current_user::text").fetch_one(&mut *conn).await?;
    ensure_member(conn, &me, OWNER_ROLE).await
}

async fn ensure_member(conn: &mut PgConnection, member: &str, role: &str) -> Result<(), sqlx::Error> {
    let (is_member,): (bool,) =
        sqlx::query_as("SELECT pg_has_role($1, $2, 'MEMBER')").bind(member).bind(role).fetch_one(&mut *conn).await?;
    if !is_member {
        sqlx::query(&format!("GRANT {role} TO \"{}\"", member.replace('"', "\"\""))).execute(&mut *conn).await?;
    }
    Ok(())
}
