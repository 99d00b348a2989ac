//! `/v1/quota-requests`: a tenant asks its provider for capacity on a cluster it
//! can see (it holds a quota there), with the limits it wants and why; provider
//! staff list the pending requests of every tenant and approve one (the tenant's
//! quota on the cluster becomes the requested figures, created or updated with
//! the checks of `PATCH /v1/quotas`, in the same transaction) or reject it with a
//! reason. The tenant may cancel its request while it is pending. A decided
//! request never changes again (409 `request_decided`), and one request per
//! tenant and cluster is pending at a time.
//!
//! Like quotas, requests are a tenant's rows that the system context reads and
//! updates across tenants (migration `20261202000011_provider_ops.sql`); they
//! live in the cluster's region. A tenant cannot approve its own request: the
//! decisions are system-scope permissions, which no tenant role can hold.

use axum::response::Response;
use axum::Json;
use basalt_client::{CreateQuotaRequest, DecideQuotaRequest, Page, QuotaRequest, QuotaRequestState};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{page, ApiJson, ApiQuery, IdempotencyKey, OptionalJson, PageQuery, PathId, Req};
use crate::audit::{self, Event};
use crate::authz::Permission;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, cluster_id, vcpus, memory_mib, max_vms, reason, state, requested_by, decided_by,
     decision_reason, decided_at, quota_id, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: Uuid,
    tenant_id: Uuid,
    cluster_id: Uuid,
    vcpus: i32,
    memory_mib: i64,
    max_vms: i32,
    reason: String,
    state: String,
    requested_by: Uuid,
    decided_by: Option<Uuid>,
    decision_reason: String,
    decided_at: Option<DateTime<Utc>>,
    quota_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<RequestRow> for QuotaRequest {
    fn from(r: RequestRow) -> QuotaRequest {
        QuotaRequest {
            id: r.id,
            tenant_id: r.tenant_id,
            cluster_id: r.cluster_id,
            vcpus: r.vcpus,
            memory_mib: r.memory_mib,
            max_vms: r.max_vms,
            reason: r.reason,
            state: QuotaRequestState::parse(&r.state).unwrap_or(QuotaRequestState::Cancelled),
            requested_by: r.requested_by,
            decided_by: r.decided_by,
            decision_reason: r.decision_reason,
            decided_at: r.decided_at,
            quota_id: r.quota_id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const MAX_REASON: usize = 1000;

/// A request the caller may see (RLS, then `permission` on its cluster for a
/// cluster delegate), optionally locked; 404 otherwise.
async fn fetch(req: &Req, tx: &mut Tx, id: Uuid, lock: bool, permission: Permission) -> ApiResult<QuotaRequest> {
    let found: QuotaRequest =
        crud::fetch::<RequestRow, _>(tx, "quota_requests", COLUMNS, id, lock, "quota request").await?;
    if req.grants.require_on_cluster(permission, found.cluster_id).is_err() {
        return Err(ApiError::NotFound { kind: "quota request" });
    }
    Ok(found)
}

/// A pending request, locked, for a state change; a decided one is a 409.
async fn pending(req: &Req, tx: &mut Tx, id: Uuid, permission: Permission) -> ApiResult<QuotaRequest> {
    let found = fetch(req, tx, id, true, permission).await?;
    if found.state != QuotaRequestState::Pending {
        return Err(ApiError::Conflict {
            code: "request_decided",
            message: format!("the request is already {}", found.state.as_str()),
        });
    }
    Ok(found)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QuotaRequestQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only requests in this state (`pending`, `approved`, `rejected`, `cancelled`).
    pub state: Option<String>,
    /// Only this tenant's requests (provider staff).
    pub tenant_id: Option<Uuid>,
    /// Only requests for this cluster.
    pub cluster_id: Option<Uuid>,
}

/// List quota requests: every tenant's at system scope, the tenant's own inside it.
#[utoipa::path(get, operation_id = "quota_requests_list", path = "/v1/quota-requests", tag = "compute", params(QuotaRequestQuery),
    responses((status = 200, body = Page<QuotaRequest>), (status = 400)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<QuotaRequestQuery>) -> ApiResult<Json<Page<QuotaRequest>>> {
    let params = PageQuery { limit: q.limit, cursor: q.cursor }.params()?;
    let state =
        match q.state.as_deref() {
            None => None,
            Some(s) => Some(QuotaRequestState::parse(s).ok_or_else(|| {
                ApiError::bad_field("state", "state must be pending, approved, rejected or cancelled")
            })?),
        };
    let only = req.grants.clusters_for(Permission::QuotaRequestList).as_param();
    let mut tx = req.tx()?;
    let rows: Vec<RequestRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM quota_requests
          WHERE ($1::uuid IS NULL OR id > $1) AND ($2::text IS NULL OR state = $2)
            AND ($3::uuid IS NULL OR tenant_id = $3) AND ($4::uuid IS NULL OR cluster_id = $4)
            AND ($5::uuid[] IS NULL OR cluster_id = ANY($5))
          ORDER BY id LIMIT $6"
    ))
    .bind(params.after)
    .bind(state.map(|s| s.as_str()))
    .bind(q.tenant_id)
    .bind(q.cluster_id)
    .bind(only)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(QuotaRequest::from).collect(), params, |r: &QuotaRequest| r.id)))
}

