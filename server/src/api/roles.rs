//! `/v1/roles`: custom roles of the caller's context, and the built-in roles.
//!
//! A custom role holds catalog permissions only, grantable where the role lives
//! (a tenant role cannot hold a system permission), and only permissions its
//! author holds: nobody composes a role stronger than themselves. Built-in roles
//! are read-only and kept equal to the catalog by the server.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateRole, Page, Role, UpdateRole};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::{self, Event};
use crate::authz::{self, Grants, Permission, ScopeKind};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, name, description, permissions, builtin, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    name: String,
    description: String,
    permissions: Vec<String>,
    builtin: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<RoleRow> for Role {
    fn from(r: RoleRow) -> Role {
        let mut permissions = r.permissions;
        permissions.sort();
        Role {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            description: r.description,
            permissions,
            builtin: r.builtin,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A role visible in `tx` (the context's own, or a built-in one it may see).
pub async fn fetch(tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<Role> {
    let sql = format!("SELECT {COLUMNS} FROM roles WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    let row: Option<RoleRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.map(Role::from).ok_or(ApiError::NotFound { kind: "role" })
}

/// The most permission names a role may list (the catalog is far smaller; a
/// longer list is a mistake, and every unknown name would be echoed back).
const MAX_PERMISSIONS: usize = 256;

/// Checks a permission list for a role living at `level`, and that its author
/// holds every one of them. Answers the set, deduplicated and sorted.
fn checked_permissions(names: &[String], level: ScopeKind, grants: &Grants) -> ApiResult<Vec<String>> {
    if names.is_empty() || names.len() > MAX_PERMISSIONS {
        return Err(ApiError::bad_field(
            "permissions",
            format!("a role lists 1 to {MAX_PERMISSIONS} permissions (the catalog has {})", Permission::ALL.len()),
        ));
    }
    let mut unknown = Vec::new();
    let mut not_grantable = Vec::new();
    let mut set = std::collections::BTreeSet::new();
    for name in names {
        match Permission::from_name(name) {
            None => unknown.push(name.clone()),
            Some(p) if !p.grantable_within(level) => not_grantable.push(name.clone()),
            Some(p) => {
                set.insert(p);
            }
        }
    }
    if !unknown.is_empty() {
        let suggestions: serde_json::Map<String, serde_json::Value> =
            unknown.iter().filter_map(|u| authz::suggest(u).map(|s| (u.clone(), json!(s)))).collect();
        return Err(ApiError::Unprocessable {
            code: "unknown_permission",
            message: format!("unknown permissions: {} (see GET /v1/permissions)", unknown.join(", ")),
            details: json!({ "field": "permissions", "unknown": unknown, "suggestions": suggestions }),
        });
    }
    if !not_grantable.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "permission_not_grantable",
            message: format!(
                "these permissions cannot be granted at {} scope: {}",
                level.as_str(),
                not_grantable.join(", ")
            ),
            details: json!({ "field": "permissions", "permissions": not_grantable }),
        });
    }
    let missing: Vec<String> = set.iter().filter(|p| !grants.delegable(**p)).map(|p| p.name().to_string()).collect();
    if !missing.is_empty() {
        return Err(ApiError::Escalation { missing });
    }
    Ok(set.into_iter().map(|p| p.name().to_string()).collect())
}

fn level(req: &Req) -> ScopeKind {
    if req.principal.context.tenant().is_some() {
        ScopeKind::Tenant
    } else {
        ScopeKind::System
    }
}

/// List the context's roles and the built-in roles it may bind.
#[utoipa::path(get, operation_id = "roles_list", path = "/v1/roles", tag = "rbac", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Role>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Role>>> {
    crud::list::<RoleRow, Role>(&req, &q, "roles", COLUMNS).await
}

/// Create a custom role. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "roles_create", path = "/v1/roles", tag = "rbac", request_body = CreateRole,
    responses((status = 201, body = Role), (status = 403), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateRole>) -> ApiResult<Response> {
    validate::name("name", &body.name)?;
    let description = body.description.clone().unwrap_or_default();
    validate::description(Some(&description))?;
    let tenant = req.check_body_tenant(body.tenant_id)?;
    let permissions = checked_permissions(&body.permissions, level(&req), &req.grants)?;
    let name = body.name.clone();
    crud::create(
        req.tx()?,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: RoleRow = sqlx::query_as(&format!(
                    "INSERT INTO roles (id, tenant_id, name, description, permissions)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(tenant)
                .bind(name)
                .bind(description)
                .bind(permissions)
                .fetch_one(&mut **tx)
                .await?;
                Ok(Role::from(row))
            })
        },
        |role| Event::new("role.create", "role", Some(role.id)).details(json!({ "after": role })),
    )
    .await
}

/// Read a role.
#[utoipa::path(get, operation_id = "roles_get", path = "/v1/roles/{id}", tag = "rbac", params(("id" = Uuid, Path)),
    responses((status = 200, body = Role), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Role>> {
    let mut tx = req.tx()?;
    let role = fetch(&mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(role))
}

/// Change a custom role's description or permissions (never a built-in role).
#[utoipa::path(patch, operation_id = "roles_update", path = "/v1/roles/{id}", tag = "rbac", params(("id" = Uuid, Path)), request_body = UpdateRole,
    responses((status = 200, body = Role), (status = 403), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateRole>,
) -> ApiResult<Json<Role>> {
    validate::description(body.description.as_deref())?;
    let permissions = match &body.permissions {
        Some(p) => Some(checked_permissions(p, level(&req), &req.grants)?),
        None => None,
    };
    let mut tx = req.tx()?;
    // Built-in roles are visible to tenants but not lockable by them: look first.
    refuse_builtin(&fetch(&mut tx, id, false).await?)?;
    let current = fetch(&mut tx, id, true).await?;
    check_version(&if_match, current.version)?;
    let row: RoleRow = sqlx::query_as(&format!(
        "UPDATE roles SET description = COALESCE($2, description), permissions = COALESCE($3, permissions),
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.description)
    .bind(&permissions)
    .fetch_one(&mut *tx)
    .await?;
    let role = Role::from(row);
    audit::record(
        &mut tx,
        &req,
        Event::new("role.update", "role", Some(id)).details(json!({ "before": current, "after": role })),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(role))
}

/// Delete a custom role that nobody is bound to.
#[utoipa::path(delete, operation_id = "roles_delete", path = "/v1/roles/{id}", tag = "rbac", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    // Built-in roles are visible to tenants but not lockable by them: look first.
    refuse_builtin(&fetch(&mut tx, id, false).await?)?;
    let current = fetch(&mut tx, id, true).await?;
    check_version(&if_match, current.version)?;
    let (bound,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM role_bindings WHERE role_id = $1").bind(id).fetch_one(&mut *tx).await?;
    if bound > 0 {
        return Err(ApiError::Conflict {
            code: "role_in_use",
            message: format!("the role is bound {bound} time(s); remove its bindings first"),
        });
    }
    sqlx::query("DELETE FROM roles WHERE id = $1").bind(id).execute(&mut *tx).await?;
    crate::idempotency::forget_object(&mut tx, id).await?;
    audit::record(&mut tx, &req, Event::new("role.delete", "role", Some(id)).details(json!({ "before": current })))
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn refuse_builtin(role: &Role) -> ApiResult<()> {
    if role.builtin {
        return Err(ApiError::Forbidden(format!("{} is a built-in role and cannot be changed", role.name)));
    }
    Ok(())
}
