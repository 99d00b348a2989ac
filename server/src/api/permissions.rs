//! `GET /v1/permissions`: the permission catalog, optionally filtered by scope.

use axum::Json;
use basalt_client::Permission as PermissionView;
use serde::Deserialize;

use super::extract::ApiQuery;
use crate::authz::{Permission, ScopeKind};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PermissionQuery {
    /// `system`, `tenant` or `cluster`: only permissions grantable there.
    pub scope: Option<String>,
}

/// The catalog, as served.
pub fn catalog(scope: Option<ScopeKind>) -> Vec<PermissionView> {
    Permission::ALL
        .iter()
        .filter(|p| scope.is_none_or(|s| p.scopes().contains(&s)))
        .map(|p| PermissionView {
            name: p.name().to_string(),
            description: p.description().to_string(),
            scopes: p.scopes().iter().map(|s| s.as_str().to_string()).collect(),
        })
        .collect()
}

/// List the permission catalog.
#[utoipa::path(get, operation_id = "permissions_list", path = "/v1/permissions", tag = "rbac", params(PermissionQuery),
    responses((status = 200, body = Vec<PermissionView>)), security(("bearer" = [])))]
pub async fn list(ApiQuery(q): ApiQuery<PermissionQuery>) -> ApiResult<Json<Vec<PermissionView>>> {
    let scope = match q.scope.as_deref() {
        None => None,
        Some("system") => Some(ScopeKind::System),
        Some("tenant") => Some(ScopeKind::Tenant),
        Some("cluster") => Some(ScopeKind::Cluster),
        Some(_) => return Err(ApiError::bad_field("scope", "scope must be system, tenant or cluster")),
    };
    Ok(Json(catalog(scope)))
}