/// Ask for capacity on a cluster the tenant can see: the limits wanted (as on a
/// quota) and why. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "quota_requests_create", path = "/v1/quota-requests", tag = "compute", request_body = CreateQuotaRequest,
    responses((status = 201, body = QuotaRequest), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateQuotaRequest>) -> ApiResult<Response> {
    super::quotas::check_limits(Some(body.vcpus), Some(body.memory_mib), Some(body.max_vms))?;
    validate::display_text("reason", &body.reason, MAX_REASON)?;
    let mut tx = req.tx()?;
    let cluster = super::clusters::referenced(&req, &mut tx, body.cluster_id, Permission::QuotaRequestCreate).await?;
    let (b, actor) = (body.clone(), req.principal.user_id);
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: RequestRow = sqlx::query_as(&format!(
                    "INSERT INTO quota_requests (id, tenant_id, cluster_id, vcpus, memory_mib, max_vms, reason, requested_by)
                     VALUES ($1, basalt_tenant(), $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(cluster)
                .bind(b.vcpus)
                .bind(b.memory_mib)
                .bind(b.max_vms)
                .bind(&b.reason)
                .bind(actor)
                .fetch_one(&mut **tx)
                .await?;
                Ok(QuotaRequest::from(row))
            })
        },
        |r| Event::new("quota_request.create", "quota_request", Some(r.id)).details(json!({ "after": r })),
    )
    .await
}

/// Read a quota request.
#[utoipa::path(get, operation_id = "quota_requests_get", path = "/v1/quota-requests/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = QuotaRequest), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<QuotaRequest>> {
    let mut tx = req.tx()?;
    let found = fetch(&req, &mut tx, id, false, Permission::QuotaRequestRead).await?;
    tx.commit().await?;
    Ok(Json(found))
}

/// Records a decision on a pending request and audits it with before and after.
async fn decide(
    req: &Req,
    mut tx: Tx,
    current: QuotaRequest,
    state: QuotaRequestState,
    reason: &str,
    quota: Option<Uuid>,
) -> ApiResult<Json<QuotaRequest>> {
    let row: RequestRow = sqlx::query_as(&format!(
        "UPDATE quota_requests SET state = $2, decision_reason = $3, quota_id = $4, decided_by = $5,
                decided_at = now(), version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(current.id)
    .bind(state.as_str())
    .bind(reason)
    .bind(quota)
    .bind(req.principal.user_id)
    .fetch_one(&mut *tx)
    .await?;
    let action = match state {
        QuotaRequestState::Approved => "quota_request.approve",
        QuotaRequestState::Rejected => "quota_request.reject",
        _ => "quota_request.cancel",
    };
    crud::updated(tx, req, action, "quota_request", current.id, &current, QuotaRequest::from(row)).await
}

/// Withdraw a pending request (the tenant that made it).
#[utoipa::path(post, operation_id = "quota_requests_cancel", path = "/v1/quota-requests/{id}/cancel", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = QuotaRequest), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn cancel(req: Req, PathId(id): PathId) -> ApiResult<Json<QuotaRequest>> {
    let mut tx = req.tx()?;
    let current = pending(&req, &mut tx, id, Permission::QuotaRequestCancel).await?;
    decide(&req, tx, current, QuotaRequestState::Cancelled, "", None).await
}

/// Approve a pending request (system scope): the tenant's quota on the cluster
/// becomes the requested figures, created if it has none, in the same
/// transaction; a figure below what the tenant uses is refused (409
/// `quota_in_use`) and the request stays pending. The body is optional.
#[utoipa::path(post, operation_id = "quota_requests_approve", path = "/v1/quota-requests/{id}/approve", tag = "compute", params(("id" = Uuid, Path)),
    request_body = DecideQuotaRequest,
    responses((status = 200, body = QuotaRequest), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn approve(
    req: Req,
    PathId(id): PathId,
    OptionalJson(body): OptionalJson<DecideQuotaRequest>,
) -> ApiResult<Json<QuotaRequest>> {
    validate::display_text("reason", &body.reason, MAX_REASON)?;
    let mut tx = req.tx()?;
    let current = pending(&req, &mut tx, id, Permission::QuotaRequestApprove).await?;
    let (tenant, cluster) = (current.tenant_id, current.cluster_id);
    let limits = (current.vcpus, current.memory_mib, current.max_vms);
    super::quotas::check_limits(Some(limits.0), Some(limits.1), Some(limits.2))?;
    super::quotas::check_references(&mut tx, tenant, cluster).await?;
    let (quota, event) = match super::quotas::of_tenant_on(&mut tx, tenant, cluster).await? {
        Some(before) => {
            let after =
                super::quotas::set_limits(&mut tx, before.id, Some(limits.0), Some(limits.1), Some(limits.2), None)
                    .await?;
            let details = json!({ "before": before, "after": after, "quota_request_id": id });
            (after.id, Event::new("quota.update", "quota", Some(after.id)).details(details))
        }
        None => {
            let after = super::quotas::insert(&mut tx, tenant, cluster, limits, None).await?;
            let details = json!({ "after": after, "quota_request_id": id });
            (after.id, Event::new("quota.create", "quota", Some(after.id)).details(details))
        }
    };
    audit::record(&mut tx, &req, event).await?;
    decide(&req, tx, current, QuotaRequestState::Approved, &body.reason, Some(quota)).await
}

/// Reject a pending request (system scope), with a reason for the tenant.
#[utoipa::path(post, operation_id = "quota_requests_reject", path = "/v1/quota-requests/{id}/reject", tag = "compute", params(("id" = Uuid, Path)),
    request_body = DecideQuotaRequest,
    responses((status = 200, body = QuotaRequest), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn reject(
    req: Req,
    PathId(id): PathId,
    ApiJson(body): ApiJson<DecideQuotaRequest>,
) -> ApiResult<Json<QuotaRequest>> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_field("reason", "a rejection needs a reason for the tenant"));
    }
    validate::display_text("reason", &body.reason, MAX_REASON)?;
    let mut tx = req.tx()?;
    let current = pending(&req, &mut tx, id, Permission::QuotaRequestReject).await?;
    decide(&req, tx, current, QuotaRequestState::Rejected, &body.reason, None).await
}
