//! `/v1/ip-pools`: the provider's pools of public IPv4 addresses, one cluster
//! each, from which tenants allocate floating IPs (`api/floating_ips.rs`).
//!
//! * Pools are system rows (`tenant_id` pinned NULL) that provider staff manage
//!   at system scope; tenants have no `ip_pool:*` permission. (Their context
//!   may read the pools of clusters it holds a quota on, because allocating
//!   needs the range: migration `20261202000016_floating_ips.sql`.)
//! * A pool's CIDR is IPv4, prefix /20 to /30 (at most 4094 addresses to walk
//!   when allocating), host bits zero, and overlaps no other pool of the same
//!   cluster (409 `cidr_overlap`, checked under a transaction-scoped advisory
//!   lock per cluster). Its optional gateway is a host address inside it, and is
//!   never handed out. Only its name and description change later.
//! * A pool with allocations cannot be deleted (409 `ip_pool_in_use`): the
//!   floating IPs' foreign key has no cascade, so even the allocations the
//!   system context cannot see (they are tenant rows) hold it.

use std::net::Ipv4Addr;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateIpPool, IpPool, Page, UpdateIpPool};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use super::networks::{refuse_overlap, Cidr};
use crate::audit::Event;
use crate::authz::Permission;
use crate::error::{ApiError, ApiResult};
use crate::validate;

pub(crate) const COLUMNS: &str = "id, cluster_id, name, cidr::text AS cidr, host(gateway) AS gateway, description, \
     version, created_at, updated_at";

/// The prefix lengths a pool may have.
pub(crate) const PREFIXES: std::ops::RangeInclusive<u8> = 20..=30;

#[derive(sqlx::FromRow)]
pub(crate) struct IpPoolRow {
    id: Uuid,
    cluster_id: Uuid,
    name: String,
    cidr: String,
    gateway: Option<String>,
    description: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<IpPoolRow> for IpPool {
    fn from(r: IpPoolRow) -> IpPool {
        IpPool {
            id: r.id,
            cluster_id: r.cluster_id,
            name: r.name,
            cidr: r.cidr,
            gateway: r.gateway,
            description: r.description,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A gateway: an IPv4 host address of `cidr` (not its network or broadcast).
fn check_gateway(cidr: Cidr, gateway: &str) -> ApiResult<()> {
    let ip: Ipv4Addr =
        gateway.parse().map_err(|_| ApiError::bad_field("gateway", "gateway must be an IPv4 address"))?;
    if !cidr.is_usable(ip) {
        return Err(ApiError::bad_field(
            "gateway",
            format!("gateway must be a host address of {} (not its network or broadcast address)", cidr.text()),
        ));
    }
    Ok(())
}

/// List the provider's IP pools.
#[utoipa::path(get, operation_id = "ip_pools_list", path = "/v1/ip-pools", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<IpPool>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<IpPool>>> {
    crud::list::<IpPoolRow, IpPool>(&req, &q, "ip_pools", COLUMNS).await
}

/// Create a pool of public addresses on a cluster (system scope). Its CIDR
/// must not overlap another pool of the cluster (409 `cidr_overlap`). Accepts
/// `Idempotency-Key`.
#[utoipa::path(post, operation_id = "ip_pools_create", path = "/v1/ip-pools", tag = "compute", request_body = CreateIpPool,
    responses((status = 201, body = IpPool), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateIpPool>) -> ApiResult<Response> {
    validate::name("name", &body.name)?;
    let description = body.description.clone().unwrap_or_default();
    validate::description(Some(&description))?;
    let cidr = Cidr::parse_with_prefix("cidr", &body.cidr, PREFIXES)?;
    if let Some(gateway) = &body.gateway {
        check_gateway(cidr, gateway)?;
    }
    let mut tx = req.tx()?;
    let cluster = super::clusters::referenced(&req, &mut tx, body.cluster_id, Permission::ClusterRead).await?;
    let (name, text, gateway) = (body.name.clone(), cidr.text(), body.gateway.clone());
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                refuse_overlap(tx, ("ip_pools", "IP pool"), cluster, &text).await?;
                let row: IpPoolRow = sqlx::query_as(&format!(
                    "INSERT INTO ip_pools (id, cluster_id, name, cidr, gateway, description)
                     VALUES ($1, $2, $3, $4::cidr, $5::inet, $6) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(cluster)
                .bind(&name)
                .bind(&text)
                .bind(&gateway)
                .bind(&description)
                .fetch_one(&mut **tx)
                .await?;
                Ok(IpPool::from(row))
            })
        },
        |p| Event::new("ip_pool.create", "ip_pool", Some(p.id)).details(json!({ "after": p })),
    )
    .await
}

/// Read an IP pool.
#[utoipa::path(get, operation_id = "ip_pools_get", path = "/v1/ip-pools/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = IpPool), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<IpPool>> {
    crud::get::<IpPoolRow, IpPool>(&req, "ip_pools", COLUMNS, id, "ip_pool").await
}

/// Rename an IP pool or change its description (its range and cluster are
/// fixed). Takes `If-Match`.
#[utoipa::path(patch, operation_id = "ip_pools_update", path = "/v1/ip-pools/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateIpPool, responses((status = 200, body = IpPool), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateIpPool>,
) -> ApiResult<Json<IpPool>> {
    validate::rename(body.name.as_deref(), body.description.as_deref())?;
    let mut tx = req.tx()?;
    let current: IpPool = crud::fetch::<IpPoolRow, _>(&mut tx, "ip_pools", COLUMNS, id, true, "ip_pool").await?;
    check_version(&if_match, current.version)?;
    let (name, description) = (body.name.as_deref(), body.description.as_deref());
    let after = crud::renamed::<IpPoolRow, IpPool>(&mut tx, ("ip_pools", COLUMNS), id, name, description).await?;
    crud::updated(tx, &req, "ip_pool.update", "ip_pool", id, &current, after).await
}

/// Delete an IP pool; refused while floating IPs are allocated from it (409
/// `ip_pool_in_use`).
#[utoipa::path(delete, operation_id = "ip_pools_delete", path = "/v1/ip-pools/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current: IpPool = crud::fetch::<IpPoolRow, _>(&mut tx, "ip_pools", COLUMNS, id, true, "ip_pool").await?;
    crud::deleted(tx, &req, "ip_pools", "ip_pool.delete", "ip_pool", id, &current).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ranges_and_gateways_are_checked() {
        let c = Cidr::parse_with_prefix("cidr", "203.0.113.0/28", PREFIXES).unwrap();
        assert!(check_gateway(c, "203.0.113.1").is_ok());
        assert!(check_gateway(c, "203.0.113.14").is_ok());
        for bad in ["203.0.113.0", "203.0.113.15", "203.0.113.16", "x", "::1"] {
            assert_eq!(check_gateway(c, bad).unwrap_err().status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        for bad in ["203.0.113.0/19", "203.0.113.0/31", "203.0.113.4/28"] {
            assert!(Cidr::parse_with_prefix("cidr", bad, PREFIXES).is_err(), "{bad}");
        }
        assert!(Cidr::parse_with_prefix("cidr", "203.0.113.0/19", PREFIXES)
            .unwrap_err()
            .to_string()
            .contains("/20 to /30"));
    }
}
