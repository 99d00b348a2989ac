//! `/v1/invitations`: let someone create their own user in a context, with an
//! optional role bound at once.
//!
//! The creator names an email and, optionally, a role: only one it could bind
//! itself (the very check of `POST /v1/role-bindings`). The answer holds the
//! secret (`bsi_<id>_<secret>`) once; only its SHA-256 is stored, so a create is
//! not replayed from an `Idempotency-Key` (that would store the secret).
//!
//! `POST /v1/invitations/accept` needs no credential: the invitation is the
//! credential. It is found by id in the auth context (`basalt_lookup_invitation`
//! makes exactly that row visible, as for API tokens), the secret compared in
//! constant time, then redeemed inside the invitation's own context: the user
//! created (its password within the tenant policy), the role bound, the
//! invitation marked accepted, in one transaction that locks the invitation, so
//! it is used once. An unknown, wrong, expired, revoked or used invitation all
//! answer the same 401 and write nothing; wrong secrets for a real invitation
//! count against the login throttle.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use basalt_client::{AcceptInvitation, CreateInvitation, CreatedInvitation, Invitation, Page, User};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{ApiJson, ApiQuery, PageQuery, PathId, Req};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{api_token, password};
use crate::authz::ScopeKind;
use crate::db::{DbScope, Tx};
use crate::error::{ApiError, ApiResult};
use crate::validate;

pub const PREFIX: &str = "bsi_";
const COLUMNS: &str =
    "id, tenant_id, email, role_id, created_by, created_at, expires_at, revoked_at, accepted_at, accepted_user_id";
const DEFAULT_HOURS: i64 = 168;
const MAX_HOURS: i64 = 720;

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    email: String,
    role_id: Option<Uuid>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    accepted_at: Option<DateTime<Utc>>,
    accepted_user_id: Option<Uuid>,
}

impl From<InvitationRow> for Invitation {
    fn from(r: InvitationRow) -> Invitation {
        let state = if r.accepted_at.is_some() {
            "accepted"
        } else if r.revoked_at.is_some() {
            "revoked"
        } else if r.expires_at <= Utc::now() {
            "expired"
        } else {
            "pending"
        };
        Invitation {
            id: r.id,
            tenant_id: r.tenant_id,
            email: r.email,
            role_id: r.role_id,
            state: state.to_string(),
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            accepted_at: r.accepted_at,
            accepted_user_id: r.accepted_user_id,
        }
    }
}

/// List the invitations of the current context (never their secrets).
#[utoipa::path(get, operation_id = "invitations_list", path = "/v1/invitations", tag = "invitations",
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Invitation>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Invitation>>> {
    crud::list::<InvitationRow, Invitation>(&req, &q, "invitations", COLUMNS).await
}

