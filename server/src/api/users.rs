//! `/v1/users`: the users of the caller's context. At system scope these are
//! provider staff; inside a tenant, that tenant's users. Passwords are stored as
//! argon2id hashes and never returned; their length follows the tenant policy
//! (`tenant_policy.rs`). Service accounts are users too (kind `service`): these
//! routes read, disable and delete them, but never give one a password.
//!
//! Also here: `POST /v1/users/{id}/unlock` (clears the login throttle) and
//! `GET /v1/users/{id}/permissions` (what a user may do, and why).

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateUser, HeldPermission, Page, UpdateUser, User, UserKind, UserPermissions};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::{self, Event};
use crate::auth::password;
use crate::authz::{GrantRow, Grants, Permission, ScopeKind};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, username, email, disabled, password_hash IS NOT NULL AS has_password, kind, \
                       version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    username: String,
    email: Option<String>,
    disabled: bool,
    has_password: bool,
    kind: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: r.id,
            tenant_id: r.tenant_id,
            username: r.username,
            email: r.email,
            disabled: r.disabled,
            has_password: r.has_password,
            kind: if r.kind == "service" { UserKind::Service } else { UserKind::Human },
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A user visible in `tx`.
pub async fn fetch(tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<User> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    let row: Option<UserRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.map(User::from).ok_or(ApiError::NotFound { kind: "user" })
}

/// List the users of the current context.
#[utoipa::path(get, operation_id = "users_list", path = "/v1/users", tag = "users", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<User>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<User>>> {
    crud::list::<UserRow, User>(&req, &q, "users", COLUMNS).await
}

/// Create a user in the current context. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "users_create", path = "/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateUser>) -> ApiResult<Response> {
    validate::username("username", &body.username)?;
    if let Some(e) = &body.email {
        validate::email("email", e)?;
    }
    let tenant = req.check_body_tenant(body.tenant_id)?;
    let mut tx = req.tx()?;
    if let Some(p) = &body.password {
        super::tenant_policy::Policy::load(&mut tx, tenant).await?.check_password("password", p)?;
    }
    let hash = match &body.password {
        Some(p) => Some(password::hash(p.clone()).await?),
        None => None,
    };
    // The stored request omits the password: only its presence is part of the key.
    let keyed = CreateUser { password: body.password.as_ref().map(|_| String::new()), ..body.clone() };
    let (username, email) = (body.username.clone(), body.email.clone());
    crud::create(
        tx,
        &req,
        &key,
        &keyed,
        move |tx| {
            Box::pin(async move {
                let row: UserRow = sqlx::query_as(&format!(
                    "INSERT INTO users (id, tenant_id, username, email, password_hash)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(tenant)
                .bind(username)
                .bind(email)
                .bind(hash)
                .fetch_one(&mut **tx)
                .await?;
                Ok(User::from(row))
            })
        },
        |user| Event::new("user.create", "user", Some(user.id)).details(json!({ "username": user.username })),
    )
    .await
}

/// Read a user.
#[utoipa::path(get, operation_id = "users_get", path = "/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<User>> {
    let mut tx = req.tx()?;
    let user = fetch(&mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(user))
}

/// Update a user's email, password or disabled flag.
#[utoipa::path(patch, operation_id = "users_update", path = "/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    apply_update(req, id, if_match, body).await
}

/// Disable a user: its credentials stop working at once (not itself; never the
/// last administrator of the context).
#[utoipa::path(post, operation_id = "users_disable", path = "/v1/users/{id}/disable", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn disable(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<Json<User>> {
    apply_update(req, id, if_match, UpdateUser { disabled: Some(true), ..Default::default() }).await
}

