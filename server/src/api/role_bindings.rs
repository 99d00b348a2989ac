//! `/v1/role-bindings`: who holds which role where, and `POST /v1/authz/check`.
//!
//! A binding grants one role to one user, or to every member of one group (inside
//! a tenant), at one scope object: the system (in the system context), the tenant
//! (in a tenant context), or one cluster of the tenant. Nobody binds a role
//! holding a permission they do not hold themselves, and the last administrator
//! of a context (bound directly, enabled) cannot be removed.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{AuthzCheck, AuthzDecision, CreateRoleBinding, Page, RoleBinding};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{ApiJson, ApiQuery, IdempotencyKey, PageQuery, PathId, Req};
use crate::audit::{self, Event};
use crate::auth::Context;
use crate::authz::{self, Permission, ScopeKind};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};

const COLUMNS: &str = "id, tenant_id, user_id, group_id, role_id, cluster_id, created_at";

#[derive(sqlx::FromRow)]
struct BindingRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    user_id: Option<Uuid>,
    group_id: Option<Uuid>,
    role_id: Uuid,
    cluster_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl From<BindingRow> for RoleBinding {
    fn from(r: BindingRow) -> RoleBinding {
        let scope = match (r.tenant_id, r.cluster_id) {
            (None, _) => "system",
            (Some(_), None) => "tenant",
            (Some(_), Some(_)) => "cluster",
        };
        RoleBinding {
            id: r.id,
            tenant_id: r.tenant_id,
            user_id: r.user_id,
            group_id: r.group_id,
            role_id: r.role_id,
            cluster_id: r.cluster_id,
            scope: scope.to_string(),
            created_at: r.created_at,
        }
    }
}

async fn fetch(tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<RoleBinding> {
    let sql = format!("SELECT {COLUMNS} FROM role_bindings WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    let row: Option<BindingRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.map(RoleBinding::from).ok_or(ApiError::NotFound { kind: "role_binding" })
}

/// The built-in administrator role of a context.
fn admin_role(context: Context) -> Option<Uuid> {
    let name = if context.tenant().is_some() { "tenant-admin" } else { "provider-admin" };
    authz::builtin_role_named(name).map(|r| r.id)
}

/// Refuses a change that would leave the context with no administrator: after
/// removing `removing`, some binding of the admin role must remain (if there was one).
pub async fn ensure_admin_remains(tx: &mut Tx, context: Context, removing: &[Uuid]) -> ApiResult<()> {
    let Some(admin) = admin_role(context) else { return Ok(()) };
    // Lock the admin bindings, so two concurrent removals cannot both pass; a
    // disabled user's binding administers nothing, so it does not count.
    let ids: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT b.id FROM role_bindings b JOIN users u ON u.id = b.user_id
          WHERE b.role_id = $1 AND b.cluster_id IS NULL AND NOT u.disabled FOR UPDATE OF b",
    )
    .bind(admin)
    .fetch_all(&mut **tx)
    .await?;
    let remaining = ids.iter().filter(|(id,)| !removing.contains(id)).count();
    if !ids.is_empty() && remaining == 0 {
        return Err(ApiError::Conflict {
            code: "last_admin",
            message: "this would remove the last administrator of this context; bind another one first".into(),
        });
    }
    Ok(())
}

/// Refuses (403, naming them) unless the caller may hand on every one of
/// `permissions`: nobody grants what they do not hold, whether by binding a role
/// or by adding someone to a group that holds it.
pub fn require_delegable(req: &Req, permissions: &[String]) -> ApiResult<()> {
    let missing: Vec<String> = permissions
        .iter()
        .filter(|name| Permission::from_name(name).is_some_and(|p| !req.grants.delegable(p)))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Escalation { missing })
    }
}

/// The role `role_id` as the caller may grant it at `scope`: visible in the
/// context (404 otherwise), holding only permissions grantable there (422), and
/// nothing the caller could not hand on itself (403 `escalation_refused`). The
/// check of every grant of a role: a binding, or an invitation that makes one.
pub async fn grantable_role(tx: &mut Tx, req: &Req, role_id: Uuid, scope: ScopeKind) -> ApiResult<basalt_client::Role> {
    let role = super::roles::fetch(tx, role_id, false).await?;
    let mut not_grantable = Vec::new();
    for name in &role.permissions {
        if Permission::from_name(name).is_some_and(|p| !p.grantable_within(scope)) {
            not_grantable.push(name.clone());
        }
    }
    if !not_grantable.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "permission_not_grantable",
            message: format!("role {} holds permissions not grantable at {} scope", role.name, scope.as_str()),
            details: json!({ "field": "role_id", "permissions": not_grantable }),
        });
    }
    require_delegable(req, &role.permissions)?;
    Ok(role)
}

/// List the role bindings of the current context.
#[utoipa::path(get, operation_id = "role_bindings_list", path = "/v1/role-bindings", tag = "rbac", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<RoleBinding>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<RoleBinding>>> {
    crud::list::<BindingRow, RoleBinding>(&req, &q, "role_bindings", COLUMNS).await
}

