//! Postgres access: the two connection pools and the request context.
//!
//! * The **owner** pool (`basalt_owner`, or the operator's admin URL) only ever runs
//!   migrations. It is closed before the API starts serving.
//! * The **app** pool logs in as `basalt_app`: NOSUPERUSER, NOBYPASSRLS, NOINHERIT,
//!   owns nothing, holds no table privilege. Every request is served over it,
//!   inside a transaction that starts with `BEGIN` and `SELECT basalt_enter(...)`,
//!   which switches to the scope's context role and sets the tenant and actor, all
//!   transaction-locally, so a pooled connection never carries one request's
//!   context into the next.

pub mod migrate;

/// A request transaction, in the context `Db::begin` entered.
pub type Tx = Transaction<'static, Postgres>;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

use crate::authz::GrantRow;

/// The name of the application login role.
pub const APP_ROLE: &str = "basalt_app";
/// The name of the role that owns every object.
pub const OWNER_ROLE: &str = "basalt_owner";
/// The roles `basalt_enter` switches a transaction to, one per [`DbScope`].
/// `basalt_app` is a NOINHERIT member of each: it has their privileges only after
/// the switch, and only one at a time.
pub const CONTEXT_ROLES: [&str; 3] = ["basalt_ctx_system", "basalt_ctx_tenant", "basalt_ctx_auth"];

/// Whose rows a transaction may see: each scope is a context role with its own policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbScope {
    /// Provider staff at system scope: system rows (`tenant_id IS NULL`) and the tenant registry.
    System,
    /// Inside one tenant.
    Tenant(Uuid),
    /// Credential lookup before anyone is known: tenant names, and only the one
    /// user or token being authenticated; read only.
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
        let opts = PgConnectOptions::from_str(url)?.application_name("basalt-server");
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

    /// Opens a transaction in `scope` for `actor`: `BEGIN`, then the prepared
    /// `SELECT basalt_enter(..)`, which sets the context and, for a tenant scope,
    /// refuses a deleted tenant and (when `mutating`) a suspended one. On refusal
    /// the transaction is dropped, and sqlx rolls it back before the connection
    /// serves anyone else.
    ///
    /// Why not one round trip: folding both into one simple-protocol message
    /// (`BEGIN; SELECT basalt_enter(..)`) makes Postgres parse and plan the call on
    /// every request, and measured no faster here than the prepared statement's
    /// extra round trip on loopback (`docs/performance.md`); a failed custom
    /// `BEGIN` statement also leaves sqlx 0.8's connection inside the aborted
    /// transaction. A driver that pipelines the extended protocol could fold it.
    pub async fn begin(&self, scope: DbScope, actor: Option<Uuid>, mutating: bool) -> Result<Tx, sqlx::Error> {
        self.begin_with_grants(scope, actor, mutating).await.map(|(tx, _)| tx)
    }

    /// [`Db::begin`], also answering the actor's role bindings that reach `scope`
    /// (read by `basalt_enter` in the same statement).
    pub async fn begin_with_grants(
        &self,
        scope: DbScope,
        actor: Option<Uuid>,
        mutating: bool,
    ) -> Result<(Tx, Vec<GrantRow>), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let grants = sqlx::query_as(
            "SELECT binding_id, role_id, role_name, cluster_id, system_binding, permissions
               FROM basalt_enter($1, $2, $3, $4)",
        )
        .bind(scope.name())
        .bind(scope.tenant())
        .bind(actor)
        .bind(mutating)
        .fetch_all(&mut *tx)
        .await?;
        Ok((tx, grants))
    }

    /// A region's way into a context for a caller the global controller
    /// authenticated (`basalt_enter_delegated`: the tenant checks, no local user).
    pub async fn begin_delegated(
        &self,
        scope: DbScope,
        actor: Option<Uuid>,
        mutating: bool,
    ) -> Result<Tx, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT basalt_enter_delegated($1, $2, $3, $4)")
            .bind(scope.name())
            .bind(scope.tenant())
            .bind(actor)
            .bind(mutating)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Is Postgres answering (for `/readyz`)?
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        // The simple protocol: one message, so it is safe through a transaction pooler.
        sqlx::raw_sql("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
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
}
