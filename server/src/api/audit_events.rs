//! `GET /v1/audit-events`: the audit trail of the caller's context, newest first.

use axum::Json;
use basalt_client::{AuditEvent, Page};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::{page, ApiQuery, PageQuery, Req};
use crate::error::ApiResult;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only events with this action, e.g. `tenant.suspend`.
    pub action: Option<String>,
    /// Only events about this object.
    pub target_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    actor_name: String,
    action: String,
    target_type: String,
    target_id: Option<Uuid>,
    request_id: Option<String>,
    outcome: String,
    details: serde_json::Value,
}

/// List audit events, newest first.
#[utoipa::path(get, operation_id = "audit_events_list", path = "/v1/audit-events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<AuditQuery>) -> ApiResult<Json<Page<AuditEvent>>> {
    let params = PageQuery { limit: q.limit, cursor: q.cursor }.params()?;
    let mut tx = req.tx()?;
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT id, tenant_id, at, actor_id, actor_name, action, target_type, target_id, request_id, outcome, details
           FROM audit_events
          WHERE ($1::uuid IS NULL OR id < $1) AND ($2::text IS NULL OR action = $2)
            AND ($3::uuid IS NULL OR target_id = $3)
          ORDER BY id DESC LIMIT $4",
    )
    .bind(params.after)
    .bind(q.action)
    .bind(q.target_id)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let events: Vec<AuditEvent> = rows
        .into_iter()
        .map(|r| AuditEvent {
            id: r.id,
            tenant_id: r.tenant_id,
            at: r.at,
            actor_id: r.actor_id,
            actor_name: r.actor_name,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            request_id: r.request_id,
            outcome: r.outcome,
            details: r.details,
        })
        .collect();
    Ok(Json(page(events, params, |e| e.id)))
}