/// Enable a disabled user again.
#[utoipa::path(post, operation_id = "users_enable", path = "/v1/users/{id}/enable", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404)), security(("bearer" = [])))]
pub async fn enable(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<Json<User>> {
    apply_update(req, id, if_match, UpdateUser { disabled: Some(false), ..Default::default() }).await
}

async fn apply_update(req: Req, id: Uuid, if_match: IfMatch, body: UpdateUser) -> ApiResult<Json<User>> {
    if let Some(e) = &body.email {
        validate::email("email", e)?;
    }
    if let Some(p) = &body.password {
        // The server's upper bound at once; the tenant's minimum below.
        password::validate_min("password", p, 1)?;
    }
    if body.disabled == Some(true) && id == req.principal.user_id {
        return Err(ApiError::Forbidden("you cannot disable yourself".into()));
    }
    let mut tx = req.tx()?;
    let current = fetch(&mut tx, id, true).await?;
    check_version(&if_match, current.version)?;
    if let Some(p) = &body.password {
        if current.kind == UserKind::Service {
            return Err(ApiError::Unprocessable {
                code: "service_account_password",
                message: "a service account has no password: it authenticates with API tokens".into(),
                details: json!({ "field": "password" }),
            });
        }
        super::tenant_policy::Policy::load(&mut tx, current.tenant_id).await?.check_password("password", p)?;
    }
    let hash = match &body.password {
        Some(p) => Some(password::hash(p.clone()).await?),
        None => None,
    };
    if body.disabled == Some(true) && !current.disabled {
        // A disabled administrator administers nothing: the last one stays enabled.
        admin_remains_without(&mut tx, &req, id).await?;
    }
    let row: UserRow = sqlx::query_as(&format!(
        "UPDATE users SET email = COALESCE($2, email), password_hash = COALESCE($3, password_hash),
                disabled = COALESCE($4, disabled), version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.email)
    .bind(hash)
    .bind(body.disabled)
    .fetch_one(&mut *tx)
    .await?;
    let user = User::from(row);
    audit::record(
        &mut tx,
        &req,
        Event::new("user.update", "user", Some(id)).details(json!({
            "email_changed": body.email.is_some(),
            "password_changed": body.password.is_some(),
            "disabled": user.disabled,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(user))
}

/// Delete a user (and its API tokens).
#[utoipa::path(delete, operation_id = "users_delete", path = "/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = fetch(&mut tx, id, true).await?;
    check_version(&if_match, current.version)?;
    remove(tx, &req, &current, Event::new("user.delete", "user", Some(id))).await
}

/// Refuses (409 `last_admin`) when `user`'s direct bindings hold the last
/// administrator binding of the context: what disabling or deleting it would remove.
pub async fn admin_remains_without(tx: &mut Tx, req: &Req, user: Uuid) -> ApiResult<()> {
    let bindings: Vec<(Uuid,)> =
        sqlx::query_as("SELECT id FROM role_bindings WHERE user_id = $1").bind(user).fetch_all(&mut **tx).await?;
    let bindings: Vec<Uuid> = bindings.into_iter().map(|(b,)| b).collect();
    super::role_bindings::ensure_admin_remains(tx, req.principal.context, &bindings).await
}

/// Deletes `user` (locked in `tx`, its version checked) with its tokens and
/// bindings, never the last administrator; audits `event` with what it was.
pub async fn remove(mut tx: Tx, req: &Req, user: &User, event: Event<'_>) -> ApiResult<StatusCode> {
    let id = user.id;
    if id == req.principal.user_id {
        return Err(ApiError::Forbidden("you cannot delete yourself".into()));
    }
    // The last administrator of the context stays.
    admin_remains_without(&mut tx, req, id).await?;
    // Composite foreign keys do not cascade for system rows (NULL tenant_id), so
    // the user's tokens and bindings go explicitly.
    sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM role_bindings WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
    crate::idempotency::forget_object(&mut tx, id).await?;
    audit::record(&mut tx, req, event.details(json!({ "username": user.username, "before": user }))).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear the failed-login throttle of a user of the context (after a brute-force
/// run against it, so its owner can log in again at once).
#[utoipa::path(post, operation_id = "users_unlock", path = "/v1/users/{id}/unlock", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404)), security(("bearer" = [])))]
pub async fn unlock(req: Req, PathId(id): PathId) -> ApiResult<Json<User>> {
    let mut tx = req.tx()?;
    let user = fetch(&mut tx, id, false).await?;
    // The throttle counts failures per (context, username): the user's own rows,
    // visible in the user's context only.
    let cleared = sqlx::query("DELETE FROM login_failures WHERE tenant_id IS NOT DISTINCT FROM $1 AND username = $2")
        .bind(user.tenant_id)
        .bind(&user.username)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    audit::record(
        &mut tx,
        &req,
        Event::new("user.unlock", "user", Some(id))
            .details(json!({ "username": user.username, "failures_cleared": cleared })),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(user))
}

/// One binding that reaches a user in the caller's context, and the group it
/// was made to (if any).
#[derive(sqlx::FromRow)]
pub struct HeldGrant {
    #[sqlx(flatten)]
    pub grant: GrantRow,
    pub group_id: Option<Uuid>,
}

/// The bindings of `user` in `tx`'s context, made to it or to its groups: what
/// `basalt_enter` answers for the caller itself, read for someone else (RLS keeps
/// it to the context's own bindings and roles).
pub async fn held_grants(tx: &mut Tx, user: Uuid) -> ApiResult<Vec<HeldGrant>> {
    Ok(sqlx::query_as(
        "SELECT b.id AS binding_id, r.id AS role_id, r.name AS role_name, b.cluster_id,
                b.tenant_id IS NULL AS system_binding, r.permissions, b.group_id
           FROM role_bindings b JOIN roles r ON r.id = b.role_id
          WHERE b.user_id = $1 OR b.group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = $1)
          ORDER BY b.id",
    )
    .bind(user)
    .fetch_all(&mut **tx)
    .await?)
}

/// The effective permissions of a user of the context, each with the binding
/// (and group) that grants it: `GET /v1/me`'s answer, for someone else.
#[utoipa::path(get, operation_id = "users_permissions", path = "/v1/users/{id}/permissions", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserPermissions), (status = 404)), security(("bearer" = [])))]
pub async fn permissions(req: Req, PathId(id): PathId) -> ApiResult<Json<UserPermissions>> {
    let mut tx = req.tx()?;
    fetch(&mut tx, id, false).await?;
    let held = held_grants(&mut tx, id).await?;
    tx.commit().await?;
    let group_of = |binding: Uuid| held.iter().find(|h| h.grant.binding_id == binding).and_then(|h| h.group_id);
    let entry = |p: Permission, g: &GrantRow| HeldPermission {
        permission: p.name().to_string(),
        binding_id: g.binding_id,
        role_id: g.role_id,
        role: g.role_name.clone(),
        group_id: group_of(g.binding_id),
        cluster_id: g.cluster_id,
    };
    // The same decision as for the user's own requests in this context.
    let grants = Grants::new(req.principal.context, held.iter().map(|h| h.grant.clone()).collect());
    let permissions = grants.effective().into_iter().filter_map(|p| grants.granting(p).map(|g| entry(p, g))).collect();
    let cluster_permissions = held
        .iter()
        .filter(|h| h.grant.cluster_id.is_some())
        .flat_map(|h| {
            h.grant
                .permissions
                .iter()
                .filter_map(|n| Permission::from_name(n))
                .filter(|p| p.scopes().contains(&ScopeKind::Cluster))
                .map(|p| entry(p, &h.grant))
        })
        .collect();
    Ok(Json(UserPermissions { user_id: id, permissions, cluster_permissions }))
}
