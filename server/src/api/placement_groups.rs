//! `/v1/placement-groups`: a tenant's placement groups, each on one cluster.
//! A VM created with `placement_group_id` joins the group, and placement keeps
//! the group's policy: `spread` puts every member on a different host (creates
//! and migrations; see [`crate::compute::vm_work::SpreadGuard`]), and refuses
//! (`placement_group_full`) when no host free of the group's members has room.
//!
//! A group lives in the region of its cluster (federation routes its create by
//! `cluster_id`, like VMs and quotas). A cluster delegate sees and changes only
//! the groups of its clusters; any other group is a 404 to it, like another
//! tenant's. A group with members cannot be deleted (409 `placement_group_in_use`).

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreatePlacementGroup, Page, PlacementGroup, PlacementPolicy, UpdatePlacementGroup};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::Event;
use crate::authz::Permission;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, cluster_id, name, policy, description, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct PlacementGroupRow {
    id: Uuid,
    tenant_id: Uuid,
    cluster_id: Uuid,
    name: String,
    policy: String,
    description: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<PlacementGroupRow> for PlacementGroup {
    fn from(r: PlacementGroupRow) -> PlacementGroup {
        PlacementGroup {
            id: r.id,
            tenant_id: r.tenant_id,
            cluster_id: r.cluster_id,
            name: r.name,
            // The table's CHECK admits only the policies the type knows.
            policy: PlacementPolicy::parse(&r.policy).unwrap_or_default(),
            description: r.description,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A group the caller may see with `permission` (RLS, then its cluster), or 404.
async fn fetch(req: &Req, tx: &mut Tx, id: Uuid, lock: bool, permission: Permission) -> ApiResult<PlacementGroup> {
    let group: PlacementGroup =
        crud::fetch::<PlacementGroupRow, _>(tx, "placement_groups", COLUMNS, id, lock, "placement_group").await?;
    if req.grants.require_on_cluster(Permission::PlacementGroupRead, group.cluster_id).is_err() {
        return Err(ApiError::NotFound { kind: "placement_group" });
    }
    req.grants.require_on_cluster(permission, group.cluster_id)?;
    Ok(group)
}

/// For a VM create: `group` must be a group of the caller's tenant (RLS) on
/// `cluster`; anything else is a 422 naming `placement_group_id`.
pub async fn check_member(req: &Req, tx: &mut Tx, group: Uuid, cluster: Uuid) -> ApiResult<()> {
    let invalid = |message| ApiError::invalid_reference("placement_group_id", message);
    let found = fetch(req, tx, group, false, Permission::PlacementGroupRead)
        .await
        .map_err(|_| invalid("no such placement group"))?;
    if found.cluster_id != cluster {
        return Err(invalid("the placement group is on another cluster than the VM"));
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlacementGroupQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only groups on this cluster.
    pub cluster_id: Option<Uuid>,
}

/// List the tenant's placement groups (a cluster delegate: those on its clusters).
#[utoipa::path(get, operation_id = "placement_groups_list", path = "/v1/placement-groups", tag = "compute", params(PlacementGroupQuery),
    responses((status = 200, body = Page<PlacementGroup>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PlacementGroupQuery>) -> ApiResult<Json<Page<PlacementGroup>>> {
    crud::list_filtered_on_clusters::<PlacementGroupRow, PlacementGroup>(
        &req,
        &PageQuery { limit: q.limit, cursor: q.cursor },
        ("placement_groups", COLUMNS),
        crud::ClusterList::by_cluster(q.cluster_id),
        Permission::PlacementGroupList,
    )
    .await
}

/// Create a placement group on a cluster the tenant holds a quota on. Accepts
/// `Idempotency-Key`.
#[utoipa::path(post, operation_id = "placement_groups_create", path = "/v1/placement-groups", tag = "compute", request_body = CreatePlacementGroup,
    responses((status = 201, body = PlacementGroup), (status = 400), (status = 403), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(
    req: Req,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<CreatePlacementGroup>,
) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let new = crud::OnCluster {
        tenant_id: body.tenant_id,
        cluster_id: body.cluster_id,
        name: &body.name,
        description: body.description.as_deref(),
    };
    let (cluster, description) = crud::check_on_cluster(&req, &mut tx, new, Permission::PlacementGroupCreate).await?;
    let (name, policy) = (body.name.clone(), body.policy.unwrap_or_default());
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: PlacementGroupRow = sqlx::query_as(&format!(
                    "INSERT INTO placement_groups (id, tenant_id, cluster_id, name, policy, description)
                     VALUES ($1, basalt_tenant(), $2, $3, $4, $5) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(cluster)
                .bind(name)
                .bind(policy.as_str())
                .bind(description)
                .fetch_one(&mut **tx)
                .await?;
                Ok(PlacementGroup::from(row))
            })
        },
        |g| Event::new("placement_group.create", "placement_group", Some(g.id)).details(json!({ "after": g })),
    )
    .await
}

/// Read a placement group.
#[utoipa::path(get, operation_id = "placement_groups_get", path = "/v1/placement-groups/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = PlacementGroup), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<PlacementGroup>> {
    let mut tx = req.tx()?;
    let group = fetch(&req, &mut tx, id, false, Permission::PlacementGroupRead).await?;
    tx.commit().await?;
    Ok(Json(group))
}

/// Change a placement group's name or description (its cluster and policy are
/// fixed: members were placed by them). Takes `If-Match`.
#[utoipa::path(patch, operation_id = "placement_groups_update", path = "/v1/placement-groups/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdatePlacementGroup, responses((status = 200, body = PlacementGroup), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdatePlacementGroup>,
) -> ApiResult<Json<PlacementGroup>> {
    validate::rename(body.name.as_deref(), body.description.as_deref())?;
    let mut tx = req.tx()?;
    let before = fetch(&req, &mut tx, id, true, Permission::PlacementGroupUpdate).await?;
    check_version(&if_match, before.version)?;
    let (name, description) = (body.name.as_deref(), body.description.as_deref());
    let what = ("placement_groups", COLUMNS);
    let after = crud::renamed::<PlacementGroupRow, PlacementGroup>(&mut tx, what, id, name, description).await?;
    crud::updated(tx, &req, "placement_group.update", "placement_group", id, &before, after).await
}

/// Delete a placement group; refused (409 `placement_group_in_use`) while VMs belong to it.
#[utoipa::path(delete, operation_id = "placement_groups_delete", path = "/v1/placement-groups/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let before = fetch(&req, &mut tx, id, true, Permission::PlacementGroupDelete).await?;
    check_version(&if_match, before.version)?;
    let (members,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM vms WHERE placement_group_id = $1").bind(id).fetch_one(&mut *tx).await?;
    if members > 0 {
        return Err(ApiError::Conflict {
            code: "placement_group_in_use",
            message: format!("{members} VM(s) still belong to the placement group; delete them first"),
        });
    }
    crud::deleted(tx, &req, "placement_groups", "placement_group.delete", "placement_group", id, &before).await
}
