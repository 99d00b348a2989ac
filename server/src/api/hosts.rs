//! `/v1/clusters/{id}/hosts`: a cluster's libvirt hosts (system scope), their
//! capacity and what is placed on them, and draining one: a draining host takes
//! no new VM (placement skips it, the reconciler leaves the state alone) while
//! the VMs already on it keep running until they are moved
//! (`POST /v1/vms/{id}/migrate`) or deleted; `vms` shows how many are left.
//!
//! Evacuating a host (`POST .../evacuate`) drains it and moves every VM off it
//! as one operation ([`crate::compute::evacuate`]); `GET /v1/clusters/{id}/capacity`
//! sums up the hosts and the quotas handed out on the cluster.

use axum::response::Response;
use axum::Json;
use basalt_client::{ClusterCapacity, Host, HostCapacityView, Operation};
use serde_json::json;
use uuid::Uuid;

use super::extract::{PathId, PathIds, Req};
use crate::audit::{self, Event};
use crate::compute::evacuate::{self, Evacuation};
use crate::compute::operations;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};

#[derive(sqlx::FromRow)]
struct HostRow {
    id: Uuid,
    cluster_id: Uuid,
    uri: String,
    state: String,
    vcpus: i32,
    memory_mib: i64,
    vcpus_allocated: i64,
    memory_allocated_mib: i64,
    vms: i64,
    last_error: Option<String>,
}

impl From<HostRow> for Host {
    fn from(h: HostRow) -> Host {
        Host {
            id: h.id,
            cluster_id: h.cluster_id,
            uri: h.uri,
            state: h.state,
            vcpus: h.vcpus,
            memory_mib: h.memory_mib,
            vcpus_allocated: h.vcpus_allocated as i32,
            memory_allocated_mib: h.memory_allocated_mib,
            vms: h.vms as i32,
            last_error: h.last_error,
        }
    }
}

/// The hosts of `cluster` (or the one `host`), with their allocation, in one query.
async fn select(tx: &mut Tx, cluster: Uuid, host: Option<Uuid>) -> ApiResult<Vec<Host>> {
    let rows: Vec<HostRow> = sqlx::query_as(
        "SELECT h.id, h.cluster_id, h.uri, h.state, h.vcpus, h.memory_mib, h.last_error,
                coalesce(sum(p.vcpus), 0)::bigint AS vcpus_allocated,
                coalesce(sum(p.memory_mib), 0)::bigint AS memory_allocated_mib,
                count(p.id) AS vms
           FROM hosts h LEFT JOIN placements p ON p.host_id = h.id
          WHERE h.cluster_id = $1 AND ($2::uuid IS NULL OR h.id = $2)
          GROUP BY h.id ORDER BY h.position",
    )
    .bind(cluster)
    .bind(host)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(Host::from).collect())
}

async fn one(tx: &mut Tx, cluster: Uuid, host: Uuid) -> ApiResult<Host> {
    select(tx, cluster, Some(host)).await?.into_iter().next().ok_or(ApiError::NotFound { kind: "host" })
}

/// List a cluster's hosts with capacity and allocation (system scope).
#[utoipa::path(get, operation_id = "clusters_hosts", path = "/v1/clusters/{id}/hosts", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Host>), (status = 404)), security(("bearer" = [])))]
pub async fn list(req: Req, PathId(id): PathId) -> ApiResult<Json<Vec<Host>>> {
    let mut tx = req.tx()?;
    super::clusters::require(&mut tx, id).await?;
    let hosts = select(&mut tx, id, None).await?;
    tx.commit().await?;
    Ok(Json(hosts))
}

/// Read one host of a cluster.
#[utoipa::path(get, operation_id = "hosts_get", path = "/v1/clusters/{id}/hosts/{host_id}", tag = "compute",
    params(("id" = Uuid, Path), ("host_id" = Uuid, Path)), responses((status = 200, body = Host), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathIds(cluster, host): PathIds) -> ApiResult<Json<Host>> {
    let mut tx = req.tx()?;
    let found = one(&mut tx, cluster, host).await?;
    tx.commit().await?;
    Ok(Json(found))
}

