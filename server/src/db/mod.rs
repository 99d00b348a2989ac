//! Postgres access: the two connection pools and the request context.
//!
//! * The **owner** pool (`basalt_owner`, or the operator's admin URL) only ever runs
//!   migrations. It is closed before the API starts serving.
//! * The **app** pool logs in as `basalt_app`: NOSUPERUSER, NOBYPASSRLS, owns
//!   nothing, has DML grants only. Every request is served over it, inside a
//!   transaction whose first round trip is `BEGIN; SELECT basalt_enter(...)`, which
//!   sets the tenant, actor and scope transaction-locally (`set_config(.., true)`),
//!   so a pooled connection never carries one request's context into the next.

pub mod migrate;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

pub type Tx = Transaction<'static, Postgres>;

/// The name of the application login role.
pub const APP_ROLE: &str = "basalt_app";
/// The name of the role that owns every object.
pub const OWNER_ROLE: &str = "basalt_owner";
/// The roles `basalt_enter` switches a transaction to, one per [`DbScope`].
/// `basalt_app` is a NOINHERIT member of each: it has their privileges only after
/// the switch, and only one at a time.
pub const CONTEXT_ROLES: [&str; 3] = ["basalt_ctx_system", "basalt_ctx_tenant", "basalt_ctx_auth"];

/// Whose rows a transaction may see: the policies read exactly this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbScope {
    /// Provider staff at system scope: system rows (`tenant_id IS NULL`) and the tenant registry.
    System,
    /// Inside one tenant.
    Tenant(Uuid),
    /// Credential lookup before anyone is known: read-only on users, tokens, tenant names.
    Auth,
}

impl DbScope {
    pub fn tenant(self) -> Option<Uuid> {
        match self {
            DbScope::Tenant(t) => Some(t),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DbScope::System => "system",
            DbScope::Tenant(_) => "tenant",
            DbScope::Auth => "auth",
        }
    }
}

/// The pool requests are served from.
#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    /// Connects the application pool. `url` must log in as the app role.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, sqlx::Error> {
        // `client_min_messages=error`: the leading ROLLBACK of `enter_statement`
        // would otherwise send a "no transaction in progress" warning every time.
        let opts = PgConnectOptions::from_str(url)?
            .application_name("basalt-server")
            .options([("client_min_messages", "error")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await?;
        Ok(Db { pool })
    }

    pub fn from_pool(pool: PgPool) -> Db {
        Db { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Opens a transaction in `scope` for `actor`. The context is set in the same
    /// round trip as `BEGIN`; for a tenant scope the same call refuses a deleted
    /// tenant and, when `mutating`, a suspended one (see `basalt_enter`).
    pub async fn begin(&self, scope: DbScope, actor: Option<Uuid>, mutating: bool) -> Result<Tx, sqlx::Error> {
        self.pool.begin_with(enter_statement(scope, actor, mutating)).await
    }

    /// Is Postgres answering (for `/readyz`)?
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

/// `ROLLBACK; BEGIN; SELECT basalt_enter(...)` as one simple-protocol message.
/// Only typed values (UUIDs, a fixed scope name, a bool) are interpolated, never
/// user text.
///
/// Why the leading ROLLBACK: when a custom BEGIN statement fails (here: a
/// suspended or deleted tenant), sqlx 0.8 returns the connection to the pool still
/// inside the aborted transaction, and its next user would fail with 25P02. A
/// ROLLBACK outside a transaction is a no-op (its warning is silenced by
/// `client_min_messages`), so every request starts clean at no extra round trip.
fn enter_statement(scope: DbScope, actor: Option<Uuid>, mutating: bool) -> String {
    let uuid_lit = |u: Option<Uuid>| match u {
        Some(u) => format!("'{}'::uuid", u.hyphenated()),
        None => "NULL::uuid".to_string(),
    };
    format!(
        "ROLLBACK; BEGIN; SELECT basalt_enter('{}', {}, {}, {})",
        scope.name(),
        uuid_lit(scope.tenant()),
        uuid_lit(actor),
        mutating
    )
}

/// The app role's connection URL, derived from the owner's URL when not given:
/// same host and database, user `basalt_app`, password from `app_password`.
pub fn derive_app_url(owner_url: &str, app_password: Option<&str>) -> Result<String, sqlx::Error> {
    let mut url = url_parse(owner_url)?;
    url.user = APP_ROLE.to_string();
    url.password = app_password.map(str::to_string);
    Ok(url.to_string())
}

/// A minimal split of `postgres://user:pass@host/db?query`, enough to swap the user.
struct PgUrl {
    scheme: String,
    user: String,
    password: Option<String>,
    rest: String,
}

fn url_parse(s: &str) -> Result<PgUrl, sqlx::Error> {
    let bad = || sqlx::Error::Configuration("database URL must be postgres://user@host/db".into());
    let (scheme, after) = s.split_once("://").ok_or_else(bad)?;
    let (userinfo, rest) = match after.rsplit_once('@') {
        Some((u, r)) => (u, r.to_string()),
        None => ("", after.to_string()),
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u.to_string(), Some(p.to_string())),
        None => (userinfo.to_string(), None),
    };
    Ok(PgUrl { scheme: scheme.to_string(), user, password, rest })
}

impl std::fmt::Display for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.user)?;
        if let Some(p) = &self.password {
            write!(f, ":{p}")?;
        }
        write!(f, "@{}", self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_url_swaps_only_the_user() {
        let u = derive_app_url("postgres://postgres:secret@127.0.0.1:5432/basalt?sslmode=disable", None).unwrap();
        assert_eq!(u, "postgres://basalt_app@127.0.0.1:5432/basalt?sslmode=disable");
        let u = derive_app_url("postgres://owner@/basalt?host=/tmp/x", Some("pw")).unwrap();
        assert_eq!(u, "postgres://basalt_app:pw@/basalt?host=/tmp/x");
    }

    #[test]
    fn enter_statement_interpolates_typed_values_only() {
        let t = Uuid::nil();
        let s = enter_statement(DbScope::Tenant(t), None, true);
        assert_eq!(
            s,
            "ROLLBACK; BEGIN; SELECT basalt_enter('tenant', '00000000-0000-0000-0000-000000000000'::uuid, NULL::uuid, true)"
        );
    }
}
