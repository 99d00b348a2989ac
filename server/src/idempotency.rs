//! `Idempotency-Key` for creates: the first request with a key stores its answer
//! in the same transaction as the object it created; a retry with the same key and
//! the same body gets that answer again (and creates nothing), a retry with another
//! body is a 422. Concurrent retries wait on the key's unique index, so two
//! requests racing with one key still create one object.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::api::extract::{IdempotencyKey, Req};
use crate::db::Tx;
use crate::error::ApiError;

/// The outcome of claiming a key.
pub enum Claim {
    /// No key given, or first use: go on and create; call [`finish`] with the answer.
    Proceed(Option<Uuid>),
    /// The key was used before with the same body: answer this again.
    Replay(StatusCode, Value),
}

/// Claims `key` for this request (`body` is the decoded request, hashed to detect
/// a key reused with different content).
pub async fn claim<B: Serialize>(tx: &mut Tx, req: &Req, key: &IdempotencyKey, body: &B) -> Result<Claim, ApiError> {
    let Some(key) = &key.0 else {
        return Ok(Claim::Proceed(None));
    };
    let digest = request_digest(body)?;
    let id = Uuid::now_v7();
    let inserted: Option<(Uuid,)> = sqlx::query_as(
        "INSERT INTO idempotency_keys (id, tenant_id, actor_id, key, request_sha256, response_status, response_body)
         VALUES ($1, $2, $3, $4, $5, 0, 'null')
         ON CONFLICT ON CONSTRAINT idempotency_keys_key DO NOTHING
         RETURNING id",
    )
    .bind(id)
    .bind(req.principal.context.tenant())
    .bind(req.principal.user_id)
    .bind(key)
    .bind(&digest)
    .fetch_optional(&mut **tx)
    .await?;
    if inserted.is_some() {
        return Ok(Claim::Proceed(Some(id)));
    }
    let (stored_digest, status, body): (Vec<u8>, i32, Value) = sqlx::query_as(
        "SELECT request_sha256, response_status, response_body FROM idempotency_keys
          WHERE tenant_id IS NOT DISTINCT FROM $1 AND actor_id = $2 AND key = $3",
    )
    .bind(req.principal.context.tenant())
    .bind(req.principal.user_id)
    .bind(key)
    .fetch_one(&mut **tx)
    .await?;
    if stored_digest != digest {
        return Err(ApiError::Unprocessable {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was already used with a different request".into(),
            details: serde_json::json!({ "field": "Idempotency-Key" }),
        });
    }
    let status = StatusCode::from_u16(status as u16).map_err(ApiError::internal)?;
    Ok(Claim::Replay(status, body))
}

/// Stores the answer for a claimed key (no-op without a key).
pub async fn finish<T: Serialize>(
    tx: &mut Tx,
    claimed: Option<Uuid>,
    status: StatusCode,
    answer: &T,
) -> Result<(), ApiError> {
    let Some(id) = claimed else {
        return Ok(());
    };
    let body = serde_json::to_value(answer).map_err(ApiError::internal)?;
    sqlx::query("UPDATE idempotency_keys SET response_status = $2, response_body = $3 WHERE id = $1")
        .bind(id)
        .bind(status.as_u16() as i32)
        .bind(body)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Route and body together: the same key on two different routes is a mismatch.
fn request_digest<B: Serialize>(body: &B) -> Result<Vec<u8>, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    Ok(Sha256::new().chain_update(std::any::type_name::<B>().as_bytes()).chain_update(&bytes).finalize().to_vec())
}

/// The answer to a create: 201 with the object, after storing it under the key.
pub async fn created<T: Serialize>(
    tx: &mut Tx,
    claimed: Option<Uuid>,
    value: T,
) -> Result<axum::response::Response, ApiError> {
    answered(tx, claimed, StatusCode::CREATED, value).await
}

/// Any answer (`201`, or `202` with an operation), after storing it under the key.
pub async fn answered<T: Serialize>(
    tx: &mut Tx,
    claimed: Option<Uuid>,
    status: StatusCode,
    value: T,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    finish(tx, claimed, status, &value).await?;
    Ok((status, axum::Json(value)).into_response())
}

/// The stored answer of an earlier request with the same key.
pub fn replay(status: StatusCode, body: Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    (status, [("idempotent-replayed", "true")], axum::Json(body)).into_response()
}

/// Forgets the keys whose stored answer is the object `id`, when the object is
/// deleted: a later create with the same key (Terraform derives keys from the
/// planned object, so re-creating a destroyed one repeats its key) then creates
/// anew instead of answering with an object that is gone.
pub async fn forget_object(tx: &mut Tx, id: Uuid) -> Result<(), ApiError> {
    // An operation's answer names its object as `target_id` (a VM create answers 202).
    sqlx::query("DELETE FROM idempotency_keys WHERE response_body->>'id' = $1 OR response_body->>'target_id' = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
