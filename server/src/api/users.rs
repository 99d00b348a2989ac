//! `/v1/users`: the users of the caller's context. At system scope these are
//! provider staff; inside a tenant, that tenant's users. Passwords are stored as
//! argon2id hashes and never returned.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateUser, Page, UpdateUser, User};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::{self, Event};
use crate::auth::password;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str =
    "id, tenant_id, username, email, disabled, password_hash IS NOT NULL AS has_password, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    username: String,
    email: Option<String>,
    disabled: bool,
    has_password: bool,
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
    if let Some(p) = &body.password {
        password::validate("password", p)?;
    }
    let tenant = req.check_body_tenant(body.tenant_id)?;
    let hash = match &body.password {
        Some(p) => Some(password::hash(p.clone()).await?),
        None => None,
    };
    // The stored request omits the password: only its presence is part of the key.
    let keyed = CreateUser { password: body.password.as_ref().map(|_| String::new()), ..body.clone() };
    let (username, email) = (body.username.clone(), body.email.clone());
    crud::create(
        req.tx()?,
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
        password::validate("password", p)?;
    }
    if body.disabled == Some(true) && id == req.principal.user_id {
        return Err(ApiError::Forbidden("you cannot disable yourself".into()));
    }
    let hash = match &body.password {
        Some(p) => Some(password::hash(p.clone()).await?),
        None => None,
    };
    let mut tx = req.tx()?;
    let current = fetch(&mut tx, id, true).await?;
    check_version(&if_match, current.version)?;
    if body.disabled == Some(true) && !current.disabled {
        // A disabled administrator administers nothing: the last one stays enabled.
        let bindings: Vec<(Uuid,)> =
            sqlx::query_as("SELECT id FROM role_bindings WHERE user_id = $1").bind(id).fetch_all(&mut *tx).await?;
        let bindings: Vec<Uuid> = bindings.into_iter().map(|(b,)| b).collect();
        super::role_bindings::ensure_admin_remains(&mut tx, req.principal.context, &bindings).await?;
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
    if id == req.principal.user_id {
        return Err(ApiError::Forbidden("you cannot delete yourself".into()));
    }
    let mut tx = req.tx()?;
    let current = fetch(&mut tx, id, true).await?;
    check_version(&if_match, current.version)?;
    // The last administrator of the context stays.
    let bindings: Vec<(Uuid,)> =
        sqlx::query_as("SELECT id FROM role_bindings WHERE user_id = $1").bind(id).fetch_all(&mut *tx).await?;
    let bindings: Vec<Uuid> = bindings.into_iter().map(|(b,)| b).collect();
    super::role_bindings::ensure_admin_remains(&mut tx, req.principal.context, &bindings).await?;
    // Composite foreign keys do not cascade for system rows (NULL tenant_id), so
    // the user's tokens and bindings go explicitly.
    sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM role_bindings WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
    crate::idempotency::forget_object(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &req,
        Event::new("user.delete", "user", Some(id)).details(json!({ "username": current.username })),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
