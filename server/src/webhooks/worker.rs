//! The delivery job. Every `poll_interval`, under an advisory lock (one replica
//! at a time; another takes over when it dies), for each live tenant with an enabled webhook, in that
//! tenant's own context:
//!
//! 1. **Enqueue**: the tenant's successful audit events after each enabled
//!    webhook's cursor whose action matches its patterns become deliveries
//!    (the body is fixed then). The cursor only passes events older than
//!    [`SETTLE`], so an event whose transaction commits late is still seen;
//!    re-scanned events are skipped by a unique index.
//! 2. **Send**: due pending deliveries of enabled webhooks are POSTed
//!    ([`send::post`]), a few at a time. A 2xx succeeds; anything else is
//!    retried after `retry_base`, doubling, until `max_attempts`, then `failed`.
//!
//! Deliveries are not audit events themselves (a webhook on `*` would feed on
//! its own traffic). Nothing here logs a secret or a body.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;

use super::send::{self, Outcome};
use crate::app::AppState;
use crate::db::{Db, DbScope, Tx};
use crate::error::{ApiError, ApiResult};

/// Advisory lock key of the delivery job ("basaltwh").
pub const WEBHOOK_LOCK: i64 = 0x6261_7361_6c74_7768;
/// The cursor passes an event only once it is this old (late commits).
pub const SETTLE: Duration = Duration::from_secs(10);
/// Events looked at per webhook and pass.
const SCAN_BATCH: i64 = 500;
/// Deliveries sent per tenant and pass, and at once.
const SEND_BATCH: i64 = 50;
const SEND_AT_ONCE: usize = 8;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub enqueued: u64,
    pub succeeded: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// A pass every `poll_interval`, forever.
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(state.config.webhooks.poll_interval.max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match pass(&state).await {
            Ok(Some(r)) if r != Report::default() => tracing::info!(
                enqueued = r.enqueued,
                succeeded = r.succeeded,
                retrying = r.retrying,
                failed = r.failed,
                "webhook deliveries"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhook delivery pass failed; will retry"),
        }
    }
}

/// The tenants a pass visits: the live ones with an enabled webhook
/// (`job_tenants`, kept in step by a trigger on `webhooks`). Visiting every
/// tenant every tick slowed every request as the estate grew.
const SUBSCRIBERS: &str = "SELECT j.tenant_id FROM job_tenants j JOIN tenants t ON t.id = j.tenant_id
                            WHERE j.job = 'webhooks' AND t.state <> 'deleted' ORDER BY 1";

/// One pass over the live tenants with an enabled webhook; `None` when another
/// replica holds the lock.
pub async fn pass(state: &AppState) -> ApiResult<Option<Report>> {
    let Some((lock, tenants)) = crate::jobs::exclusive_tenant_pass(&state.db, WEBHOOK_LOCK, SUBSCRIBERS).await? else {
        return Ok(None);
    };
    let mut report = Report::default();
    for tenant in tenants {
        // One tenant's failure does not stop the others' deliveries.
        if let Err(e) = tenant_pass(state, tenant, &mut report).await {
            tracing::warn!(%tenant, error = %e, "webhook deliveries of a tenant failed; will retry");
        }
    }
    // The lock's transaction stays open (and holds its connection) for the pass.
    lock.commit().await?;
    Ok(Some(report))
}

async fn tenant_pass(state: &AppState, tenant: Uuid, report: &mut Report) -> ApiResult<()> {
    report.enqueued += enqueue(&state.db, tenant).await?;
    send_due(state, tenant, report).await
}

async fn tenant_tx(db: &Db, tenant: Uuid) -> ApiResult<Tx> {
    Ok(db.begin(DbScope::Tenant(tenant), None, false).await?)
}

#[derive(sqlx::FromRow)]
struct Subscription {
    id: Uuid,
    events: Vec<String>,
    cursor_event_id: Uuid,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
    actor_name: String,
    action: String,
    target_type: String,
    target_id: Option<Uuid>,
    request_id: Option<String>,
    details: Value,
    settled: bool,
}

/// Turns the tenant's new matching audit events into deliveries; answers how many.
async fn enqueue(db: &Db, tenant: Uuid) -> ApiResult<u64> {
    let mut tx = tenant_tx(db, tenant).await?;
    let subs: Vec<Subscription> =
        sqlx::query_as("SELECT id, events, cursor_event_id FROM webhooks WHERE enabled").fetch_all(&mut *tx).await?;
    let mut enqueued = 0;
    for sub in subs {
        enqueued += enqueue_for(&mut tx, tenant, &sub).await?;
    }
    tx.commit().await?;
    Ok(enqueued)
}

