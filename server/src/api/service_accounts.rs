//! `/v1/service-accounts`: identities for pipelines, and their API tokens.
//!
//! A service account is a user of kind `service` with no password: it cannot log
//! in, it authenticates with the API tokens issued here. Being a user, it is
//! granted roles with `POST /v1/role-bindings` (`user_id`) and joins groups like
//! anyone; the user routes see it, but never give it a password.
//!
//! Issuing a token hands out everything the account holds, so it is a grant:
//! refused (403 `escalation_refused`, naming what is missing) unless the caller
//! could bind every permission the account holds itself. Tokens are the
//! ordinary API tokens (`tokens.rs`): secret shown once, SHA-256 at rest,
//! within the tenant's token policy.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use basalt_client::{
    ApiToken, CreateServiceAccount, CreateServiceAccountToken, CreatedApiToken, Page, ServiceAccount,
    UpdateServiceAccount, User, UserKind,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, PathIds, Req};
use super::tokens::{self, Lifetime, Owner};
use crate::audit::Event;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, username AS name, description, disabled, version, created_at, updated_at";
/// The context's service accounts, as a relation `crud` can read like a table.
const ACCOUNTS: &str = "(SELECT * FROM users WHERE kind = 'service') AS service_accounts";
const DESCRIPTION_MAX: usize = 255;

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    name: String,
    description: String,
    disabled: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<AccountRow> for ServiceAccount {
    fn from(r: AccountRow) -> ServiceAccount {
        ServiceAccount {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            description: r.description,
            disabled: r.disabled,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A service account visible in `tx` (404 for a person, or another tenant's).
async fn fetch(tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<ServiceAccount> {
    crud::fetch::<AccountRow, ServiceAccount>(tx, ACCOUNTS, COLUMNS, id, lock, "service_account").await
}

/// List the service accounts of the current context.
#[utoipa::path(get, operation_id = "service_accounts_list", path = "/v1/service-accounts", tag = "service-accounts",
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<ServiceAccount>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<ServiceAccount>>> {
    crud::list::<AccountRow, ServiceAccount>(&req, &q, ACCOUNTS, COLUMNS).await
}

/// Create a service account in the current context. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "service_accounts_create", path = "/v1/service-accounts", tag = "service-accounts",
    request_body = CreateServiceAccount,
    responses((status = 201, body = ServiceAccount), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(
    req: Req,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<CreateServiceAccount>,
) -> ApiResult<Response> {
    validate::username("name", &body.name)?;
    if let Some(d) = &body.description {
        validate::display_text("description", d, DESCRIPTION_MAX)?;
    }
    let tenant = req.check_body_tenant(body.tenant_id)?;
    let (name, description) = (body.name.clone(), body.description.clone().unwrap_or_default());
    crud::create(
        req.tx()?,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: AccountRow = sqlx::query_as(&format!(
                    "INSERT INTO users (id, tenant_id, username, description, kind)
                     VALUES ($1, $2, $3, $4, 'service') RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(tenant)
                .bind(name)
                .bind(description)
                .fetch_one(&mut **tx)
                .await?;
                Ok(ServiceAccount::from(row))
            })
        },
        |a| Event::new("service_account.create", "service_account", Some(a.id)).details(json!({ "after": a })),
    )
    .await
}

/// Read a service account.
#[utoipa::path(get, operation_id = "service_accounts_get", path = "/v1/service-accounts/{id}", tag = "service-accounts",
    params(("id" = Uuid, Path)), responses((status = 200, body = ServiceAccount), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<ServiceAccount>> {
    crud::get::<AccountRow, ServiceAccount>(&req, ACCOUNTS, COLUMNS, id, "service_account").await
}

/// Change a service account's description, or disable it (its tokens stop
/// working at once) and enable it again. Takes `If-Match` with its version.
#[utoipa::path(patch, operation_id = "service_accounts_update", path = "/v1/service-accounts/{id}", tag = "service-accounts",
    params(("id" = Uuid, Path)), request_body = UpdateServiceAccount,
    responses((status = 200, body = ServiceAccount), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateServiceAccount>,
) -> ApiResult<Json<ServiceAccount>> {
    if let Some(d) = &body.description {
        validate::display_text("description", d, DESCRIPTION_MAX)?;
    }
    let mut tx = req.tx()?;
    let before = fetch(&mut tx, id, true).await?;
    check_version(&if_match, before.version)?;
    if body.disabled == Some(true) && !before.disabled {
        // An account bound as the context's administrator stays enabled while it is the last one.
        super::users::admin_remains_without(&mut tx, &req, id).await?;
    }
    let row: AccountRow = sqlx::query_as(&format!(
        "UPDATE users SET description = COALESCE($2, description), disabled = COALESCE($3, disabled),
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.description)
    .bind(body.disabled)
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "service_account.update", "service_account", id, &before, ServiceAccount::from(row)).await
}

/// Delete a service account with its tokens and bindings.
#[utoipa::path(delete, operation_id = "service_accounts_delete", path = "/v1/service-accounts/{id}", tag = "service-accounts",
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let account = account_user(&mut tx, id, true).await?;
    check_version(&if_match, account.version)?;
    super::users::remove(tx, &req, &account, Event::new("service_account.delete", "service_account", Some(id))).await
}

/// The service account `id` as a user (404 unless it is a service account of the context).
async fn account_user(tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<User> {
    match super::users::fetch(tx, id, lock).await {
        Ok(u) if u.kind == UserKind::Service => Ok(u),
        Ok(_) | Err(ApiError::NotFound { .. }) => Err(ApiError::NotFound { kind: "service_account" }),
        Err(e) => Err(e),
    }
}

/// Issue an API token for a service account. Only for a caller who could grant
/// every permission the account holds (403 `escalation_refused` otherwise). The
/// answer holds the secret, once.
#[utoipa::path(post, operation_id = "service_account_tokens_create", path = "/v1/service-accounts/{id}/tokens", tag = "service-accounts",
    params(("id" = Uuid, Path)), request_body = CreateServiceAccountToken,
    responses((status = 201, body = CreatedApiToken), (status = 400), (status = 403), (status = 404)), security(("bearer" = [])))]
pub async fn create_token(
    req: Req,
    PathId(id): PathId,
    ApiJson(body): ApiJson<CreateServiceAccountToken>,
) -> ApiResult<Response> {
    let lifetime = Lifetime::check(&body.name, body.ttl_seconds)?;
    let mut tx = req.tx()?;
    let account = account_user(&mut tx, id, false).await?;
    // Everything the account holds in this context, on any scope object.
    let mut held: Vec<String> =
        super::users::held_grants(&mut tx, id).await?.into_iter().flat_map(|h| h.grant.permissions).collect();
    held.sort();
    held.dedup();
    super::role_bindings::require_delegable(&req, &held)?;
    let owner = Owner { user: id, home: account.tenant_id, context: account.tenant_id };
    let created = tokens::issue(&mut tx, &req, owner, &body.name, lifetime).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// List a service account's API tokens (never their secrets).
#[utoipa::path(get, operation_id = "service_account_tokens_list", path = "/v1/service-accounts/{id}/tokens", tag = "service-accounts",
    params(("id" = Uuid, Path), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<ApiToken>), (status = 404)), security(("bearer" = [])))]
pub async fn list_tokens(
    req: Req,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<ApiToken>>> {
    let mut tx = req.tx()?;
    account_user(&mut tx, id, false).await?;
    tokens::page_of(tx, id, &q).await
}

/// Revoke a service account's API token. Takes effect on the token's next request.
#[utoipa::path(delete, operation_id = "service_account_tokens_revoke", path = "/v1/service-accounts/{id}/tokens/{token_id}", tag = "service-accounts",
    params(("id" = Uuid, Path), ("token_id" = Uuid, Path)), responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn revoke_token(req: Req, PathIds(id, token): PathIds) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    account_user(&mut tx, id, false).await?;
    tokens::revoke_in(&mut tx, &req, req.principal.context.tenant(), id, token).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
