//! The audit trail: every mutation and every tenant switch writes one event, in
//! the same transaction as the change it records, so a change is never without
//! its event and an event never without its change. Refusals are recorded too,
//! in a transaction of their own (the refused one rolls back).

use serde_json::Value;
use uuid::Uuid;

use crate::api::extract::Req;
use crate::db::Tx;
use crate::error::ApiError;

/// One event to record; the actor, tenant and request id come from the request.
#[derive(Debug)]
pub struct Event<'a> {
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<Uuid>,
    pub details: Value,
}

impl<'a> Event<'a> {
    pub fn new(action: &'a str, target_type: &'a str, target_id: Option<Uuid>) -> Self {
        Event { action, target_type, target_id, details: Value::Object(Default::default()) }
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// Records a successful action inside `tx`, in the caller's context.
pub async fn record(tx: &mut Tx, req: &Req, event: Event<'_>) -> Result<(), ApiError> {
    insert(tx, req.principal.context.tenant(), req, &event, "success").await
}

/// Records an event in the log of `tenant` (None: the system log). The transaction
/// must be in that context, or the policy refuses the row.
pub async fn record_in(tx: &mut Tx, tenant: Option<Uuid>, req: &Req, event: Event<'_>) -> Result<(), ApiError> {
    insert(tx, tenant, req, &event, "success").await
}

/// Records an action Basalt took on its own (the reconciler), with no user and
/// no request, in the log of `tenant` (the transaction's context).
pub async fn record_service(tx: &mut Tx, tenant: Option<Uuid>, actor: &str, event: Event<'_>) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO audit_events (id, tenant_id, actor_id, actor_name, action, target_type, target_id, outcome, details)
         VALUES ($1, $2, NULL, $3, $4, $5, $6, 'success', $7)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(actor)
    .bind(event.action)
    .bind(event.target_type)
    .bind(event.target_id)
    .bind(&event.details)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a refused action (permission denied, tenant suspended) on its own.
pub async fn record_denied(req: &Req, event: Event<'_>) {
    let result = async {
        let mut tx = req.begin(false).await?;
        insert(&mut tx, req.principal.context.tenant(), req, &event, "denied").await?;
        tx.commit().await.map_err(ApiError::from)
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, action = event.action, "could not record a denied action");
    }
}

async fn insert(
    tx: &mut Tx,
    tenant: Option<Uuid>,
    req: &Req,
    event: &Event<'_>,
    outcome: &str,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO audit_events
            (id, tenant_id, actor_id, actor_name, action, target_type, target_id, request_id, outcome, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(req.principal.user_id)
    .bind(&req.principal.username)
    .bind(event.action)
    .bind(event.target_type)
    .bind(event.target_id)
    .bind(&req.request_id)
    .bind(outcome)
    .bind(&event.details)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