async fn enqueue_for(tx: &mut Tx, tenant: Uuid, sub: &Subscription) -> ApiResult<u64> {
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT id, at, actor_name, action, target_type, target_id, request_id, details,
                at < now() - make_interval(secs => $3) AS settled
           FROM audit_events WHERE tenant_id = $1 AND id > $2 AND outcome = 'success'
          ORDER BY id LIMIT $4",
    )
    .bind(tenant)
    .bind(sub.cursor_event_id)
    .bind(SETTLE.as_secs_f64())
    .bind(SCAN_BATCH)
    .fetch_all(&mut **tx)
    .await?;
    let mut enqueued = 0;
    for e in events.iter().filter(|e| super::matches(&sub.events, &e.action)) {
        let payload = event_payload(tenant, sub.id, e);
        enqueued += sqlx::query(
            "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, payload)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(tenant)
        .bind(sub.id)
        .bind(e.id)
        .bind(&e.action)
        .bind(payload)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    // Up to the first event that may still have a late-committing predecessor.
    if let Some(last) = events.iter().take_while(|e| e.settled).last() {
        sqlx::query("UPDATE webhooks SET cursor_event_id = $2 WHERE id = $1")
            .bind(sub.id)
            .bind(last.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(enqueued)
}

/// The JSON body delivered for an audit event.
fn event_payload(tenant: Uuid, webhook: Uuid, e: &EventRow) -> Value {
    json!({
        "type": e.action,
        "webhook_id": webhook,
        "tenant_id": tenant,
        "event": {
            "id": e.id,
            "at": e.at,
            "actor_name": e.actor_name,
            "action": e.action,
            "target_type": e.target_type,
            "target_id": e.target_id,
            "request_id": e.request_id,
            "details": e.details,
        },
    })
}

/// The JSON body of a ping.
pub fn ping_payload(tenant: Uuid, webhook: Uuid) -> Value {
    json!({ "type": "ping", "webhook_id": webhook, "tenant_id": tenant, "sent_at": chrono::Utc::now() })
}

/// A delivery ready to send: where, with which sealed secret, what.
#[derive(sqlx::FromRow)]
pub struct Due {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_type: String,
    pub payload: Value,
    pub attempts: i32,
    pub url: String,
    pub secret_sealed: Vec<u8>,
}

async fn send_due(state: &AppState, tenant: Uuid, report: &mut Report) -> ApiResult<()> {
    let mut tx = tenant_tx(&state.db, tenant).await?;
    let due: Vec<Due> = sqlx::query_as(
        "SELECT d.id, d.webhook_id, d.event_type, d.payload, d.attempts, w.url, w.secret_sealed
           FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
          WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.enabled
          ORDER BY d.next_attempt_at, d.id LIMIT $1",
    )
    .bind(SEND_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let max = state.config.webhooks.max_attempts;
    let mut outcomes = futures_util::stream::iter(due)
        .map(|d| async move {
            let outcome = attempt(state, &d).await;
            let last = d.attempts + 1 >= max;
            (d, outcome, last)
        })
        .buffer_unordered(SEND_AT_ONCE);
    while let Some((d, outcome, last)) = outcomes.next().await {
        match record(&state.db, tenant, d.id, &outcome, last, state.config.webhooks.retry_base).await {
            Ok("succeeded") => report.succeeded += 1,
            Ok("failed") => report.failed += 1,
            Ok(_) => report.retrying += 1,
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends `d` once (its secret opened just for the call).
pub async fn attempt(state: &AppState, d: &Due) -> Outcome {
    let secret = match state.webhooks.key.open(d.webhook_id, &d.secret_sealed) {
        Ok(s) => s,
        Err(e) => {
            return Outcome { status_code: None, error: Some(e.to_string()), duration: Duration::ZERO };
        }
    };
    let body = serde_json::to_vec(&d.payload).unwrap_or_default();
    let delivery = send::Delivery {
        url: &d.url,
        webhook_id: d.webhook_id,
        delivery_id: d.id,
        event_type: &d.event_type,
        secret: &secret,
        body: &body,
    };
    state.webhooks.sender.post(&delivery).await
}

/// Records an attempt's outcome on delivery `id`: succeeded, failed (when it
/// was the `last` attempt) or pending again after the backoff. Answers the status.
pub async fn record(
    db: &Db,
    tenant: Uuid,
    id: Uuid,
    outcome: &Outcome,
    last: bool,
    retry_base: Duration,
) -> ApiResult<&'static str> {
    let status = match (outcome.succeeded(), last) {
        (true, _) => "succeeded",
        (false, true) => "failed",
        (false, false) => "pending",
    };
    let mut tx = tenant_tx(db, tenant).await?;
    let done = sqlx::query(
        "UPDATE webhook_deliveries
            SET attempts = attempts + 1, status = $2, last_status_code = $3, last_error = $4,
                last_duration_ms = $5, updated_at = now(),
                next_attempt_at = now() + make_interval(secs => $6 * power(2, attempts))
          WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(outcome.status_code.map(i32::from))
    .bind(&outcome.error)
    .bind(outcome.duration_ms())
    .bind(retry_base.as_secs_f64())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if done == 0 {
        // Deleted with its webhook meanwhile.
        return Err(ApiError::NotFound { kind: "webhook_delivery" });
    }
    Ok(status)
}