/// Read an invitation.
#[utoipa::path(get, operation_id = "invitations_get", path = "/v1/invitations/{id}", tag = "invitations",
    params(("id" = Uuid, Path)), responses((status = 200, body = Invitation), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Invitation>> {
    crud::get::<InvitationRow, Invitation>(&req, "invitations", COLUMNS, id, "invitation").await
}

/// Invite someone into the current context. With `role_id`, only a role the
/// caller may bind itself (403 `escalation_refused` otherwise). The answer holds
/// the invitation's secret, once.
#[utoipa::path(post, operation_id = "invitations_create", path = "/v1/invitations", tag = "invitations",
    request_body = CreateInvitation,
    responses((status = 201, body = CreatedInvitation), (status = 400), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn create(req: Req, ApiJson(body): ApiJson<CreateInvitation>) -> ApiResult<Response> {
    validate::email("email", &body.email)?;
    let hours = body.expires_in_hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(ApiError::bad_field(
            "expires_in_hours",
            format!("expires_in_hours must be between 1 and {MAX_HOURS}"),
        ));
    }
    let tenant = req.check_body_tenant(body.tenant_id)?;
    let mut tx = req.tx()?;
    if let Some(role) = body.role_id {
        let scope = if tenant.is_some() { ScopeKind::Tenant } else { ScopeKind::System };
        super::role_bindings::grantable_role(&mut tx, &req, role, scope).await?;
    }
    let id = Uuid::now_v7();
    let (secret, digest) = api_token::generate_secret();
    let row: InvitationRow = sqlx::query_as(&format!(
        "INSERT INTO invitations (id, tenant_id, email, role_id, secret_sha256, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(tenant)
    .bind(&body.email)
    .bind(body.role_id)
    .bind(digest)
    .bind(req.principal.user_id)
    .bind(Utc::now() + Duration::hours(hours))
    .fetch_one(&mut *tx)
    .await?;
    let invitation = Invitation::from(row);
    let event = Event::new("invitation.create", "invitation", Some(id)).details(json!({ "after": &invitation }));
    audit::record(&mut tx, &req, event).await?;
    tx.commit().await?;
    let created = CreatedInvitation { invitation, token: api_token::format_secret(PREFIX, id, &secret) };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revoke a pending invitation: it can no longer be accepted (409 when it was
/// already accepted or revoked).
#[utoipa::path(post, operation_id = "invitations_revoke", path = "/v1/invitations/{id}/revoke", tag = "invitations",
    params(("id" = Uuid, Path)), responses((status = 200, body = Invitation), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn revoke(req: Req, PathId(id): PathId) -> ApiResult<Json<Invitation>> {
    let mut tx = req.tx()?;
    let before: Invitation =
        crud::fetch::<InvitationRow, Invitation>(&mut tx, "invitations", COLUMNS, id, true, "invitation").await?;
    if before.accepted_at.is_some() || before.revoked_at.is_some() {
        return Err(ApiError::Conflict {
            code: "invitation_not_pending",
            message: format!("the invitation is already {}", before.state),
        });
    }
    let row: InvitationRow =
        sqlx::query_as(&format!("UPDATE invitations SET revoked_at = now() WHERE id = $1 RETURNING {COLUMNS}"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    crud::updated(tx, &req, "invitation.revoke", "invitation", id, &before, Invitation::from(row)).await
}

#[derive(sqlx::FromRow)]
struct Lookup {
    tenant_id: Option<Uuid>,
    secret_sha256: Vec<u8>,
}

/// The throttle key of an invitation's failed redemptions: no username holds a
/// space or parentheses, so it never counts against a real user.
fn throttle_key(id: Uuid) -> String {
    format!("(invitation {id})")
}

/// Accept an invitation: create one's user in the invitation's context (with its
/// role), no credential needed. Single use; an unknown, expired, revoked or used
/// invitation answers 401 and writes nothing.
#[utoipa::path(post, operation_id = "invitations_accept", path = "/v1/invitations/accept", tag = "invitations",
    request_body = AcceptInvitation,
    responses((status = 201, body = User), (status = 400), (status = 401), (status = 409), (status = 429)))]
pub async fn accept(State(state): State<AppState>, ApiJson(body): ApiJson<AcceptInvitation>) -> ApiResult<Response> {
    let invalid =
        || ApiError::Unauthenticated("the invitation is not valid: unknown, expired, revoked or already used".into());
    let (id, secret) = api_token::parse_secret(PREFIX, &body.token).ok_or_else(invalid)?;
    // Which context: the one row, in the auth context.
    let mut tx = state.db.begin(DbScope::Auth, None, false).await?;
    let found: Option<Lookup> = sqlx::query_as("SELECT tenant_id, secret_sha256 FROM basalt_lookup_invitation($1)")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    let found = found.ok_or_else(invalid)?;
    let scope = found.tenant_id.map_or(DbScope::System, DbScope::Tenant);
    let key = throttle_key(id);
    let mut tx = state.db.begin(scope, None, false).await?;
    super::auth::throttle(&mut tx, found.tenant_id, &key).await?;
    let policy = super::tenant_policy::Policy::load(&mut tx, found.tenant_id).await?;
    tx.commit().await?;
    if !api_token::secret_matches(secret, &found.secret_sha256) {
        super::auth::record_attempt(&state, scope, &key, false).await?;
        return Err(invalid());
    }
    validate::username("username", &body.username)?;
    policy.check_password("password", &body.password)?;
    let hash = password::hash(body.password.clone()).await?;

    // Redeem it in its own context, the invitation locked: used once.
    let mut tx = state.db.begin(scope, None, true).await?;
    let sql = format!("SELECT {COLUMNS} FROM invitations WHERE id = $1 FOR UPDATE");
    let row: Option<InvitationRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut *tx).await?;
    let invitation = row.map(Invitation::from).filter(|i| i.state == "pending").ok_or_else(invalid)?;
    let user = redeem(&mut tx, &invitation, &body.username, hash).await?;
    tx.commit().await?;
    super::auth::record_attempt(&state, scope, &key, true).await?;
    tracing::info!(invitation = %id, user = %user.id, "invitation accepted");
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// Creates the invited user, binds the invitation's role and marks it accepted,
/// in `tx` (the invitation's context); audited in that context's log, by the new user.
async fn redeem(tx: &mut Tx, invitation: &Invitation, username: &str, hash: String) -> ApiResult<User> {
    let user_id = Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, tenant_id, username, email, password_hash) VALUES ($1, $2, $3, $4, $5)")
        .bind(user_id)
        .bind(invitation.tenant_id)
        .bind(username)
        .bind(&invitation.email)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    let mut binding = None;
    if let Some(role_id) = invitation.role_id {
        let role = super::roles::fetch(tx, role_id, false).await?;
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO role_bindings (id, tenant_id, user_id, role_id, role_tenant_id) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(invitation.tenant_id)
        .bind(user_id)
        .bind(role.id)
        .bind(role.tenant_id)
        .execute(&mut **tx)
        .await?;
        binding = Some(id);
    }
    sqlx::query("UPDATE invitations SET accepted_at = now(), accepted_user_id = $2 WHERE id = $1")
        .bind(invitation.id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    let details = json!({
        "user_id": user_id, "username": username, "role_id": invitation.role_id, "role_binding_id": binding,
    });
    let event = Event::new("invitation.accept", "invitation", Some(invitation.id)).details(details);
    audit::record_service(tx, invitation.tenant_id, username, event).await?;
    super::users::fetch(tx, user_id, false).await
}
