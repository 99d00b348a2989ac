//! `/v1/clusters`: sets of libvirt hosts in a region. Provider staff create them
//! (each host is contacted, and its capacity read, as it joins) and see their
//! hosts; a tenant sees only the clusters it holds a quota on, under their alias,
//! without hosts; a cluster delegate sees only its cluster.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{Cluster, CreateCluster, Page, UpdateCluster};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, page, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::Event;
use crate::authz::Permission;
use crate::compute::{valid_host_uri, Compute};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "c.id, c.name, c.alias, r.name AS region, c.version, c.created_at, c.updated_at,
     ARRAY(SELECT h.uri FROM hosts h WHERE h.cluster_id = c.id ORDER BY h.position) AS hosts";
/// Tenant contexts have no privilege on hosts at all.
const TENANT_COLUMNS: &str =
    "c.id, c.name, c.alias, r.name AS region, c.version, c.created_at, c.updated_at, '{}'::text[] AS hosts";
const FROM: &str = "clusters c JOIN regions r ON r.id = c.region_id";

#[derive(sqlx::FromRow)]
struct ClusterRow {
    id: Uuid,
    name: String,
    alias: String,
    region: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    hosts: Vec<String>,
}

/// The caller's view: provider staff see the name and hosts; tenants the alias only.
fn view(req: &Req, r: ClusterRow) -> Cluster {
    let tenant_view = req.principal.context.tenant().is_some();
    Cluster {
        id: r.id,
        name: if tenant_view { r.alias.clone() } else { r.name },
        alias: r.alias,
        region: r.region,
        hosts: if tenant_view { None } else { Some(r.hosts) },
        version: r.version,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn columns(req: &Req) -> &'static str {
    if req.principal.context.tenant().is_some() {
        TENANT_COLUMNS
    } else {
        COLUMNS
    }
}

async fn fetch_row(tx: &mut Tx, id: Uuid) -> ApiResult<ClusterRow> {
    fetch_row_with(tx, id, COLUMNS).await
}

async fn fetch_row_with(tx: &mut Tx, id: Uuid, columns: &str) -> ApiResult<ClusterRow> {
    let row: Option<ClusterRow> = sqlx::query_as(&format!("SELECT {columns} FROM {FROM} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.ok_or(ApiError::NotFound { kind: "cluster" })
}

/// Refuses (404) unless cluster `id` exists and is visible in `tx`.
pub async fn require(tx: &mut Tx, id: Uuid) -> ApiResult<()> {
    fetch_row(tx, id).await.map(drop)
}

/// A cluster visible to the caller (RLS: tenants see the ones they hold a quota on)
/// on which it holds `permission`; 404 otherwise, so nothing else is confirmed.
pub async fn visible(req: &Req, tx: &mut Tx, id: Uuid, permission: Permission) -> ApiResult<Uuid> {
    let (found,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM clusters WHERE id = $1)").bind(id).fetch_one(&mut **tx).await?;
    if !found || req.grants.require_on_cluster(permission, id).is_err() {
        return Err(ApiError::NotFound { kind: "cluster" });
    }
    Ok(id)
}

/// [`visible`] for a cluster a request body names (`cluster_id`): one the caller
/// cannot use is 422 `invalid_reference`; a database failure stays what it is.
pub async fn referenced(req: &Req, tx: &mut Tx, id: Uuid, permission: Permission) -> ApiResult<Uuid> {
    visible(req, tx, id, permission).await.map_err(|e| match e {
        ApiError::NotFound { .. } => ApiError::invalid_reference("cluster_id", "no such cluster (or no quota on it)"),
        other => other,
    })
}

/// Checks a cluster's whole host list (1 to 64 libvirt URIs, none twice; errors
/// name `hosts[i]`) and reads the capacity of the hosts `joining` picks (all of
/// them on create, the new ones on update); a host that cannot be reached is
/// refused, naming it.
async fn probe_hosts(
    compute: &Compute,
    uris: &[String],
    joining: impl Fn(&str) -> bool,
) -> ApiResult<Vec<(String, i32, i64)>> {
    if uris.is_empty() || uris.len() > 64 {
        return Err(ApiError::bad_field("hosts", "a cluster has 1 to 64 hosts"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, uri) in uris.iter().enumerate() {
        let field = format!("hosts[{i}]");
        if !valid_host_uri(uri) {
            return Err(ApiError::bad_field(
                &field,
                "a host is a libvirt URI such as test:///default, qemu:///system or qemu+ssh://host/system",
            ));
        }
        if !seen.insert(uri) {
            return Err(ApiError::bad_field(&field, "a host is listed twice"));
        }
        if !joining(uri) {
            continue;
        }
        let cap = compute.schedulable(uri).await.map_err(|e| ApiError::Unprocessable {
            code: "host_unreachable",
            message: format!("host {uri} could not be reached: {e}"),
            details: json!({ "field": field }),
        })?;
        out.push((uri.clone(), cap.cpus.min(i32::MAX as u32) as i32, cap.memory_mib.min(i64::MAX as u64) as i64));
    }
    Ok(out)
}

async fn insert_hosts(tx: &mut Tx, cluster: Uuid, hosts: &[(String, i32, i64)], first_position: i32) -> ApiResult<()> {
    for (i, (uri, vcpus, mem)) in hosts.iter().enumerate() {
        sqlx::query(
            "INSERT INTO hosts (id, cluster_id, position, uri, vcpus, memory_mib) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(cluster)
        .bind(first_position + i as i32)
        .bind(uri)
        .bind(vcpus)
        .bind(mem)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// List the clusters the caller may see.
#[utoipa::path(get, operation_id = "clusters_list", path = "/v1/clusters", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Cluster>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Cluster>>> {
    let params = q.params()?;
    let only = req.grants.clusters_for(Permission::ClusterList).as_param();
    let mut tx = req.tx()?;
    let rows: Vec<ClusterRow> = sqlx::query_as(&format!(
        "SELECT {} FROM {FROM} WHERE ($1::uuid IS NULL OR c.id > $1) AND ($2::uuid[] IS NULL OR c.id = ANY($2))
          ORDER BY c.id LIMIT $3",
        columns(&req)
    ))
    .bind(params.after)
    .bind(only)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let items = rows.into_iter().map(|r| view(&req, r)).collect();
    Ok(Json(page(items, params, |c: &Cluster| c.id)))
}

/// Create a cluster (system scope): every host must answer. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "clusters_create", path = "/v1/clusters", tag = "compute", request_body = CreateCluster,
    responses((status = 201, body = Cluster), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateCluster>) -> ApiResult<Response> {
    validate::name("name", &body.name)?;
    let alias = body.alias.clone().unwrap_or_else(|| body.name.clone());
    validate::name("alias", &alias)?;
    let hosts = probe_hosts(&req.state.compute, &body.hosts, |_| true).await?;
    let mut tx = req.tx()?;
    let region = match &body.region {
        Some(r) => super::regions::resolve(&mut tx, r).await?.ok_or_else(|| ApiError::Unprocessable {
            code: "invalid_reference",
            message: format!("no region named {r}"),
            details: json!({ "field": "region" }),
        })?,
        None => super::regions::only(&mut tx).await?.ok_or_else(|| ApiError::Unprocessable {
            code: "region_required",
            message: "there are several regions: name the cluster's region".into(),
            details: json!({ "field": "region" }),
        })?,
    };
    let name = body.name.clone();
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let id = Uuid::now_v7();
                sqlx::query("INSERT INTO clusters (id, region_id, name, alias) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(region.id)
                    .bind(name)
                    .bind(alias)
                    .execute(&mut **tx)
                    .await?;
                insert_hosts(tx, id, &hosts, 0).await?;
                let row = fetch_row(tx, id).await?;
                Ok(staff_view(row))
            })
        },
        |c| Event::new("cluster.create", "cluster", Some(c.id)).details(json!({ "after": c })),
    )
    .await
}

/// Provider staff's view (creates and updates happen at system scope only).
fn staff_view(r: ClusterRow) -> Cluster {
    Cluster {
        id: r.id,
        name: r.name,
        alias: r.alias,
        region: r.region,
        hosts: Some(r.hosts),
        version: r.version,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// Read a cluster.
#[utoipa::path(get, operation_id = "clusters_get", path = "/v1/clusters/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Cluster), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Cluster>> {
    let mut tx = req.tx()?;
    visible(&req, &mut tx, id, Permission::ClusterRead).await?;
    let row = fetch_row_with(&mut tx, id, columns(&req)).await?;
    tx.commit().await?;
    Ok(Json(view(&req, row)))
}

/// Change a cluster's alias or hosts (system scope). New hosts must answer;
/// a host leaves only when no VM is placed on it.
#[utoipa::path(patch, operation_id = "clusters_update", path = "/v1/clusters/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateCluster, responses((status = 200, body = Cluster), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateCluster>,
) -> ApiResult<Json<Cluster>> {
    if let Some(a) = &body.alias {
        validate::name("alias", a)?;
    }
    let mut tx = req.tx()?;
    // Lock first, then read: the version checked is the one this update replaces.
    sqlx::query("SELECT id FROM clusters WHERE id = $1 FOR UPDATE").bind(id).execute(&mut *tx).await?;
    let current = fetch_row(&mut tx, id).await?;
    check_version(&if_match, current.version)?;
    if let Some(wanted) = &body.hosts {
        let joining = probe_hosts(&req.state.compute, wanted, |u| !current.hosts.iter().any(|h| h == u)).await?;
        let leaving: Vec<&String> = current.hosts.iter().filter(|u| !wanted.contains(u)).collect();
        let busy: Vec<(String, i64)> = sqlx::query_as(
            "SELECT h.uri, count(*) FROM hosts h JOIN placements p ON p.host_id = h.id
              WHERE h.cluster_id = $1 AND h.uri = ANY($2) GROUP BY h.uri ORDER BY h.uri",
        )
        .bind(id)
        .bind(&leaving)
        .fetch_all(&mut *tx)
        .await?;
        if let Some((uri, placed)) = busy.first() {
            return Err(ApiError::Conflict {
                code: "host_in_use",
                message: format!("host {uri} still runs {placed} VM(s); migrate them first"),
            });
        }
        sqlx::query("DELETE FROM hosts WHERE cluster_id = $1 AND uri = ANY($2)")
            .bind(id)
            .bind(&leaving)
            .execute(&mut *tx)
            .await?;
        insert_hosts(&mut tx, id, &joining, 0).await?;
        // Positions follow the user's list.
        sqlx::query(
            "UPDATE hosts h SET position = w.ord - 1 FROM unnest($2::text[]) WITH ORDINALITY AS w(uri, ord)
              WHERE h.cluster_id = $1 AND h.uri = w.uri",
        )
        .bind(id)
        .bind(wanted)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE clusters SET alias = COALESCE($2, alias), version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&body.alias)
    .execute(&mut *tx)
    .await?;
    let after = staff_view(fetch_row(&mut tx, id).await?);
    crud::updated(tx, &req, "cluster.update", "cluster", id, &staff_view(current), after).await
}

/// Delete a cluster (system scope); refused while a quota or a VM is on it.
#[utoipa::path(delete, operation_id = "clusters_delete", path = "/v1/clusters/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = staff_view(fetch_row(&mut tx, id).await?);
    let (quotas, placed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM quotas WHERE cluster_id = $1),
                (SELECT count(*) FROM placements p JOIN hosts h ON h.id = p.host_id WHERE h.cluster_id = $1)",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if quotas > 0 || placed > 0 {
        return Err(ApiError::Conflict {
            code: "cluster_in_use",
            message: format!("the cluster still has {quotas} quota(s) and {placed} VM(s); remove them first"),
        });
    }
    crud::deleted(tx, &req, "clusters", "cluster.delete", "cluster", id, &current).await
}
