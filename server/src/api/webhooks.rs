//! `/v1/webhooks`: a tenant's subscriptions to its own audit events, and their
//! deliveries.
//!
//! A webhook names a URL and audit action patterns (`vm.create`, `vm.*`, `*`);
//! the delivery job (`webhooks::worker`) POSTs each matching event of the
//! tenant to the URL, signed with the webhook's secret. The secret is answered
//! once, at creation and at rotation, and stored sealed (`webhooks::sealing`):
//! no read answers it, and a create takes no `Idempotency-Key` (a stored replay
//! would keep the secret in plain text).
//!
//! URLs are checked against internal addresses (`webhooks::target`) here and
//! again before every call. Webhooks are tenant rows held with identity (the
//! global controller under federation), so they carry the audit events of that
//! database: see `docs/webhooks.md`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use basalt_client::{CreateWebhook, CreatedWebhook, Page, UpdateWebhook, Webhook, WebhookDelivery, WebhookTestResult};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, page, ApiJson, ApiQuery, IfMatch, PageQuery, PathId, PathIds, Req};
use crate::audit::{self, Event};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;
use crate::webhooks::target::{self, TargetError};
use crate::webhooks::{sealing, worker};

const COLUMNS: &str = "id, tenant_id, url, events, description, enabled, version, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, redelivery_of, status, attempts, \
     next_attempt_at, last_status_code, last_error, last_duration_ms, created_at, updated_at";
