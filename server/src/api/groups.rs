//! `/v1/groups`: a tenant's teams. A role bound to a group (`POST
//! /v1/role-bindings` with `group_id`) is held by every member, at the binding's
//! scope. Groups live inside a tenant only (provider staff bind users directly).
//!
//! Adding a member hands that user every role bound to the group, so it is a
//! grant like a binding: the caller must hold (delegably) every permission those
//! roles hold. The last-administrator rule counts direct bindings only, so
//! membership changes never strand a tenant.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateGroup, Group, GroupMember, Page, UpdateGroup};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, PathIds, Req};
use crate::audit::{self, Event};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, name, description, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    description: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<GroupRow> for Group {
    fn from(r: GroupRow) -> Group {
        Group {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            description: r.description,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A group visible in `tx` (the context's own).
pub async fn fetch(tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<Group> {
    crud::fetch::<GroupRow, Group>(tx, "groups", COLUMNS, id, lock, "group").await
}

/// List the groups of the current tenant.
#[utoipa::path(get, operation_id = "groups_list", path = "/v1/groups", tag = "rbac", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Group>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Group>>> {
    crud::list::<GroupRow, Group>(&req, &q, "groups", COLUMNS).await
}

/// Create a group in the current tenant. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "groups_create", path = "/v1/groups", tag = "rbac", request_body = CreateGroup,
    responses((status = 201, body = Group), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateGroup>) -> ApiResult<Response> {
    validate::name("name", &body.name)?;
    let description = body.description.clone().unwrap_or_default();
    validate::description(Some(&description))?;
    // `group:create` is grantable inside tenants only, so the context has one.
    let tenant = req
        .check_body_tenant(body.tenant_id)?
        .ok_or_else(|| ApiError::internal("group:create passed the choke point at system scope"))?;
    let name = body.name.clone();
    crud::create(
        req.tx()?,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: GroupRow = sqlx::query_as(&format!(
                    "INSERT INTO groups (id, tenant_id, name, description) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(tenant)
                .bind(name)
                .bind(description)
                .fetch_one(&mut **tx)
                .await?;
                Ok(Group::from(row))
            })
        },
        |g| Event::new("group.create", "group", Some(g.id)).details(json!({ "after": g })),
    )
    .await
}

/// Read a group.
#[utoipa::path(get, operation_id = "groups_get", path = "/v1/groups/{id}", tag = "rbac", params(("id" = Uuid, Path)),
    responses((status = 200, body = Group), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Group>> {
    crud::get::<GroupRow, Group>(&req, "groups", COLUMNS, id, "group").await
}

/// Change a group's description.
#[utoipa::path(patch, operation_id = "groups_update", path = "/v1/groups/{id}", tag = "rbac", params(("id" = Uuid, Path)), request_body = UpdateGroup,
    responses((status = 200, body = Group), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateGroup>,
) -> ApiResult<Json<Group>> {
    validate::description(body.description.as_deref())?;
    let mut tx = req.tx()?;
    let before = fetch(&mut tx, id, true).await?;
    check_version(&if_match, before.version)?;
    let row: GroupRow = sqlx::query_as(&format!(
        "UPDATE groups SET description = COALESCE($2, description), version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.description)
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "group.update", "group", id, &before, Group::from(row)).await
}

/// Delete a group, with its memberships and the role bindings made to it.
#[utoipa::path(delete, operation_id = "groups_delete", path = "/v1/groups/{id}", tag = "rbac", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let before = fetch(&mut tx, id, true).await?;
    check_version(&if_match, before.version)?;
    crud::deleted(tx, &req, "groups", "group.delete", "group", id, &before).await
}

/// List a group's members.
#[utoipa::path(get, operation_id = "groups_members", path = "/v1/groups/{id}/members", tag = "rbac", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<GroupMember>), (status = 404)), security(("bearer" = [])))]
pub async fn members(req: Req, PathId(id): PathId) -> ApiResult<Json<Vec<GroupMember>>> {
    let mut tx = req.tx()?;
    fetch(&mut tx, id, false).await?;
    let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT u.id, u.username, m.created_at FROM group_members m JOIN users u ON u.id = m.user_id
          WHERE m.group_id = $1 ORDER BY u.username",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(
        rows.into_iter().map(|(user_id, username, added_at)| GroupMember { user_id, username, added_at }).collect(),
    ))
}

/// Add a user of the tenant to a group (idempotent). The caller must hold every
/// permission of the roles bound to the group: adding a member is granting them.
#[utoipa::path(put, operation_id = "groups_add_member", path = "/v1/groups/{id}/members/{user_id}", tag = "rbac",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub async fn add_member(req: Req, PathIds(group, user): PathIds) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let g = fetch(&mut tx, group, true).await?;
    super::users::fetch(&mut tx, user, false).await?;
    let (held,): (Vec<String>,) = sqlx::query_as(
        "SELECT coalesce(array_agg(DISTINCT p), '{}') FROM role_bindings b JOIN roles r ON r.id = b.role_id,
                LATERAL unnest(r.permissions) AS p
          WHERE b.group_id = $1",
    )
    .bind(group)
    .fetch_one(&mut *tx)
    .await?;
    super::role_bindings::require_delegable(&req, &held)?;
    let added = sqlx::query(
        "INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(g.tenant_id)
    .bind(group)
    .bind(user)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added > 0 {
        let details = json!({ "user_id": user, "permissions": held });
        audit::record(&mut tx, &req, Event::new("group.add_member", "group", Some(group)).details(details)).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user from a group.
#[utoipa::path(delete, operation_id = "groups_remove_member", path = "/v1/groups/{id}/members/{user_id}", tag = "rbac",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn remove_member(req: Req, PathIds(group, user): PathIds) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    fetch(&mut tx, group, true).await?;
    let removed = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(group)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(ApiError::NotFound { kind: "group_member" });
    }
    audit::record(
        &mut tx,
        &req,
        Event::new("group.remove_member", "group", Some(group)).details(json!({ "user_id": user })),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
