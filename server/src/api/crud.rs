//! The shape every resource shares, written once: the create flow (idempotency
//! key, insert, audit event, 201) and the plain paginated list of a context.

use std::future::Future;
use std::pin::Pin;

use axum::response::Response;
use axum::Json;
use basalt_client::Page;
use serde::Serialize;
use uuid::Uuid;

use super::extract::{page, IdempotencyKey, PageQuery, Req};
use crate::audit::{self, Event};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Claim};

/// Creates an object in `tx` (the request's transaction, after any checks the
/// caller made in it): claims the `Idempotency-Key`
/// for `body` (a retry answers the stored result), runs `insert`, records the
/// audit event `describe` makes of the new object, and answers 201 with it.
pub async fn create<B, T>(
    mut tx: Tx,
    req: &Req,
    key: &IdempotencyKey,
    body: &B,
    insert: impl for<'t> FnOnce(&'t mut Tx) -> Insert<'t, T>,
    describe: impl FnOnce(&T) -> Event<'static>,
) -> ApiResult<Response>
where
    B: Serialize,
    T: Serialize,
{
    let claimed = match idempotency::claim(&mut tx, req, key, body).await? {
        Claim::Replay(status, stored) => return Ok(idempotency::replay(status, stored)),
        Claim::Proceed(c) => c,
    };
    let created = insert(&mut tx).await?;
    audit::record(&mut tx, req, describe(&created)).await?;
    let resp = idempotency::created(&mut tx, claimed, created).await?;
    tx.commit().await?;
    Ok(resp)
}

/// The create body of a named object bound to a cluster (a network, a volume, a
/// security group): what [`check_on_cluster`] checks.
pub struct OnCluster<'a> {
    pub tenant_id: Option<Uuid>,
    pub cluster_id: Uuid,
    pub name: &'a str,
    pub description: Option<&'a str>,
}

/// What every create of a named, cluster-bound tenant object checks, in this
/// order: the body's tenant, the name, the description, then the cluster (422
/// `invalid_reference` unless the caller sees it) and `permission` on it.
/// Answers the cluster and the description (empty if none was given).
pub async fn check_on_cluster(
    req: &Req,
    tx: &mut Tx,
    new: OnCluster<'_>,
    permission: crate::authz::Permission,
) -> ApiResult<(Uuid, String)> {
    req.check_body_tenant(new.tenant_id)?;
    crate::validate::name("name", new.name)?;
    let description = new.description.unwrap_or_default().to_owned();
    crate::validate::description(Some(&description))?;
    let cluster = super::clusters::referenced(req, tx, new.cluster_id, crate::authz::Permission::ClusterRead).await?;
    req.grants.require_on_cluster(permission, cluster)?;
    Ok((cluster, description))
}

/// One page of everything `table` holds in the caller's context (RLS decides
/// what that is), in id order.
pub async fn list<R, T>(req: &Req, query: &PageQuery, table: &str, columns: &str) -> ApiResult<Json<Page<T>>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: From<R> + HasId,
{
    let params = query.params()?;
    let mut tx = req.tx()?;
    let rows: Vec<R> = sqlx::query_as(&format!(
        "SELECT {columns} FROM {table} WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    ))
    .bind(params.after)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(T::from).collect(), params, |x| x.id())))
}

/// One page of what `table` holds on the clusters where the caller holds
/// `permission` (all of the context's, or its cluster bindings'), in id order:
/// the list of a cluster-bound resource.
pub async fn list_on_clusters<R, T>(
    req: &Req,
    query: &PageQuery,
    table: &str,
    columns: &str,
    permission: crate::authz::Permission,
) -> ApiResult<Json<Page<T>>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: From<R> + HasId,
{
    list_filtered_on_clusters::<R, T>(req, query, (table, columns), ClusterList::by_cluster(None), permission).await
}

