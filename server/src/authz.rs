//! Authorization: the permission catalog and the one place a permission is checked.
//!
//! Every route of the API is registered with an [`Access`] (see `api::routes`), and
//! the router runs [`authorize`] before the handler: no handler decides on its own
//! whether the caller may run it. Permissions are `resource:action` strings, each
//! grantable at some of the scopes `system`, `tenant`, `cluster`.
//!
//! Effective permissions come from [`effective_permissions`]. Until role bindings
//! exist (the RBAC issue) the rule is fixed: provider staff at system scope hold
//! every system permission; whoever acts inside a tenant holds that tenant's
//! permissions. RLS stays underneath whatever this decides.

use std::collections::BTreeSet;

use crate::auth::{Context, Principal};
use crate::error::ApiError;

/// Where a permission can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeKind {
    System,
    Tenant,
    Cluster,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::System => "system",
            ScopeKind::Tenant => "tenant",
            ScopeKind::Cluster => "cluster",
        }
    }
}

macro_rules! permissions {
    ($( $variant:ident = $name:literal, [$($scope:ident),+], $desc:literal; )+) => {
        /// A catalog permission. `Permission::ALL` is the catalog.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Permission { $($variant),+ }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),+];

            /// The `resource:action` string.
            pub fn name(self) -> &'static str {
                match self { $(Permission::$variant => $name),+ }
            }

            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $desc),+ }
            }

            /// The scopes this permission may be granted at.
            pub fn scopes(self) -> &'static [ScopeKind] {
                match self { $(Permission::$variant => &[$(ScopeKind::$scope),+]),+ }
            }

            pub fn from_name(name: &str) -> Option<Permission> {
                match name { $($name => Some(Permission::$variant),)+ _ => None }
            }
        }
    };
}

permissions! {
    TenantCreate = "tenant:create", [System], "Create tenants.";
    TenantList = "tenant:list", [System], "List every tenant of the estate.";
    TenantRead = "tenant:read", [System, Tenant], "Read a tenant's record.";
    TenantUpdate = "tenant:update", [System], "Change a tenant's display name and suspension policy.";
    TenantSuspend = "tenant:suspend", [System], "Suspend a tenant: reads stay, changes are refused.";
    TenantResume = "tenant:resume", [System], "Resume a suspended tenant.";
    TenantDelete = "tenant:delete", [System], "Delete a tenant (soft; purged after retention).";
    TenantSwitch = "tenant:switch", [System, Tenant], "Exchange the credential for one acting inside another tenant.";
    UserCreate = "user:create", [System, Tenant], "Create users in the current context.";
    UserList = "user:list", [System, Tenant], "List users of the current context.";
    UserRead = "user:read", [System, Tenant], "Read a user.";
    UserUpdate = "user:update", [System, Tenant], "Change a user's email, password or disabled flag.";
    UserDelete = "user:delete", [System, Tenant], "Delete a user.";
    TokenCreate = "token:create", [System, Tenant], "Create API tokens for oneself.";
    TokenList = "token:list", [System, Tenant], "List one's own API tokens.";
    TokenRevoke = "token:revoke", [System, Tenant], "Revoke one's own API tokens.";
    AuditRead = "audit:read", [System, Tenant], "Read the audit trail of the current context.";
    PermissionList = "permission:list", [System, Tenant], "Read the permission catalog.";
}

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential at all (health, login, the OpenAPI document).
    Public,
    /// Any valid credential (the caller's own identity: `/v1/me`).
    Authenticated,
    /// A valid credential holding this permission in its context.
    Permission(Permission),
}

/// The permissions `principal` holds in its current context.
pub fn effective_permissions(principal: &Principal) -> BTreeSet<Permission> {
    let scope = match principal.context {
        Context::System if principal.is_provider_staff() => ScopeKind::System,
        // A tenant user can never carry system scope (token issuing refuses it);
        // should one appear, it holds nothing.
        Context::System => return BTreeSet::new(),
        Context::Tenant(_) => ScopeKind::Tenant,
    };
    Permission::ALL.iter().copied().filter(|p| p.scopes().contains(&scope)).collect()
}

/// The choke point: refuse unless `principal` holds `permission`.
pub fn require(principal: &Principal, permission: Permission) -> Result<(), ApiError> {
    if effective_permissions(principal).contains(&permission) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied { permission: permission.name().to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for p in Permission::ALL {
            assert!(seen.insert(p.name()), "duplicate {}", p.name());
            let (res, act) = p.name().split_once(':').expect("resource:action");
            assert!(!res.is_empty() && !act.is_empty());
            assert_eq!(Permission::from_name(p.name()), Some(*p));
            assert!(!p.description().is_empty());
        }
    }
}