const EVENTS_MAX: usize = 50;
const PATTERN_MAX: usize = 100;

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: Uuid,
    tenant_id: Uuid,
    url: String,
    events: Vec<String>,
    description: String,
    enabled: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Webhook {
        Webhook {
            id: r.id,
            tenant_id: r.tenant_id,
            url: r.url,
            events: r.events,
            description: r.description,
            enabled: r.enabled,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    webhook_id: Uuid,
    event_id: Option<Uuid>,
    event_type: String,
    redelivery_of: Option<Uuid>,
    status: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    last_duration_ms: Option<i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(r: DeliveryRow) -> WebhookDelivery {
        let pending = r.status == "pending";
        WebhookDelivery {
            id: r.id,
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            event_type: r.event_type,
            redelivery_of: r.redelivery_of,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: pending.then_some(r.next_attempt_at),
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            last_duration_ms: r.last_duration_ms,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A webhook visible in `tx` (the context's own).
async fn fetch(tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<Webhook> {
    crud::fetch::<WebhookRow, Webhook>(tx, "webhooks", COLUMNS, id, lock, "webhook").await
}

/// Refuses (400 naming `events`) an empty or overlong list or a bad pattern.
fn check_events(events: &[String]) -> ApiResult<()> {
    if events.is_empty() || events.len() > EVENTS_MAX {
        return Err(ApiError::bad_field("events", format!("events must hold 1 to {EVENTS_MAX} patterns")));
    }
    match events.iter().find(|p| !valid_pattern(p)) {
        Some(bad) => Err(ApiError::bad_field(
            "events",
            format!(
                "event pattern {bad:?} must be an audit action (`vm.create`), a prefix ending in `.*` (`vm.*`) or `*`"
            ),
        )),
        None => Ok(()),
    }
}

/// `*`, or dot-separated segments of `a-z 0-9 _ -`, the last of which may be `*`.
fn valid_pattern(p: &str) -> bool {
    if p == "*" {
        return true;
    }
    let body = p.strip_suffix(".*").unwrap_or(p);
    p.len() <= PATTERN_MAX
        && body.split('.').all(|seg| {
            !seg.is_empty() && seg.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        })
}

/// Checks `url` (400 for its form, 422 for where it leads) and answers it normalised.
async fn check_url(req: &Req, url: &str) -> ApiResult<String> {
    let parsed = target::parse(url).map_err(|e| ApiError::bad_field("url", e.to_string()))?;
    target::resolve(&parsed, req.state.config.webhooks.allow_private_targets).await.map_err(refused)?;
    Ok(parsed.to_string())
}

fn refused(e: TargetError) -> ApiError {
    let code = match e {
        TargetError::Unresolvable(_) => "url_unresolvable",
        _ => "url_not_allowed",
    };
    ApiError::Unprocessable { code, message: e.to_string(), details: json!({ "field": "url" }) }
}

/// The answer holding a webhook and its secret, once.
fn with_secret(status: StatusCode, webhook: Webhook, secret: String) -> Response {
    (status, Json(CreatedWebhook { webhook, secret })).into_response()
}

/// List the tenant's webhooks (never their secrets).
#[utoipa::path(get, operation_id = "webhooks_list", path = "/v1/webhooks", tag = "webhooks",
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Webhook>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Webhook>>> {
    crud::list::<WebhookRow, Webhook>(&req, &q, "webhooks", COLUMNS).await
}

/// Create a webhook in the current tenant. The answer holds the signing
/// secret, once. No `Idempotency-Key`: a stored replay would keep the secret.
#[utoipa::path(post, operation_id = "webhooks_create", path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 400), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, ApiJson(body): ApiJson<CreateWebhook>) -> ApiResult<Response> {
    check_events(&body.events)?;
    validate::description(body.description.as_deref())?;
    let url = check_url(&req, &body.url).await?;
    // `webhook:create` is grantable inside tenants only, so the context has one.
    let tenant = req
        .check_body_tenant(None)?
        .ok_or_else(|| ApiError::internal("webhook:create passed the choke point at system scope"))?;
    let (id, secret) = (Uuid::now_v7(), sealing::new_secret());
    let mut tx = req.tx()?;
    // The cursor starts now: a webhook receives the events after its creation.
    let row: WebhookRow = sqlx::query_as(&format!(
        "INSERT INTO webhooks (id, tenant_id, url, events, description, enabled, secret_sealed, cursor_event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $1) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(tenant)
    .bind(url)
    .bind(&body.events)
    .bind(body.description.unwrap_or_default())
    .bind(body.enabled.unwrap_or(true))
    .bind(req.state.webhooks.key.seal(id, &secret))
    .fetch_one(&mut *tx)
    .await?;
    let webhook = Webhook::from(row);
    audit::record(
        &mut tx,
        &req,
        Event::new("webhook.create", "webhook", Some(id)).details(json!({ "after": webhook })),
    )
    .await?;
    tx.commit().await?;
    Ok(with_secret(StatusCode::CREATED, webhook, secret))
}

/// Read a webhook (never its secret).
#[utoipa::path(get, operation_id = "webhooks_get", path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = Webhook), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Webhook>> {
    crud::get::<WebhookRow, Webhook>(&req, "webhooks", COLUMNS, id, "webhook").await
}

/// Change a webhook's URL, patterns, description or enabled flag. Takes `If-Match`.
#[utoipa::path(patch, operation_id = "webhooks_update", path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    request_body = UpdateWebhook, responses((status = 200, body = Webhook), (status = 400), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<Webhook>> {
    if let Some(events) = &body.events {
        check_events(events)?;
    }
    validate::description(body.description.as_deref())?;
    let url = match &body.url {
        Some(u) => Some(check_url(&req, u).await?),
        None => None,
    };
    let mut tx = req.tx()?;
    let before = fetch(&mut tx, id, true).await?;
    check_version(&if_match, before.version)?;
    let row: WebhookRow = sqlx::query_as(&format!(
        "UPDATE webhooks SET url = COALESCE($2, url), events = COALESCE($3, events),
                description = COALESCE($4, description), enabled = COALESCE($5, enabled),
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(url)
    .bind(&body.events)
    .bind(&body.description)
    .bind(body.enabled)
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "webhook.update", "webhook", id, &before, Webhook::from(row)).await
}

/// Delete a webhook and its deliveries.
#[utoipa::path(delete, operation_id = "webhooks_delete", path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let before = fetch(&mut tx, id, true).await?;
    check_version(&if_match, before.version)?;
    crud::deleted(tx, &req, "webhooks", "webhook.delete", "webhook", id, &before).await
}

/// Replace a webhook's signing secret; the old one stops signing at once. The
/// answer holds the new secret, once. Takes `If-Match`.
#[utoipa::path(post, operation_id = "webhooks_rotate_secret", path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = Uuid, Path)), responses((status = 200, body = CreatedWebhook), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn rotate_secret(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let before = fetch(&mut tx, id, true).await?;
    check_version(&if_match, before.version)?;
    let secret = sealing::new_secret();
    let row: WebhookRow = sqlx::query_as(&format!(
        "UPDATE webhooks SET secret_sealed = $2, version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(req.state.webhooks.key.seal(id, &secret))
    .fetch_one(&mut *tx)
    .await?;
    audit::record(&mut tx, &req, Event::new("webhook.rotate_secret", "webhook", Some(id))).await?;
    tx.commit().await?;
    Ok(with_secret(StatusCode::OK, Webhook::from(row), secret))
}

/// Send a `ping` to the webhook now (even when disabled) and answer how it
/// went. Recorded as a delivery; not retried.
#[utoipa::path(post, operation_id = "webhooks_test", path = "/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = Uuid, Path)), responses((status = 200, body = WebhookTestResult), (status = 404)), security(("bearer" = [])))]
pub async fn test(req: Req, PathId(id): PathId) -> ApiResult<Json<WebhookTestResult>> {
    let mut tx = req.tx()?;
    let webhook = fetch(&mut tx, id, false).await?;
    let (sealed,): (Vec<u8>,) =
        sqlx::query_as("SELECT secret_sealed FROM webhooks WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
    let due = worker::Due {
        id: Uuid::now_v7(),
        webhook_id: id,
        event_type: "ping".into(),
        payload: worker::ping_payload(webhook.tenant_id, id),
        attempts: 0,
        url: webhook.url,
        secret_sealed: sealed,
    };
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_type, payload) VALUES ($1, $2, $3, 'ping', $4)",
    )
    .bind(due.id)
    .bind(webhook.tenant_id)
    .bind(id)
    .bind(&due.payload)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &req,
        Event::new("webhook.test", "webhook", Some(id)).details(json!({ "delivery_id": due.id })),
    )
    .await?;
    // Committed before the call: no transaction waits on a remote server.
    tx.commit().await?;
    let outcome = worker::attempt(&req.state, &due).await;
    let retry_base = req.state.config.webhooks.retry_base;
    worker::record(&req.state.db, webhook.tenant_id, due.id, &outcome, true, retry_base).await?;
    Ok(Json(WebhookTestResult {
        delivery_id: due.id,
        success: outcome.succeeded(),
        status_code: outcome.status_code.map(i32::from),
        duration_ms: outcome.duration_ms(),
        error: outcome.error,
    }))
}

/// List a webhook's deliveries, newest first (not their bodies).
#[utoipa::path(get, operation_id = "webhook_deliveries_list", path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<WebhookDelivery>), (status = 404)), security(("bearer" = [])))]
pub async fn deliveries(
    req: Req,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<WebhookDelivery>>> {
    let params = q.params()?;
    let mut tx = req.tx()?;
    fetch(&mut tx, id, false).await?;
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
          WHERE webhook_id = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(id)
    .bind(params.after)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(WebhookDelivery::from).collect(), params, |d| d.id)))
}

/// Send a delivery again: a new delivery with the same body, sent by the
/// delivery job shortly (202).
#[utoipa::path(post, operation_id = "webhook_deliveries_redeliver", path = "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    tag = "webhooks", params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 202, body = WebhookDelivery), (status = 404)), security(("bearer" = [])))]
pub async fn redeliver(req: Req, PathIds(id, delivery): PathIds) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    fetch(&mut tx, id, false).await?;
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, payload, redelivery_of)
         SELECT $3, tenant_id, webhook_id, event_id, event_type, payload, id
           FROM webhook_deliveries WHERE id = $2 AND webhook_id = $1
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(id)
    .bind(delivery)
    .bind(Uuid::now_v7())
    .fetch_optional(&mut *tx)
    .await?;
    let created = WebhookDelivery::from(row.ok_or(ApiError::NotFound { kind: "webhook_delivery" })?);
    let details = json!({ "delivery_id": created.id, "redelivery_of": delivery });
    audit::record(&mut tx, &req, Event::new("webhook.redeliver", "webhook", Some(id)).details(details)).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(created)).into_response())
}