/// Grant a role to a user of the current context. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "role_bindings_create", path = "/v1/role-bindings", tag = "rbac", request_body = CreateRoleBinding,
    responses((status = 201, body = RoleBinding), (status = 403), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateRoleBinding>) -> ApiResult<Response> {
    let tenant = req.check_body_tenant(body.tenant_id)?;
    let scope = match (tenant, body.cluster_id) {
        (None, Some(_)) => {
            return Err(ApiError::Unprocessable {
                code: "invalid_reference",
                message: "cluster-scoped bindings are made inside the cluster's tenant".into(),
                details: json!({ "field": "cluster_id" }),
            })
        }
        (Some(_), Some(_)) => ScopeKind::Cluster,
        (Some(_), None) => ScopeKind::Tenant,
        (None, None) => ScopeKind::System,
    };
    let mut tx = req.tx()?;
    if let Some(cluster) = body.cluster_id {
        // Visible only if the tenant holds a quota on it: RLS answers (in the
        // cluster's region, at a global controller).
        if !crate::federation::proxy::cluster_visible(&req, &mut tx, cluster).await? {
            return Err(ApiError::Unprocessable {
                code: "invalid_reference",
                message: "no such cluster in this tenant (it needs a quota on it)".into(),
                details: json!({ "field": "cluster_id" }),
            });
        }
    }
    // All must be visible in the context: another tenant's user, group or role is a 404.
    match (body.user_id, body.group_id) {
        (Some(user), None) => drop(super::users::fetch(&mut tx, user, false).await?),
        (None, Some(group)) if tenant.is_some() => drop(super::groups::fetch(&mut tx, group, false).await?),
        (None, Some(_)) => {
            return Err(ApiError::Unprocessable {
                code: "invalid_reference",
                message: "groups live inside tenants: bind a group in its tenant's context".into(),
                details: json!({ "field": "group_id" }),
            })
        }
        _ => return Err(ApiError::bad_field("user_id", "give exactly one of user_id and group_id")),
    }
    let role = grantable_role(&mut tx, &req, body.role_id, scope).await?;
    let (user_id, group_id, role_id, role_tenant, role_name, cluster_id) =
        (body.user_id, body.group_id, role.id, role.tenant_id, role.name, body.cluster_id);
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: BindingRow = sqlx::query_as(&format!(
                    "INSERT INTO role_bindings (id, tenant_id, user_id, group_id, role_id, role_tenant_id, cluster_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(tenant)
                .bind(user_id)
                .bind(group_id)
                .bind(role_id)
                .bind(role_tenant)
                .bind(cluster_id)
                .fetch_one(&mut **tx)
                .await?;
                Ok(RoleBinding::from(row))
            })
        },
        |b| {
            Event::new("role_binding.create", "role_binding", Some(b.id))
                .details(json!({ "after": b, "role": role_name }))
        },
    )
    .await
}

/// Read a role binding.
#[utoipa::path(get, operation_id = "role_bindings_get", path = "/v1/role-bindings/{id}", tag = "rbac", params(("id" = Uuid, Path)),
    responses((status = 200, body = RoleBinding), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<RoleBinding>> {
    let mut tx = req.tx()?;
    let binding = fetch(&mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(binding))
}

/// Remove a role binding (never the last administrator's).
#[utoipa::path(delete, operation_id = "role_bindings_delete", path = "/v1/role-bindings/{id}", tag = "rbac", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = fetch(&mut tx, id, true).await?;
    ensure_admin_remains(&mut tx, req.principal.context, &[id]).await?;
    sqlx::query("DELETE FROM role_bindings WHERE id = $1").bind(id).execute(&mut *tx).await?;
    crate::idempotency::forget_object(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &req,
        Event::new("role_binding.delete", "role_binding", Some(id)).details(json!({ "before": current })),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// May the caller do this? Names the binding that grants it, or why not.
#[utoipa::path(post, operation_id = "role_bindings_check", path = "/v1/authz/check", tag = "rbac", request_body = AuthzCheck,
    responses((status = 200, body = AuthzDecision), (status = 422)), security(("bearer" = [])))]
pub async fn check(req: Req, ApiJson(body): ApiJson<AuthzCheck>) -> ApiResult<Json<AuthzDecision>> {
    let Some(permission) = Permission::from_name(&body.permission) else {
        let suggestion = authz::suggest(&body.permission);
        return Err(ApiError::Unprocessable {
            code: "unknown_permission",
            message: match suggestion {
                Some(s) => format!("unknown permission {}; did you mean {s}?", body.permission),
                None => format!("unknown permission {}", body.permission),
            },
            details: json!({ "field": "permission", "suggestion": suggestion }),
        });
    };
    let granted = match body.cluster_id {
        Some(cluster) => req.grants.granting_on_cluster(permission, cluster),
        None => req.grants.granting(permission),
    };
    Ok(Json(AuthzDecision {
        allowed: granted.is_some(),
        permission: permission.name().to_string(),
        binding_id: granted.map(|g| g.binding_id),
        role: granted.map(|g| g.role_name.clone()),
        reason: match granted {
            Some(_) => None,
            None => Some(format!("no role binding grants {} in this context", permission.name())),
        },
    }))
}
