//! `/v1/maintenance-windows`: the provider's announced maintenance of one
//! cluster: a title, a description, when it starts and ends (at most a week
//! later), and whether it still holds (`scheduled`, or `cancelled` by an
//! update). Windows are system rows (`tenant_id` pinned NULL) like notices,
//! written by provider staff only; they live in their cluster's region
//! (federation routes a create by `cluster_id`).
//!
//! A tenant reads the windows of the clusters it holds a quota on: the row
//! policy (migration `20261202000014_schedules_maintenance.sql`) says so in the
//! database, so any other window is a 404 and absent from lists. A cluster
//! delegate reads only those of its cluster.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateMaintenanceWindow, MaintenanceState, MaintenanceWindow, Page, UpdateMaintenanceWindow};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::Event;
use crate::authz::Permission;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, cluster_id, title, description, starts_at, ends_at, state, version, created_at, updated_at";
const KIND: &str = "maintenance_window";
/// The longest window.
const MAX_DAYS: i64 = 7;

#[derive(sqlx::FromRow)]
struct WindowRow {
    id: Uuid,
    cluster_id: Uuid,
    title: String,
    description: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    state: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<WindowRow> for MaintenanceWindow {
    fn from(r: WindowRow) -> MaintenanceWindow {
        MaintenanceWindow {
            id: r.id,
            cluster_id: r.cluster_id,
            title: r.title,
            description: r.description,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            // The table's CHECK admits only the states the type knows.
            state: MaintenanceState::parse(&r.state).unwrap_or_default(),
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `ends_at` after `starts_at`, at most [`MAX_DAYS`] later.
fn check_window(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> ApiResult<()> {
    if ends_at <= starts_at {
        return Err(ApiError::bad_field("ends_at", "ends_at must be after starts_at"));
    }
    if ends_at - starts_at > chrono::Duration::days(MAX_DAYS) {
        return Err(ApiError::bad_field("ends_at", "a maintenance window lasts at most 7 days"));
    }
    Ok(())
}

fn check_text(title: Option<&str>, description: Option<&str>) -> ApiResult<()> {
    title.map_or(Ok(()), super::notices::check_title)?;
    validate::description(description)
}

/// A window the caller may see with `permission` (RLS, then its cluster), or 404.
async fn fetch(req: &Req, tx: &mut Tx, id: Uuid, lock: bool, permission: Permission) -> ApiResult<MaintenanceWindow> {
    crud::fetch_on_cluster::<WindowRow, MaintenanceWindow>(
        req,
        tx,
        ("maintenance_windows", COLUMNS, KIND),
        id,
        lock,
        permission,
        |w| w.cluster_id,
    )
    .await
}

/// List maintenance windows (a tenant: of the clusters it holds a quota on; a
/// cluster delegate: of its cluster).
#[utoipa::path(get, operation_id = "maintenance_windows_list", path = "/v1/maintenance-windows", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<MaintenanceWindow>), (status = 400)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<MaintenanceWindow>>> {
    crud::list_on_clusters::<WindowRow, MaintenanceWindow>(
        &req,
        &q,
        "maintenance_windows",
        COLUMNS,
        Permission::MaintenanceWindowList,
    )
    .await
}

/// Announce a maintenance window on a cluster (system scope). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "maintenance_windows_create", path = "/v1/maintenance-windows", tag = "compute", request_body = CreateMaintenanceWindow,
    responses((status = 201, body = MaintenanceWindow), (status = 400), (status = 422)), security(("bearer" = [])))]
pub async fn create(
    req: Req,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<CreateMaintenanceWindow>,
) -> ApiResult<Response> {
    check_text(Some(&body.title), body.description.as_deref())?;
    check_window(body.starts_at, body.ends_at)?;
    let mut tx = req.tx()?;
    let cluster = super::clusters::referenced(&req, &mut tx, body.cluster_id, Permission::ClusterRead).await?;
    let (b, actor) = (body.clone(), req.principal.user_id);
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: WindowRow = sqlx::query_as(&format!(
                    "INSERT INTO maintenance_windows (id, cluster_id, title, description, starts_at, ends_at, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(cluster)
                .bind(&b.title)
                .bind(b.description.unwrap_or_default())
                .bind(b.starts_at)
                .bind(b.ends_at)
                .bind(actor)
                .fetch_one(&mut **tx)
                .await?;
                Ok(MaintenanceWindow::from(row))
            })
        },
        |w| Event::new("maintenance_window.create", KIND, Some(w.id)).details(json!({ "after": w })),
    )
    .await
}

/// Read a maintenance window.
#[utoipa::path(get, operation_id = "maintenance_windows_get", path = "/v1/maintenance-windows/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = MaintenanceWindow), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<MaintenanceWindow>> {
    let mut tx = req.tx()?;
    let window = fetch(&req, &mut tx, id, false, Permission::MaintenanceWindowRead).await?;
    tx.commit().await?;
    Ok(Json(window))
}

/// Change a maintenance window (system scope): its text, its times, or cancel
/// it (`state: cancelled`). Takes `If-Match`.
#[utoipa::path(patch, operation_id = "maintenance_windows_update", path = "/v1/maintenance-windows/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateMaintenanceWindow, responses((status = 200, body = MaintenanceWindow), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateMaintenanceWindow>,
) -> ApiResult<Json<MaintenanceWindow>> {
    check_text(body.title.as_deref(), body.description.as_deref())?;
    let mut tx = req.tx()?;
    let current = fetch(&req, &mut tx, id, true, Permission::MaintenanceWindowUpdate).await?;
    check_version(&if_match, current.version)?;
    let (starts_at, ends_at) = (body.starts_at.unwrap_or(current.starts_at), body.ends_at.unwrap_or(current.ends_at));
    check_window(starts_at, ends_at)?;
    let row: WindowRow = sqlx::query_as(&format!(
        "UPDATE maintenance_windows SET title = COALESCE($2, title), description = COALESCE($3, description),
                starts_at = $4, ends_at = $5, state = COALESCE($6, state), version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.title)
    .bind(&body.description)
    .bind(starts_at)
    .bind(ends_at)
    .bind(body.state.map(MaintenanceState::as_str))
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "maintenance_window.update", KIND, id, &current, MaintenanceWindow::from(row)).await
}

/// Delete a maintenance window (system scope).
#[utoipa::path(delete, operation_id = "maintenance_windows_delete", path = "/v1/maintenance-windows/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = fetch(&req, &mut tx, id, true, Permission::MaintenanceWindowDelete).await?;
    check_version(&if_match, current.version)?;
    crud::deleted(tx, &req, "maintenance_windows", "maintenance_window.delete", KIND, id, &current).await
}
