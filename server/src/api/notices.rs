//! `/v1/notices`: the provider's announcements (a maintenance window, an
//! incident) to its tenants: a title, a body, a severity (`info`, `warning`,
//! `critical`), when it starts, optionally when it ends and which region it
//! concerns. Notices are system rows (`tenant_id` pinned NULL) that every tenant
//! reads and none writes, like public templates: the tenant context role has
//! SELECT only, and its policy shows system rows (migration
//! `20261202000011_provider_ops.sql`). They live at the global controller, with
//! the tenants and the regions.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateNotice, Notice, NoticeSeverity, Page, UpdateNotice};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, page, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::Event;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, title, body, severity, starts_at, ends_at, region_id, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct NoticeRow {
    id: Uuid,
    title: String,
    body: String,
    severity: String,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    region_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<NoticeRow> for Notice {
    fn from(r: NoticeRow) -> Notice {
        Notice {
            id: r.id,
            title: r.title,
            body: r.body,
            severity: NoticeSeverity::parse(&r.severity).unwrap_or(NoticeSeverity::Info),
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            region_id: r.region_id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A title: 1–200 characters, no control or invisible ones.
pub(crate) fn check_title(title: &str) -> ApiResult<()> {
    if title.trim().is_empty() {
        return Err(ApiError::bad_field("title", "title must not be empty"));
    }
    validate::display_text("title", title, 200)
}

/// A body: up to 10000 characters over lines (line breaks are allowed, other
/// control characters are not).
fn check_body(body: &str) -> ApiResult<()> {
    if body.chars().count() > 10_000 {
        return Err(ApiError::bad_field("body", "body must be at most 10000 characters"));
    }
    body.split('\n')
        .try_for_each(|line| validate::display_text("body", line.strip_suffix('\r').unwrap_or(line), 10_000))
}

fn check_window(starts_at: DateTime<Utc>, ends_at: Option<DateTime<Utc>>) -> ApiResult<()> {
    match ends_at {
        Some(end) if end <= starts_at => Err(ApiError::bad_field("ends_at", "ends_at must be after starts_at")),
        _ => Ok(()),
    }
}

/// A region named by a notice must exist (422 `invalid_reference`).
async fn check_region(tx: &mut Tx, region: Option<Uuid>) -> ApiResult<()> {
    let Some(region) = region else { return Ok(()) };
    let (found,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM regions WHERE id = $1)").bind(region).fetch_one(&mut **tx).await?;
    if found {
        Ok(())
    } else {
        Err(ApiError::invalid_reference("region_id", "no such region"))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NoticeQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `true`: only notices in force now or later (not ended).
    pub current: Option<bool>,
    /// Only notices about this region, and those about the whole estate.
    pub region_id: Option<Uuid>,
}

/// List the provider's notices (every tenant reads every one).
#[utoipa::path(get, operation_id = "notices_list", path = "/v1/notices", tag = "notices", params(NoticeQuery),
    responses((status = 200, body = Page<Notice>), (status = 400)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<NoticeQuery>) -> ApiResult<Json<Page<Notice>>> {
    let params = PageQuery { limit: q.limit, cursor: q.cursor }.params()?;
    let mut tx = req.tx()?;
    let rows: Vec<NoticeRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notices
          WHERE ($1::uuid IS NULL OR id > $1) AND (NOT $2 OR ends_at IS NULL OR ends_at > now())
            AND ($3::uuid IS NULL OR region_id IS NULL OR region_id = $3)
          ORDER BY id LIMIT $4"
    ))
    .bind(params.after)
    .bind(q.current.unwrap_or(false))
    .bind(q.region_id)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(Notice::from).collect(), params, |n: &Notice| n.id)))
}

/// Publish a notice to every tenant (system scope). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "notices_create", path = "/v1/notices", tag = "notices", request_body = CreateNotice,
    responses((status = 201, body = Notice), (status = 400), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateNotice>) -> ApiResult<Response> {
    check_title(&body.title)?;
    check_body(&body.body)?;
    check_window(body.starts_at, body.ends_at)?;
    let mut tx = req.tx()?;
    check_region(&mut tx, body.region_id).await?;
    let (b, actor) = (body.clone(), req.principal.user_id);
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: NoticeRow = sqlx::query_as(&format!(
                    "INSERT INTO notices (id, title, body, severity, starts_at, ends_at, region_id, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(&b.title)
                .bind(&b.body)
                .bind(b.severity.as_str())
                .bind(b.starts_at)
                .bind(b.ends_at)
                .bind(b.region_id)
                .bind(actor)
                .fetch_one(&mut **tx)
                .await?;
                Ok(Notice::from(row))
            })
        },
        |n| Event::new("notice.create", "notice", Some(n.id)).details(json!({ "after": n })),
    )
    .await
}

/// Read a notice.
#[utoipa::path(get, operation_id = "notices_get", path = "/v1/notices/{id}", tag = "notices", params(("id" = Uuid, Path)),
    responses((status = 200, body = Notice), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Notice>> {
    crud::get::<NoticeRow, Notice>(&req, "notices", COLUMNS, id, "notice").await
}

/// Change a notice (system scope): any field; `ends_at` or `region_id` null
/// clears it. Takes `If-Match`.
#[utoipa::path(patch, operation_id = "notices_update", path = "/v1/notices/{id}", tag = "notices", params(("id" = Uuid, Path)),
    request_body = UpdateNotice, responses((status = 200, body = Notice), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateNotice>,
) -> ApiResult<Json<Notice>> {
    if let Some(title) = &body.title {
        check_title(title)?;
    }
    if let Some(text) = &body.body {
        check_body(text)?;
    }
    let mut tx = req.tx()?;
    let current: Notice = crud::fetch::<NoticeRow, _>(&mut tx, "notices", COLUMNS, id, true, "notice").await?;
    check_version(&if_match, current.version)?;
    let starts_at = body.starts_at.unwrap_or(current.starts_at);
    let ends_at = body.ends_at.unwrap_or(current.ends_at);
    let region_id = body.region_id.unwrap_or(current.region_id);
    check_window(starts_at, ends_at)?;
    check_region(&mut tx, region_id).await?;
    let row: NoticeRow = sqlx::query_as(&format!(
        "UPDATE notices SET title = $2, body = $3, severity = $4, starts_at = $5, ends_at = $6, region_id = $7,
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(body.title.as_deref().unwrap_or(&current.title))
    .bind(body.body.as_deref().unwrap_or(&current.body))
    .bind(body.severity.unwrap_or(current.severity).as_str())
    .bind(starts_at)
    .bind(ends_at)
    .bind(region_id)
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "notice.update", "notice", id, &current, Notice::from(row)).await
}

/// Withdraw a notice (system scope).
#[utoipa::path(delete, operation_id = "notices_delete", path = "/v1/notices/{id}", tag = "notices", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current: Notice = crud::fetch::<NoticeRow, _>(&mut tx, "notices", COLUMNS, id, true, "notice").await?;
    crud::deleted(tx, &req, "notices", "notice.delete", "notice", id, &current).await
}
