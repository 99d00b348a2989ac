//! The controller's health checks: every interval (and at once when a tenant
//! changes) each region gets a signed push of its tenant states ([`super::sync`]);
//! how it answers is its health.
//!
//! * `healthy`: answered 200 within `degraded_after_ms`.
//! * `degraded`: answered, but slowly or with an error.
//! * `unreachable`: no answer (refused, timed out). Calls routed to it fail fast
//!   with 503 `region_unavailable` naming it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use uuid::Uuid;

use super::sync::{self, SyncAnswer};
use super::Federation;
use crate::app::AppState;
use crate::db::DbScope;
use crate::error::ApiError;

/// Runs for the life of a global controller.
pub async fn run(state: AppState, fed: Arc<Federation>) {
    let every = Duration::from_secs(fed.config.health_interval_seconds.max(1));
    loop {
        if let Err(e) = check_all(&state, &fed).await {
            tracing::warn!(error = %e, "region health pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = fed.changed.notified() => {}
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RegionTarget {
    pub id: Uuid,
    pub name: String,
    pub endpoint: String,
}

/// One pass over every registered region, in parallel.
pub async fn check_all(state: &AppState, fed: &Federation) -> Result<(), ApiError> {
    let mut tx = state.db.begin(DbScope::System, None, false).await?;
    let regions: Vec<RegionTarget> =
        sqlx::query_as("SELECT id, name, endpoint FROM regions ORDER BY name").fetch_all(&mut *tx).await?;
    tx.commit().await?;
    futures_util::future::join_all(regions.iter().map(|r| check_one(state, fed, r))).await;
    Ok(())
}

/// Pushes to one region and records what its answer says about its health.
pub async fn check_one(state: &AppState, fed: &Federation, region: &RegionTarget) -> Health {
    let health = match push(state, fed, region).await {
        Ok((answer, latency)) => {
            let ms = latency.as_millis() as i64;
            if ms > fed.config.degraded_after_ms as i64 {
                Health::degraded(format!("answered in {ms} ms (over {} ms)", fed.config.degraded_after_ms), ms, answer)
            } else {
                Health { state: "healthy", error: None, latency_ms: Some(ms), answer: Some(answer) }
            }
        }
        Err(Failure::Answered(status, message)) => Health {
            state: "degraded",
            error: Some(format!("answered {status}: {message}")),
            latency_ms: None,
            answer: None,
        },
        Err(Failure::NoAnswer(reason)) => {
            Health { state: "unreachable", error: Some(reason), latency_ms: None, answer: None }
        }
    };
    if let Err(e) = record(state, region, &health).await {
        tracing::warn!(region = %region.name, error = %e, "recording region health failed");
    }
    health
}

/// A region's health as one check found it.
#[derive(Debug, Clone)]
pub struct Health {
    pub state: &'static str,
    pub error: Option<String>,
    pub latency_ms: Option<i64>,
    pub answer: Option<SyncAnswer>,
}

impl Health {
    fn degraded(error: String, ms: i64, answer: SyncAnswer) -> Health {
        Health { state: "degraded", error: Some(error), latency_ms: Some(ms), answer: Some(answer) }
    }
}

enum Failure {
    Answered(u16, String),
    NoAnswer(String),
}

async fn push(state: &AppState, fed: &Federation, region: &RegionTarget) -> Result<(SyncAnswer, Duration), Failure> {
    let confirm = 2 * fed.config.health_interval_seconds.max(1) + 5;
    let payload = sync::build(&state.db, region.id, &region.name, confirm, state.keys.public_key())
        .await
        .map_err(|e| Failure::NoAnswer(format!("building the push: {e}")))?;
    let body = serde_json::to_vec(&payload).map_err(|e| Failure::NoAnswer(e.to_string()))?;
    // A check never outlives its interval (at most 10 s).
    let limit = Duration::from_secs(fed.config.health_interval_seconds.clamp(1, 10));
    let start = Instant::now();
    let call = fed.call(&region.endpoint, &region.name, Method::POST, "/v1/federation/sync", Default::default(), body);
    let resp = match tokio::time::timeout(limit, call).await {
        Err(_) => return Err(Failure::NoAnswer(format!("no answer within {} s", limit.as_secs()))),
        Ok(Err(e)) => return Err(Failure::NoAnswer(e.0)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    let text = resp.text().await.map_err(|e| Failure::NoAnswer(e.to_string()))?;
    let latency = start.elapsed();
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.chars().take(200).collect());
        return Err(Failure::Answered(status.as_u16(), message));
    }
    let answer = serde_json::from_str(&text).map_err(|e| Failure::Answered(status.as_u16(), e.to_string()))?;
    Ok((answer, latency))
}

async fn record(state: &AppState, region: &RegionTarget, h: &Health) -> Result<(), ApiError> {
    let reached = h.answer.is_some();
    let mut tx = state.db.begin(DbScope::System, None, true).await?;
    sqlx::query(
        "UPDATE regions SET health = $2, last_error = $3, latency_ms = $4,
                last_seen_at = CASE WHEN $5 THEN now() ELSE last_seen_at END,
                live_vms = coalesce($6, live_vms)
          WHERE id = $1",
    )
    .bind(region.id)
    .bind(h.state)
    .bind(&h.error)
    .bind(h.latency_ms.map(|m| m as i32))
    .bind(reached)
    .bind(h.answer.as_ref().map(|a| a.live_vms as i32))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let level = match h.state {
        "healthy" => 2,
        "degraded" => 1,
        _ => 0,
    };
    state.metrics.region_health.with_label_values(&[&region.name]).set(level);
    if reached {
        state.metrics.region_last_seen.with_label_values(&[&region.name]).set(chrono::Utc::now().timestamp());
    }
    Ok(())
}