/// Which rows of a cluster-bound list: `column = value` when a value is given
/// (a query filter), and `on_clusters`, the SQL condition that a row is on one
/// of the clusters of the `uuid[]` parameter `$3`.
pub struct ClusterList<'a> {
    pub column: &'a str,
    pub value: Option<Uuid>,
    pub on_clusters: &'a str,
}

impl ClusterList<'static> {
    /// Rows with their own `cluster_id`, optionally of one cluster.
    pub fn by_cluster(cluster: Option<Uuid>) -> Self {
        ClusterList { column: "cluster_id", value: cluster, on_clusters: "cluster_id = ANY($3)" }
    }
}

/// [`list_on_clusters`] with a filter, for resources whose list takes one
/// (`?cluster_id=`, `?vm_id=`) or whose cluster is their VM's.
pub async fn list_filtered_on_clusters<R, T>(
    req: &Req,
    query: &PageQuery,
    (table, columns): (&str, &str),
    filter: ClusterList<'_>,
    permission: crate::authz::Permission,
) -> ApiResult<Json<Page<T>>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: From<R> + HasId,
{
    let params = query.params()?;
    let only = req.grants.clusters_for(permission).as_param();
    let ClusterList { column, value, on_clusters } = filter;
    let mut tx = req.tx()?;
    let rows: Vec<R> = sqlx::query_as(&format!(
        "SELECT {columns} FROM {table}
          WHERE ($1::uuid IS NULL OR id > $1) AND ($2::uuid IS NULL OR {column} = $2)
            AND ($3::uuid[] IS NULL OR {on_clusters})
          ORDER BY id LIMIT $4"
    ))
    .bind(params.after)
    .bind(value)
    .bind(only)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(T::from).collect(), params, |x| x.id())))
}

/// [`fetch`] for a cluster-bound resource: the row is also a 404 unless the
/// caller holds `permission` on its cluster (`cluster` reads it).
pub async fn fetch_on_cluster<R, T>(
    req: &Req,
    tx: &mut Tx,
    (table, columns, kind): (&str, &str, &'static str),
    id: Uuid,
    lock: bool,
    permission: crate::authz::Permission,
    cluster: impl Fn(&T) -> Uuid,
) -> ApiResult<T>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: From<R>,
{
    let found: T = fetch::<R, T>(tx, table, columns, id, lock, kind).await?;
    match req.grants.require_on_cluster(permission, cluster(&found)) {
        Ok(()) => Ok(found),
        Err(_) => Err(ApiError::NotFound { kind }),
    }
}

/// One page of a sub-collection: the rows of `table` whose column `parent` is
/// `parent_id` (a VM's interfaces, a security group's rules), in id order, read
/// in `tx` after the caller checked the parent; commits.
pub async fn list_children<R, T>(
    mut tx: Tx,
    query: &PageQuery,
    (table, columns): (&str, &str),
    (parent, parent_id): (&str, Uuid),
) -> ApiResult<Json<Page<T>>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: From<R> + HasId,
{
    let params = query.params()?;
    let rows: Vec<R> = sqlx::query_as(&format!(
        "SELECT {columns} FROM {table} WHERE {parent} = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    ))
    .bind(parent_id)
    .bind(params.after)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(T::from).collect(), params, |x| x.id())))
}

