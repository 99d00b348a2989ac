//! `GET /v1/audit-events`: the audit trail of the caller's context, newest first;
//! `GET /v1/audit-events/export`: all of it in a time window, as NDJSON, oldest
//! first, streamed page by page (each page its own short read transaction in the
//! caller's context), so a long trail never sits in memory or holds a connection
//! while the client reads.

use axum::response::{IntoResponse, Response};
use axum::Json;
use basalt_client::{AuditEvent, Page};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::{page, ApiQuery, PageQuery, Req};
use crate::error::{ApiError, ApiResult};

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

const AUDIT_COLUMNS: &str =
    "id, tenant_id, at, actor_id, actor_name, action, target_type, target_id, request_id, outcome, details";

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> AuditEvent {
        AuditEvent {
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
        }
    }
}

/// List audit events, newest first.
#[utoipa::path(get, operation_id = "audit_events_list", path = "/v1/audit-events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<AuditQuery>) -> ApiResult<Json<Page<AuditEvent>>> {
    let params = PageQuery { limit: q.limit, cursor: q.cursor }.params()?;
    let mut tx = req.tx()?;
    let rows: Vec<AuditRow> = sqlx::query_as(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_events
          WHERE ($1::uuid IS NULL OR id < $1) AND ($2::text IS NULL OR action = $2)
            AND ($3::uuid IS NULL OR target_id = $3)
          ORDER BY id DESC LIMIT $4"
    ))
    .bind(params.after)
    .bind(q.action)
    .bind(q.target_id)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let events: Vec<AuditEvent> = rows.into_iter().map(AuditEvent::from).collect();
    Ok(Json(page(events, params, |e| e.id)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Events at or after this time (RFC 3339); absent: from the beginning.
    pub since: Option<DateTime<Utc>>,
    /// Events at or before this time (RFC 3339); absent: the time of the request.
    pub until: Option<DateTime<Utc>>,
}

/// Events read per page of an export.
const EXPORT_PAGE: i64 = 500;

/// Where an export is: the last id sent, or done.
struct Cursor {
    after: Option<Uuid>,
    done: bool,
}

/// Export the audit trail of the current context as NDJSON (one event per line,
/// oldest first), between `since` and `until`.
#[utoipa::path(get, operation_id = "audit_events_export", path = "/v1/audit-events/export", tag = "audit", params(ExportQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = AuditEvent, description = "one audit event per line, oldest first"),
        (status = 400)),
    security(("bearer" = [])))]
pub async fn export(req: Req, ApiQuery(q): ApiQuery<ExportQuery>) -> ApiResult<Response> {
    let until = q.until.unwrap_or_else(Utc::now);
    if q.since.is_some_and(|s| s > until) {
        return Err(ApiError::bad_field("since", "since must not be after until"));
    }
    // The request's own transaction is not needed: each page opens its own.
    req.tx()?.commit().await?;
    let (db, scope, actor, since) =
        (req.state.db.clone(), req.principal.context.db_scope(), req.principal.user_id, q.since);
    let pages = futures_util::stream::try_unfold(Cursor { after: None, done: false }, move |cursor| {
        let db = db.clone();
        async move {
            if cursor.done {
                return Ok::<_, ApiError>(None);
            }
            let mut tx = db.begin(scope, Some(actor), false).await?;
            let rows: Vec<AuditRow> = sqlx::query_as(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events
                  WHERE ($1::uuid IS NULL OR id > $1) AND ($2::timestamptz IS NULL OR at >= $2) AND at <= $3
                  ORDER BY id LIMIT $4"
            ))
            .bind(cursor.after)
            .bind(since)
            .bind(until)
            .bind(EXPORT_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let next = Cursor { after: rows.last().map(|r| r.id), done: (rows.len() as i64) < EXPORT_PAGE };
            let mut chunk = Vec::new();
            for row in rows {
                serde_json::to_writer(&mut chunk, &AuditEvent::from(row)).map_err(ApiError::internal)?;
                chunk.push(b'\n');
            }
            Ok(Some((axum::body::Bytes::from(chunk), next)))
        }
    });
    let pages =
        futures_util::TryStreamExt::inspect_err(pages, |e| tracing::warn!(error = %e, "audit export failed midway"));
    let headers = [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")];
    Ok((headers, axum::body::Body::from_stream(pages)).into_response())
}