/// Drain a host: no new VM is placed on it; the VMs on it stay until moved.
#[utoipa::path(post, operation_id = "hosts_drain", path = "/v1/clusters/{id}/hosts/{host_id}/drain", tag = "compute",
    params(("id" = Uuid, Path), ("host_id" = Uuid, Path)), responses((status = 200, body = Host), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn drain(req: Req, PathIds(cluster, host): PathIds) -> ApiResult<Json<Host>> {
    set_state(req, cluster, host, Transition::Drain).await
}

/// Put a drained host back into service (placement uses it again).
#[utoipa::path(post, operation_id = "hosts_undrain", path = "/v1/clusters/{id}/hosts/{host_id}/undrain", tag = "compute",
    params(("id" = Uuid, Path), ("host_id" = Uuid, Path)), responses((status = 200, body = Host), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn undrain(req: Req, PathIds(cluster, host): PathIds) -> ApiResult<Json<Host>> {
    set_state(req, cluster, host, Transition::Undrain).await
}

#[derive(Clone, Copy)]
enum Transition {
    Drain,
    Undrain,
}

/// Host `host` of `cluster` locked (placement locks a cluster's hosts too, so
/// a state change and a placement never cross), and its state.
async fn lock_state(tx: &mut Tx, cluster: Uuid, host: Uuid) -> ApiResult<String> {
    let state: Option<(String,)> =
        sqlx::query_as("SELECT state FROM hosts WHERE id = $1 AND cluster_id = $2 FOR UPDATE")
            .bind(host)
            .bind(cluster)
            .fetch_optional(&mut **tx)
            .await?;
    state.map(|(s,)| s).ok_or(ApiError::NotFound { kind: "host" })
}

async fn set_state(req: Req, cluster: Uuid, host: Uuid, t: Transition) -> ApiResult<Json<Host>> {
    let mut tx = req.tx()?;
    let before = lock_state(&mut tx, cluster, host).await?;
    let (after, action) = match (t, before.as_str()) {
        (Transition::Drain, "up" | "draining") => ("draining", "host.drain"),
        (Transition::Undrain, "draining" | "up") => ("up", "host.undrain"),
        (_, other) => {
            return Err(ApiError::Conflict {
                code: "host_unreachable",
                message: format!("the host is {other}: the reconciler owns its state until it answers again"),
            })
        }
    };
    if before != after {
        sqlx::query("UPDATE hosts SET state = $2 WHERE id = $1").bind(host).bind(after).execute(&mut *tx).await?;
        let details = json!({ "cluster_id": cluster, "from": before, "to": after });
        audit::record(&mut tx, &req, Event::new(action, "host", Some(host)).details(details)).await?;
    }
    let found = one(&mut tx, cluster, host).await?;
    tx.commit().await?;
    Ok(Json(found))
}

/// Evacuate a host: drain it, then live-migrate every VM on it to the other
/// hosts of the cluster (offline for stopped VMs), one after the other, as the
/// `host.evacuate` operation (202). Each VM moves under a `vm.migrate`
/// operation of its own in its tenant; VMs that cannot move are listed in the
/// operation's error (`evacuation_incomplete`, `details.unmoved`).
#[utoipa::path(post, operation_id = "hosts_evacuate", path = "/v1/clusters/{id}/hosts/{host_id}/evacuate", tag = "compute",
    params(("id" = Uuid, Path), ("host_id" = Uuid, Path)),
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn evacuate(req: Req, PathIds(cluster, host): PathIds) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let before = lock_state(&mut tx, cluster, host).await?;
    if before == "unreachable" {
        return Err(ApiError::Conflict {
            code: "host_unreachable",
            message:
                "the host does not answer, so nothing can migrate off it: the reconciler restarts its VMs elsewhere"
                    .into(),
        });
    }
    let (running,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM operations WHERE kind = 'host.evacuate' AND target_id = $1 AND finished_at IS NULL)",
    )
    .bind(host)
    .fetch_one(&mut *tx)
    .await?;
    if running {
        return Err(ApiError::Conflict {
            code: "evacuation_running",
            message: "this host is already being evacuated; follow that operation".into(),
        });
    }
    sqlx::query("UPDATE hosts SET state = 'draining' WHERE id = $1").bind(host).execute(&mut *tx).await?;
    let params = json!({ "cluster_id": cluster });
    let op = operations::record(&mut tx, None, "host.evacuate", "host", host, req.principal.user_id, params).await?;
    let details = json!({ "cluster_id": cluster, "from": before, "to": "draining", "operation_id": op.id });
    audit::record(&mut tx, &req, Event::new("host.evacuate", "host", Some(host)).details(details)).await?;
    tx.commit().await?;
    let work = Evacuation {
        db: req.state.db.clone(),
        compute: req.state.compute.clone(),
        op: op.id,
        cluster,
        host,
        actor: req.principal.user_id,
    };
    operations::spawn(req.state.db.clone(), None, op.id, "host.evacuate", evacuate::run(work));
    Ok(super::vms::accepted(&op))
}