/// The tail of every update: audit `action` with before and after, commit, and
/// answer the object.
pub async fn updated<T: Serialize>(
    mut tx: Tx,
    req: &Req,
    action: &'static str,
    kind: &'static str,
    id: Uuid,
    before: &T,
    after: T,
) -> ApiResult<Json<T>> {
    let details = serde_json::json!({ "before": before, "after": &after });
    audit::record(&mut tx, req, Event::new(action, kind, Some(id)).details(details)).await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// The rename-or-describe patch ([`crate::validate::rename`]) of a row of
/// `table`: its `name` and `description` where given, the version bumped; the
/// row answered as `T`.
pub async fn renamed<R, T>(
    tx: &mut Tx,
    (table, columns): (&str, &str),
    id: Uuid,
    name: Option<&str>,
    description: Option<&str>,
) -> ApiResult<T>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: From<R>,
{
    let row: R = sqlx::query_as(&format!(
        "UPDATE {table} SET name = COALESCE($2, name), description = COALESCE($3, description),
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {columns}"
    ))
    .bind(id)
    .bind(name)
    .bind(description)
    .fetch_one(&mut **tx)
    .await?;
    Ok(T::from(row))
}

/// The tail of every hard delete: delete the row of `table`, forget the
/// idempotency keys that answered it, audit `action` with what it was, commit, 204.
pub async fn deleted<T: Serialize>(
    mut tx: Tx,
    req: &Req,
    table: &str,
    action: &'static str,
    kind: &'static str,
    id: Uuid,
    before: &T,
) -> ApiResult<axum::http::StatusCode> {
    sqlx::query(&format!("DELETE FROM {table} WHERE id = $1")).bind(id).execute(&mut *tx).await?;
    crate::idempotency::forget_object(&mut tx, id).await?;
    audit::record(&mut tx, req, Event::new(action, kind, Some(id)).details(serde_json::json!({ "before": before })))
        .await?;
    tx.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The whole of a plain `GET /v1/<plural>/{id}`: the row in the request's
/// transaction (RLS decides whether it exists), as JSON.
pub async fn get<R, T>(req: &Req, table: &str, columns: &str, id: Uuid, kind: &'static str) -> ApiResult<Json<T>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: From<R>,
{
    let mut tx = req.tx()?;
    let found = fetch::<R, T>(&mut tx, table, columns, id, false, kind).await?;
    tx.commit().await?;
    Ok(Json(found))
}

/// One row of `table` visible in `tx` by id, as `T` (404 naming `kind` otherwise);
/// `lock` takes the row for update.
pub async fn fetch<R, T>(
    tx: &mut Tx,
    table: &str,
    columns: &str,
    id: Uuid,
    lock: bool,
    kind: &'static str,
) -> ApiResult<T>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: From<R>,
{
    let sql = format!("SELECT {columns} FROM {table} WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    let row: Option<R> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.map(T::from).ok_or(ApiError::NotFound { kind })
}

/// The insert step of [`create`]: a boxed future (so the handler stays `Send`)
/// borrowing the transaction.
pub type Insert<'t, T> = Pin<Box<dyn Future<Output = ApiResult<T>> + Send + 't>>;

/// Objects with an id (for cursors).
pub trait HasId {
    fn id(&self) -> Uuid;
}

macro_rules! has_id {
    ($($t:ty),+) => { $(impl HasId for $t { fn id(&self) -> Uuid { self.id } })+ };
}

has_id!(
    basalt_client::User,
    basalt_client::Role,
    basalt_client::Group,
    basalt_client::RoleBinding,
    basalt_client::Tenant,
    basalt_client::Region,
    basalt_client::Cluster,
    basalt_client::Host,
    basalt_client::Quota,
    basalt_client::Template,
    basalt_client::Vm,
    basalt_client::Snapshot,
    basalt_client::Operation,
    basalt_client::Invitation,
    basalt_client::ServiceAccount,
    basalt_client::PlacementGroup,
    basalt_client::QuotaRequest,
    basalt_client::Notice,
    basalt_client::Network,
    basalt_client::VmInterface,
    basalt_client::Volume,
    // Public IP pools and floating IPs (perm-g).
    basalt_client::IpPool,
    basalt_client::FloatingIp,
    // Snapshot schedules and maintenance windows (perm-e).
    basalt_client::SnapshotSchedule,
    basalt_client::MaintenanceWindow,
    // Security groups (perm-f).
    basalt_client::SecurityGroup,
    basalt_client::SecurityGroupRule,
    basalt_client::VmSecurityGroup,
    // webhooks (perm-h)
    basalt_client::Webhook
);
