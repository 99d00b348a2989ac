//! Who is calling a region. A region holds no users, roles or bindings: the
//! caller is either forwarded by the controller (a signed call carrying the
//! caller and its grants in `X-Basalt-Principal`), or calls the region directly
//! with a controller-issued credential: a user token is checked against the
//! controller's public key first (a region cannot mint or accept a forged one),
//! then the controller resolves the credential to its grants with a signed call.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::signing::{Caller, PRINCIPAL, SIGNATURE};
use super::Federation;
use crate::app::AppState;
use crate::auth::{Context, CredentialKind, Principal};
use crate::authz::GrantRow;
use crate::error::ApiError;

/// The caller and its grants as the controller resolved them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ForwardedPrincipal {
    pub user_id: Uuid,
    pub username: String,
    pub home_tenant: Option<Uuid>,
    /// The context tenant (absent: system scope).
    pub tenant: Option<Uuid>,
    pub api_token: Option<Uuid>,
    pub grants: Vec<GrantRow>,
}

impl ForwardedPrincipal {
    pub fn new(p: &Principal, grants: &[GrantRow]) -> ForwardedPrincipal {
        ForwardedPrincipal {
            user_id: p.user_id,
            username: p.username.clone(),
            home_tenant: p.home_tenant,
            tenant: p.context.tenant(),
            api_token: match p.credential {
                CredentialKind::ApiToken(id) => Some(id),
                CredentialKind::UserToken => None,
            },
            grants: grants.to_vec(),
        }
    }

    /// As a header value: base64url of the JSON.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(value: &str) -> Result<ForwardedPrincipal, ApiError> {
        let bad = || ApiError::Unauthenticated("the forwarded caller is not readable".into());
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).map_err(|_| bad())?;
        serde_json::from_slice(&raw).map_err(|_| bad())
    }

    pub fn into_principal(self) -> (Principal, Vec<GrantRow>) {
        let principal = Principal {
            user_id: self.user_id,
            username: self.username,
            home_tenant: self.home_tenant,
            context: match self.tenant {
                Some(t) => Context::Tenant(t),
                None => Context::System,
            },
            credential: match self.api_token {
                Some(id) => CredentialKind::ApiToken(id),
                None => CredentialKind::UserToken,
            },
        };
        (principal, self.grants)
    }
}

/// Authenticates a request to a region; answers the caller, its grants and the
/// request (its body restored after a signature check read it).
pub async fn authenticate(
    state: &AppState,
    fed: &Federation,
    req: Request,
) -> Result<(Principal, Vec<GrantRow>, Request), ApiError> {
    if req.headers().contains_key(SIGNATURE) {
        let (parts, body) = req.into_parts();
        let bytes = read_body(body, state.config.max_body_bytes).await?;
        fed.verify_incoming(&state.db, &parts, &bytes, Caller::Global).await?;
        let value = parts
            .headers
            .get(PRINCIPAL)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::Unauthenticated("a forwarded call must name its caller".into()))?;
        let (principal, grants) = ForwardedPrincipal::decode(value)?.into_principal();
        return Ok((principal, grants, Request::from_parts(parts, Body::from(bytes))));
    }
    let token = crate::auth::bearer(req.headers())?;
    if !token.starts_with(crate::auth::api_token::PREFIX) {
        let verifier = fed.global_tokens().ok_or_else(|| ApiError::RegionUnavailable {
            region: fed.config.region_name.clone().unwrap_or_default(),
            reason: "the region has not registered with the global controller yet".into(),
        })?;
        verifier.verify(token)?;
    }
    let resolved = resolve_at_controller(fed, token).await?;
    let (principal, grants) = resolved.into_principal();
    Ok((principal, grants, req))
}

/// Reads a body up to `limit` bytes (413 beyond).
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::PayloadTooLarge { limit })
}

/// Asks the controller who holds `token` and what it may do here.
async fn resolve_at_controller(fed: &Federation, token: &str) -> Result<ForwardedPrincipal, ApiError> {
    let region = fed.config.region_name.clone().unwrap_or_default();
    let global = fed.config.global_url.clone().unwrap_or_default();
    let unavailable = |reason: String| ApiError::RegionUnavailable { region: "global".into(), reason };
    let body = serde_json::to_vec(&serde_json::json!({ "token": token })).map_err(ApiError::internal)?;
    let resp = fed
        .call(&global, &region, Method::POST, "/v1/federation/resolve", HeaderMap::new(), body)
        .await
        .map_err(|e| unavailable(format!("the global controller cannot be reached: {e}")))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| unavailable(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(ApiError::internal);
    }
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("the controller answered {status}"));
    Err(match status.as_u16() {
        401 => ApiError::Unauthenticated(message),
        403 => ApiError::Forbidden(message),
        _ => unavailable(message),
    })
}