/// A ratio of promises over capacity, when there is capacity.
fn ratio(promised: i64, capacity: i64) -> Option<f64> {
    (capacity > 0).then(|| promised as f64 / capacity as f64)
}

/// A cluster's capacity (system scope): per host and in total, what the hosts
/// offer, what VMs hold and what is free; and what the quotas on the cluster
/// promise, with the overcommit of those promises over the capacity.
#[utoipa::path(get, operation_id = "clusters_capacity", path = "/v1/clusters/{id}/capacity", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = ClusterCapacity), (status = 404)), security(("bearer" = [])))]
pub async fn capacity(req: Req, PathId(id): PathId) -> ApiResult<Json<ClusterCapacity>> {
    let mut tx = req.tx()?;
    super::clusters::require(&mut tx, id).await?;
    let hosts = select(&mut tx, id, None).await?;
    let quotas: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(vcpus), 0)::bigint, coalesce(sum(memory_mib), 0)::bigint,
                coalesce(sum(max_vms), 0)::bigint, coalesce(sum(vcpus_used), 0)::bigint,
                coalesce(sum(memory_used_mib), 0)::bigint
           FROM quotas WHERE cluster_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let views: Vec<HostCapacityView> = hosts
        .into_iter()
        .map(|h| HostCapacityView {
            host_id: h.id,
            drained: h.state == "draining",
            state: h.state,
            uri: h.uri,
            vcpus_total: h.vcpus.into(),
            vcpus_allocated: h.vcpus_allocated.into(),
            vcpus_free: i64::from(h.vcpus) - i64::from(h.vcpus_allocated),
            memory_mib_total: h.memory_mib,
            memory_mib_allocated: h.memory_allocated_mib,
            memory_mib_free: h.memory_mib - h.memory_allocated_mib,
            vms: h.vms.into(),
        })
        .collect();
    let sum = |f: fn(&HostCapacityView) -> i64, up_only: bool| -> i64 {
        views.iter().filter(|h| !up_only || h.state == "up").map(f).sum()
    };
    let vcpus_total = sum(|h| h.vcpus_total, false);
    let memory_mib_total = sum(|h| h.memory_mib_total, false);
    let (count, quota_vcpus, quota_memory_mib, quota_max_vms, quota_vcpus_used, quota_memory_mib_used) = quotas;
    Ok(Json(ClusterCapacity {
        cluster_id: id,
        vcpus_total,
        vcpus_allocated: sum(|h| h.vcpus_allocated, false),
        vcpus_free: sum(|h| h.vcpus_free, false),
        memory_mib_total,
        memory_mib_allocated: sum(|h| h.memory_mib_allocated, false),
        memory_mib_free: sum(|h| h.memory_mib_free, false),
        vcpus_schedulable_free: sum(|h| h.vcpus_free, true),
        memory_mib_schedulable_free: sum(|h| h.memory_mib_free, true),
        quotas: count,
        quota_vcpus,
        quota_memory_mib,
        quota_max_vms,
        quota_vcpus_used,
        quota_memory_mib_used,
        vcpu_overcommit: ratio(quota_vcpus, vcpus_total),
        memory_overcommit: ratio(quota_memory_mib, memory_mib_total),
        hosts: views,
    }))
}
