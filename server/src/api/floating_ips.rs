//! `/v1/floating-ips`: a tenant's public IPv4 addresses, allocated from the
//! provider's IP pools (`api/ip_pools.rs`) of a cluster it holds a quota on,
//! and mapped to at most one of its VMs on that cluster.
//!
//! * Allocation takes the address asked for (409 `address_in_use` if another
//!   floating IP holds it), or the lowest free host address of the pool named,
//!   or of the cluster's first pool with one (409 `ip_pool_exhausted` when none
//!   is left). The network, broadcast and gateway addresses are never handed
//!   out. `basalt_claim_floating_ip` (migration
//!   `20261202000016_floating_ips.sql`) inserts the first candidate that the
//!   unique index `(ip_pool_id, address)` accepts: two concurrent allocations
//!   never get the same address, and a tenant never sees another's rows.
//! * A VM has at most one floating IP (409 `vm_has_floating_ip`); a floating IP
//!   is attached to one VM at a time (409 `floating_ip_attached`), and cannot be
//!   released while attached. A VM's deletion detaches its floating IP.
//! * The mapping is recorded only: no NAT is programmed on the hosts yet (see
//!   docs/compute.md).
//!
//! A cluster delegate sees the floating IPs of its clusters only; another
//! cluster's or another tenant's floating IP is a 404, like a missing one.

use std::net::Ipv4Addr;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateFloatingIp, FloatingIp, IpPool, Page, UpdateFloatingIp, VolumeAttachment};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use super::ip_pools::{IpPoolRow, PREFIXES};
use super::networks::{cluster_mismatch, Cidr};
use super::{crud, vms};
use crate::audit::Event;
use crate::authz::Permission;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, cluster_id, ip_pool_id, host(address) AS address, vm_id, description, version, \
     created_at, updated_at";

