//! `/v1/tokens`: a user's own long-lived API tokens. The secret is returned once,
//! at creation; only its SHA-256 is stored. Tokens live with their owner (system
//! rows for provider staff, tenant rows for tenant users), so these routes work in
//! the owner's home scope whatever tenant the caller has switched into.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use basalt_client::{ApiToken, CreateApiToken, CreatedApiToken, Page};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::extract::{page, ApiJson, ApiQuery, PageQuery, PathId, PathIds, Req};
use crate::audit::{self, Event};
use crate::auth::api_token;
use crate::db::{DbScope, Tx};
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, user_id, name, context_tenant_id, created_at, expires_at, revoked_at, last_used_at";
const MAX_TTL_SECONDS: i64 = 2 * 366 * 24 * 3600;

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    user_id: Uuid,
    name: String,
    context_tenant_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<TokenRow> for ApiToken {
    fn from(r: TokenRow) -> ApiToken {
        ApiToken {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            tenant_id: r.context_tenant_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// A transaction in the caller's home scope, where its token rows live.
async fn begin_home(req: &Req, mutating: bool) -> ApiResult<Tx> {
    let scope = match req.principal.home_tenant {
        Some(t) => DbScope::Tenant(t),
        None => DbScope::System,
    };
    Ok(req.state.db.begin(scope, Some(req.principal.user_id), mutating).await?)
}

/// List the caller's API tokens (never their secrets).
#[utoipa::path(get, operation_id = "tokens_list", path = "/v1/tokens", tag = "tokens", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<ApiToken>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<ApiToken>>> {
    let tx = begin_home(&req, false).await?;
    page_of(tx, req.principal.user_id, &q).await
}

/// One page of `user`'s tokens visible in `tx`, which it commits.
pub async fn page_of(mut tx: Tx, user: Uuid, q: &PageQuery) -> ApiResult<Json<Page<ApiToken>>> {
    let params = q.params()?;
    let rows: Vec<TokenRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    ))
    .bind(user)
    .bind(params.after)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(ApiToken::from).collect(), params, |t| t.id)))
}

/// List the API tokens of a user of the current context (an administrator's
/// view, for offboarding or a leaked secret; never the secrets).
#[utoipa::path(get, operation_id = "user_tokens_list", path = "/v1/users/{id}/tokens", tag = "tokens",
    params(("id" = Uuid, Path), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<ApiToken>), (status = 404)), security(("bearer" = [])))]
pub async fn list_of_user(
    req: Req,
    PathId(user): PathId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<ApiToken>>> {
    let mut tx = req.tx()?;
    super::users::fetch(&mut tx, user, false).await?;
    page_of(tx, user, &q).await
}

/// Revoke an API token of a user of the current context. Takes effect on the
/// token's next request.
#[utoipa::path(delete, operation_id = "user_tokens_revoke", path = "/v1/users/{id}/tokens/{token_id}", tag = "tokens",
    params(("id" = Uuid, Path), ("token_id" = Uuid, Path)), responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn revoke_of_user(req: Req, PathIds(user, token): PathIds) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    super::users::fetch(&mut tx, user, false).await?;
    revoke_in(&mut tx, &req, req.principal.context.tenant(), user, token).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read one of the caller's API tokens (never its secret).
#[utoipa::path(get, operation_id = "tokens_get", path = "/v1/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 200, body = ApiToken), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<ApiToken>> {
    let mut tx = begin_home(&req, false).await?;
    let row: Option<TokenRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1 AND user_id = $2"))
            .bind(id)
            .bind(req.principal.user_id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    row.map(|r| Json(ApiToken::from(r))).ok_or(ApiError::NotFound { kind: "api_token" })
}

/// Create an API token for the caller. The answer holds the secret, once.
#[utoipa::path(post, operation_id = "tokens_create", path = "/v1/tokens", tag = "tokens", request_body = CreateApiToken,
    responses((status = 201, body = CreatedApiToken), (status = 400), (status = 404)), security(("bearer" = [])))]
