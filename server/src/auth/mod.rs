//! Authentication: who is calling, in which context.
//!
//! A bearer credential is either a user token (a JWT signed by this controller,
//! EdDSA, short-lived) or an API token (`bst_<id>_<secret>`, long-lived, only a
//! SHA-256 of the secret is stored, revocable). Either way it resolves to one
//! [`Principal`] carrying exactly one context: system scope or one tenant.

pub mod api_token;
pub mod jwt;
pub mod password;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::app::AppState;
use crate::db::DbScope;
use crate::error::ApiError;

/// The context a principal acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Provider staff acting on the estate itself.
    System,
    /// Acting inside one tenant.
    Tenant(Uuid),
}

impl Context {
    pub fn db_scope(self) -> DbScope {
        match self {
            Context::System => DbScope::System,
            Context::Tenant(t) => DbScope::Tenant(t),
        }
    }

    pub fn tenant(self) -> Option<Uuid> {
        match self {
            Context::System => None,
            Context::Tenant(t) => Some(t),
        }
    }
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    UserToken,
    ApiToken(Uuid),
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub username: String,
    /// The user's own tenant; `None` for provider staff.
    pub home_tenant: Option<Uuid>,
    pub context: Context,
    pub credential: CredentialKind,
}

impl Principal {
    /// Provider staff: users that belong to no tenant.
    pub fn is_provider_staff(&self) -> bool {
        self.home_tenant.is_none()
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let token = bearer(&parts.headers)?;
        let principal = authenticate(state, token).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// The bearer credential of a request (a 401 naming what is wrong otherwise).
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthenticated("an Authorization: Bearer token is required".into()))?;
    let value =
        header.to_str().map_err(|_| ApiError::Unauthenticated("the Authorization header is not valid text".into()))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthenticated("the Authorization header must be `Bearer <token>`".into()))
}

/// Resolves a bearer credential issued by this controller (an API token or a user token).
pub async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if token.starts_with(api_token::PREFIX) {
        api_token::authenticate(&state.db, token).await
    } else {
        state.keys.verify(token)
    }
}