#[derive(sqlx::FromRow)]
struct FloatingIpRow {
    id: Uuid,
    tenant_id: Uuid,
    cluster_id: Uuid,
    ip_pool_id: Uuid,
    address: String,
    vm_id: Option<Uuid>,
    description: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<FloatingIpRow> for FloatingIp {
    fn from(r: FloatingIpRow) -> FloatingIp {
        FloatingIp {
            id: r.id,
            tenant_id: r.tenant_id,
            cluster_id: r.cluster_id,
            ip_pool_id: r.ip_pool_id,
            address: r.address,
            vm_id: r.vm_id,
            description: r.description,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A floating IP the caller may see (RLS, then its cluster's read
/// permission), optionally locked. Anything else is a 404.
async fn fetch(req: &Req, tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<FloatingIp> {
    let what = ("floating_ips", COLUMNS, "floating_ip");
    crud::fetch_on_cluster::<FloatingIpRow, FloatingIp>(req, tx, what, id, lock, Permission::FloatingIpRead, |f| {
        f.cluster_id
    })
    .await
}

/// The floating IP, locked, for `permission` on its cluster.
async fn lock_for(req: &Req, tx: &mut Tx, id: Uuid, permission: Permission) -> ApiResult<FloatingIp> {
    let found = fetch(req, tx, id, true).await?;
    req.grants.require_on_cluster(permission, found.cluster_id)?;
    Ok(found)
}

/// The pools to allocate from on `cluster`: the one named (422
/// `invalid_reference` unless it is a pool of that cluster), else all of the
/// cluster's, in id order.
async fn candidate_pools(tx: &mut Tx, cluster: Uuid, named: Option<Uuid>) -> ApiResult<Vec<IpPool>> {
    let rows: Vec<IpPoolRow> = sqlx::query_as(&format!(
        "SELECT {} FROM ip_pools WHERE cluster_id = $1 AND ($2::uuid IS NULL OR id = $2) ORDER BY id",
        super::ip_pools::COLUMNS
    ))
    .bind(cluster)
    .bind(named)
    .fetch_all(&mut **tx)
    .await?;
    if named.is_some() && rows.is_empty() {
        return Err(ApiError::invalid_reference("ip_pool_id", "no such IP pool on this cluster"));
    }
    Ok(rows.into_iter().map(IpPool::from).collect())
}

/// Narrows `pools` to the one holding `asked` as a host address (400 naming
/// `address` if none does: not in a pool, or its network, broadcast or
/// gateway address).
fn pool_of(pools: Vec<IpPool>, asked: Ipv4Addr) -> ApiResult<Vec<IpPool>> {
    let holds = |p: &IpPool| {
        let usable = Cidr::parse_with_prefix("cidr", &p.cidr, PREFIXES).is_ok_and(|c| c.is_usable(asked));
        usable && p.gateway.as_deref() != Some(asked.to_string().as_str())
    };
    match pools.into_iter().find(holds) {
        Some(pool) => Ok(vec![pool]),
        None => Err(ApiError::bad_field(
            "address",
            "address must be a host address of an IP pool of the cluster (not its network, broadcast or gateway address)",
        )),
    }
}

/// Claims an address for floating IP `id` from the first of `pools` that has
/// one (`asked`, or the lowest free one), and answers the new row.
async fn claim(
    tx: &mut Tx,
    id: Uuid,
    pools: &[IpPool],
    asked: Option<Ipv4Addr>,
    description: &str,
) -> ApiResult<FloatingIp> {
    for pool in pools {
        let (claimed,): (Option<String>,) =
            sqlx::query_as("SELECT host(basalt_claim_floating_ip($1, $2, $3::inet, $4))")
                .bind(id)
                .bind(pool.id)
                .bind(asked.map(|a| a.to_string()))
                .bind(description)
                .fetch_one(&mut **tx)
                .await?;
        if claimed.is_some() {
            return crud::fetch::<FloatingIpRow, FloatingIp>(tx, "floating_ips", COLUMNS, id, false, "floating_ip")
                .await;
        }
    }
    Err(match asked {
        Some(ip) => ApiError::Conflict { code: "address_in_use", message: format!("{ip} is already allocated") },
        None => ApiError::Conflict {
            code: "ip_pool_exhausted",
            message: "no free public address is left on this cluster (or in the pool named)".into(),
        },
    })
}

/// List the caller's floating IPs.
#[utoipa::path(get, operation_id = "floating_ips_list", path = "/v1/floating-ips", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<FloatingIp>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<FloatingIp>>> {
    crud::list_on_clusters::<FloatingIpRow, FloatingIp>(&req, &q, "floating_ips", COLUMNS, Permission::FloatingIpList)
        .await
}

/// Allocate a public address on a cluster where the tenant holds a quota:
/// `address` if it is free, else the lowest free one of `ip_pool_id` (or of
/// the cluster's pools). 409 `ip_pool_exhausted` when none is left. Accepts
/// `Idempotency-Key`.
#[utoipa::path(post, operation_id = "floating_ips_create", path = "/v1/floating-ips", tag = "compute", request_body = CreateFloatingIp,
    responses((status = 201, body = FloatingIp), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateFloatingIp>) -> ApiResult<Response> {
    req.check_body_tenant(body.tenant_id)?;
    let description = body.description.clone().unwrap_or_default();
    validate::description(Some(&description))?;
    let asked = match &body.address {
        Some(a) => Some(
            a.parse::<Ipv4Addr>()
                .map_err(|_| ApiError::bad_field("address", "address must be an IPv4 address such as 203.0.113.10"))?,
        ),
        None => None,
    };
    let mut tx = req.tx()?;
    let cluster = super::clusters::referenced(&req, &mut tx, body.cluster_id, Permission::ClusterRead).await?;
    req.grants.require_on_cluster(Permission::FloatingIpCreate, cluster)?;
    let mut pools = candidate_pools(&mut tx, cluster, body.ip_pool_id).await?;
    if let Some(ip) = asked {
        pools = pool_of(pools, ip)?;
    }
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| Box::pin(async move { claim(tx, Uuid::now_v7(), &pools, asked, &description).await }),
        |f| Event::new("floating_ip.create", "floating_ip", Some(f.id)).details(json!({ "after": f })),
    )
    .await
}

/// Read a floating IP.
#[utoipa::path(get, operation_id = "floating_ips_get", path = "/v1/floating-ips/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = FloatingIp), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<FloatingIp>> {
    let mut tx = req.tx()?;
    let found = fetch(&req, &mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(found))
}

/// Change a floating IP's description. Takes `If-Match`.
#[utoipa::path(patch, operation_id = "floating_ips_update", path = "/v1/floating-ips/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateFloatingIp, responses((status = 200, body = FloatingIp), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateFloatingIp>,
) -> ApiResult<Json<FloatingIp>> {
    validate::description(body.description.as_deref())?;
    let mut tx = req.tx()?;
    let current = lock_for(&req, &mut tx, id, Permission::FloatingIpUpdate).await?;
    check_version(&if_match, current.version)?;
    let after = set(&mut tx, id, "description = COALESCE($2, description)", body.description.clone()).await?;
    crud::updated(tx, &req, "floating_ip.update", "floating_ip", id, &current, after).await
}

/// Applies `assignment` (with `$2` bound to `value`) to floating IP `id`,
/// bumping its version, and answers the row.
async fn set<V>(tx: &mut Tx, id: Uuid, assignment: &str, value: V) -> ApiResult<FloatingIp>
where
    V: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    let row: FloatingIpRow = sqlx::query_as(&format!(
        "UPDATE floating_ips SET {assignment}, version = version + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(value)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// Release a floating IP: its address goes back to the pool. Refused while it
/// is attached (409 `floating_ip_attached`).
#[utoipa::path(delete, operation_id = "floating_ips_delete", path = "/v1/floating-ips/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = lock_for(&req, &mut tx, id, Permission::FloatingIpDelete).await?;
    if current.vm_id.is_some() {
        return Err(attached());
    }
    crud::deleted(tx, &req, "floating_ips", "floating_ip.delete", "floating_ip", id, &current).await
}

fn attached() -> ApiError {
    ApiError::Conflict {
        code: "floating_ip_attached",
        message: "the floating IP is attached to a VM; detach it first".into(),
    }
}

/// Attach a floating IP to a VM of the tenant on its cluster. Attaching it
/// again to the same VM changes nothing; a VM has at most one floating IP.
#[utoipa::path(post, operation_id = "floating_ips_attach", path = "/v1/floating-ips/{id}/attach", tag = "compute", params(("id" = Uuid, Path)),
    request_body = VolumeAttachment, responses((status = 200, body = FloatingIp), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn attach(
    req: Req,
    PathId(id): PathId,
    ApiJson(body): ApiJson<VolumeAttachment>,
) -> ApiResult<Json<FloatingIp>> {
    let mut tx = req.tx()?;
    let current = lock_for(&req, &mut tx, id, Permission::FloatingIpAttach).await?;
    match current.vm_id {
        Some(vm) if vm == body.vm_id => {
            tx.commit().await?;
            return Ok(Json(current));
        }
        Some(_) => return Err(attached()),
        None => {}
    }
    let vm = match vms::fetch(&req, &mut tx, body.vm_id, true).await {
        Err(ApiError::NotFound { .. }) => return Err(ApiError::invalid_reference("vm_id", "no such VM")),
        other => other?,
    };
    if vm.cluster_id != current.cluster_id {
        return Err(cluster_mismatch("vm_id", "the VM is on another cluster than the floating IP"));
    }
    let (taken,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM floating_ips WHERE vm_id = $1)")
        .bind(vm.id)
        .fetch_one(&mut *tx)
        .await?;
    if taken {
        return Err(ApiError::Conflict {
            code: "vm_has_floating_ip",
            message: "the VM has a floating IP already; detach that one first".into(),
        });
    }
    let after = set(&mut tx, id, "vm_id = $2", Some(vm.id)).await?;
    crud::updated(tx, &req, "floating_ip.attach", "floating_ip", id, &current, after).await
}

/// Detach a floating IP from its VM (the address stays allocated). Detaching
/// a detached floating IP changes nothing.
#[utoipa::path(post, operation_id = "floating_ips_detach", path = "/v1/floating-ips/{id}/detach", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = FloatingIp), (status = 404)), security(("bearer" = [])))]
pub async fn detach(req: Req, PathId(id): PathId) -> ApiResult<Json<FloatingIp>> {
    let mut tx = req.tx()?;
    let current = lock_for(&req, &mut tx, id, Permission::FloatingIpDetach).await?;
    if current.vm_id.is_none() {
        tx.commit().await?;
        return Ok(Json(current));
    }
    let after = set(&mut tx, id, "vm_id = $2", None::<Uuid>).await?;
    crud::updated(tx, &req, "floating_ip.detach", "floating_ip", id, &current, after).await
}