pub async fn create(req: Req, ApiJson(body): ApiJson<CreateApiToken>) -> ApiResult<Response> {
    let lifetime = Lifetime::check(&body.name, body.ttl_seconds)?;
    let context = token_context(&req, body.tenant.as_deref()).await?;
    let mut tx = begin_home(&req, true).await?;
    let owner = Owner { user: req.principal.user_id, home: req.principal.home_tenant, context };
    let created = issue(&mut tx, &req, owner, &body.name, lifetime).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// A token's name and lifetime, checked against the server's bounds.
pub struct Lifetime {
    ttl_seconds: Option<i64>,
}

impl Lifetime {
    /// Refuses (400 naming the field) a bad name or a lifetime out of 60 s to 2 years.
    pub fn check(name: &str, ttl_seconds: Option<i64>) -> ApiResult<Lifetime> {
        validate::name("name", name)?;
        match ttl_seconds {
            Some(s) if !(60..=MAX_TTL_SECONDS).contains(&s) => {
                Err(ApiError::bad_field("ttl_seconds", format!("ttl_seconds must be between 60 and {MAX_TTL_SECONDS}")))
            }
            _ => Ok(Lifetime { ttl_seconds }),
        }
    }
}

/// Whose token: the user, its home tenant (where the row lives), and the
/// context the token acts in.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub user: Uuid,
    pub home: Option<Uuid>,
    pub context: Option<Uuid>,
}

/// Issues a token for `owner` in `tx` (a transaction in the owner's home
/// context): within the home tenant's policy on token lifetimes, the secret
/// stored as its SHA-256 only, audited in the home tenant's log. Answers the
/// token with its secret, once.
pub async fn issue(tx: &mut Tx, req: &Req, owner: Owner, name: &str, lifetime: Lifetime) -> ApiResult<CreatedApiToken> {
    super::tenant_policy::Policy::load(tx, owner.home).await?.check_token_ttl("ttl_seconds", lifetime.ttl_seconds)?;
    let expires_at = lifetime.ttl_seconds.map(|s| Utc::now() + Duration::seconds(s));
    let id = Uuid::now_v7();
    let (secret, digest) = api_token::generate_secret();
    let row: TokenRow = sqlx::query_as(&format!(
        "INSERT INTO api_tokens (id, tenant_id, user_id, context_tenant_id, name, secret_sha256, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(owner.home)
    .bind(owner.user)
    .bind(owner.context)
    .bind(name)
    .bind(digest)
    .bind(expires_at)
    .fetch_one(&mut **tx)
    .await?;
    audit::record_in(
        tx,
        owner.home,
        req,
        Event::new("token.create", "api_token", Some(id))
            .details(json!({ "name": name, "user_id": owner.user, "context_tenant_id": owner.context })),
    )
    .await?;
    Ok(CreatedApiToken { token: ApiToken::from(row), secret: api_token::format_token(id, &secret) })
}

/// The tenant context a new token carries. Tenant users: their own tenant only.
/// Provider staff: system scope, or any live tenant they name.
async fn token_context(req: &Req, tenant: Option<&str>) -> ApiResult<Option<Uuid>> {
    match (req.principal.home_tenant, tenant) {
        (Some(home), None) => Ok(Some(home)),
        (Some(home), Some(ident)) => {
            if ident == home.to_string() {
                return Ok(Some(home));
            }
            let mut tx = req.state.db.begin(DbScope::Tenant(home), Some(req.principal.user_id), false).await?;
            let own = super::tenants::resolve(&mut tx, ident).await?;
            tx.commit().await?;
            match own {
                Some(t) if t.id == home => Ok(Some(home)),
                _ => Err(ApiError::NotFound { kind: "tenant" }),
            }
        }
        (None, None) => Ok(None),
        (None, Some(ident)) => {
            let mut tx = req.state.db.begin(DbScope::System, Some(req.principal.user_id), false).await?;
            let found = super::tenants::resolve(&mut tx, ident).await?;
            tx.commit().await?;
            found.map(|t| Some(t.id)).ok_or(ApiError::NotFound { kind: "tenant" })
        }
    }
}

/// Revoke one of the caller's API tokens. Takes effect on the next request.
#[utoipa::path(delete, operation_id = "tokens_revoke", path = "/v1/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn revoke(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = begin_home(&req, true).await?;
    revoke_in(&mut tx, &req, req.principal.home_tenant, req.principal.user_id, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes `user`'s token `id` (404 unless it is a live token of that user
/// visible in `tx`), audited in the log of `tenant`.
pub async fn revoke_in(tx: &mut Tx, req: &Req, tenant: Option<Uuid>, user: Uuid, id: Uuid) -> ApiResult<()> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL")
            .bind(id)
            .bind(user)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    if done == 0 {
        return Err(ApiError::NotFound { kind: "api_token" });
    }
    let event = Event::new("token.revoke", "api_token", Some(id)).details(json!({ "user_id": user }));
    audit::record_in(tx, tenant, req, event).await
}
