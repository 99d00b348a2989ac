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

use super::{APP_ROLE, OWNER_ROLE};

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
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" OWNER TO {OWNER_ROLE}",
        current_db(&mut conn).await?
    ))
    .execute(&mut conn)
    .await?;
    sqlx::query(&format!("SET ROLE {OWNER_ROLE}"))
        .execute(&mut conn)
        .await?;
    MIGRATOR.run(&mut conn).await?;
    sqlx::query("RESET ROLE").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

async fn current_db(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    let (name,): (String,) = sqlx::query_as("SELECT current_database()")
        .fetch_one(conn)
        .await?;
    Ok(name.replace('"', "\"\""))
}

/// Roles are cluster-wide: two databases migrating at once may race to create
/// them, so a duplicate is not an error.
async fn ensure_roles(
    conn: &mut PgConnection,
    app_password: Option<&str>,
) -> Result<(), sqlx::Error> {
    let stmts = [
        format!("CREATE ROLE {OWNER_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS"),
        format!("CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"),
    ];
    for stmt in stmts {
        if let Err(e) = sqlx::query(&stmt).execute(&mut *conn).await {
            let dup = matches!(&e, sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("42710") | Some("23505") | Some("XX000")));
            if !dup {
                return Err(e);
            }
        }
    }
    // An existing role keeps whatever it had: make sure it cannot bypass RLS.
    sqlx::query(&format!("ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS"))
        .execute(&mut *conn)
        .await?;
    if let Some(pw) = app_password {
        // Passwords cannot be bound parameters in ALTER ROLE; quote as a literal.
        let lit = pw.replace('\'', "''");
        sqlx::query(&format!("ALTER ROLE {APP_ROLE} PASSWORD '{lit}'"))
            .execute(&mut *conn)
            .await?;
    }
    // The administrator must be able to SET ROLE to the owner.
    let _ = sqlx::query(&format!("GRANT {OWNER_ROLE} TO CURRENT_USER"))
        .execute(&mut *conn)
        .await;
    Ok(())
}
