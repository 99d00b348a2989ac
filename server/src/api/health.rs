//! Liveness, readiness and metrics: public, cheap, no tenant data.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

/// The process is up.
#[utoipa::path(get, operation_id = "health_healthz", path = "/healthz", tag = "health", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: Postgres answers.
#[utoipa::path(get, operation_id = "health_readyz", path = "/readyz", tag = "health",
    responses((status = 200, description = "ready"), (status = 503, description = "Postgres is unavailable")))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    state.db.ping().await.map_err(|_| ApiError::Unavailable("the database is unavailable".into()))?;
    Ok(Json(json!({ "status": "ready" })))
}

/// Prometheus text exposition.
#[utoipa::path(get, operation_id = "health_metrics", path = "/metrics", tag = "health", responses((status = 200, description = "metrics")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
