//! The API handle resources get from a configured provider: the client for the
//! token's own context, the provider's default `tenant`, and what is cached for
//! the life of one provider process — the caller (`/v1/me`), the permission
//! catalog, and one tenant token per tenant, obtained once with
//! `POST /v1/auth/switch-tenant`.
//!
//! [`Api::for_tenant`] is the one place that decides which context a request runs
//! in: a resource's `tenant_id` if set, else the provider's `tenant`, else the
//! token's own context. Naming the token's own tenant costs no exchange.

use std::collections::HashMap;
use std::sync::Arc;

use basalt_client::{Client, Me, Permission};
use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, OnceCell};

use super::diag::Error;

/// Where a tenant selection came from, so an error can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantSource {
    /// The resource's `tenant_id` attribute.
    Attribute,
    /// The provider block's `tenant` (or `BASALT_TENANT`).
    Provider,
}

/// A tenant token and when it expires.
type TenantToken = (Client, DateTime<Utc>);

#[derive(Debug, Default)]
struct Cache {
    me: OnceCell<Me>,
    catalog: OnceCell<Vec<Permission>>,
    /// Keyed by the tenant as named (id or name) and by its id.
    tenants: Mutex<HashMap<String, TenantToken>>,
}

/// What a configured provider hands to resources.
#[derive(Debug, Clone)]
pub struct Api {
    /// The client acting in the token's own context.
    pub client: Client,
    /// The provider's `tenant` (id or name), if set.
    pub tenant: Option<String>,
    cache: Arc<Cache>,
}

/// A tenant token is renewed when it has less than this left.
const RENEW_BEFORE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl Api {
    pub fn new(client: Client, tenant: Option<String>) -> Self {
        Api { client, tenant, cache: Arc::default() }
    }

    /// The caller as `GET /v1/me` describes it in the token's own context (cached).
    pub async fn me(&self) -> Result<&Me, Error> {
        Ok(self.cache.me.get_or_try_init(|| self.client.me()).await?)
    }

    /// The permission catalog (`GET /v1/permissions`, cached).
    pub async fn permission_catalog(&self) -> Result<&[Permission], Error> {
        Ok(self.cache.catalog.get_or_try_init(|| self.client.list_permissions()).await?)
    }

    /// A client acting inside `tenant_id` (a resource's attribute: id or name), else
    /// inside the provider's `tenant`, else in the token's own context. A tenant other
    /// than the token's own is entered once per process by token exchange.
    pub async fn for_tenant(&self, tenant_id: Option<&str>) -> Result<Client, Error> {
        let (target, source) = match (tenant_id, self.tenant.as_deref()) {
            (Some(t), _) => (t, TenantSource::Attribute),
            (None, Some(t)) => (t, TenantSource::Provider),
            (None, None) => return Ok(self.client.clone()),
        };
        let me = self.me().await?;
        let own = me.tenant_id.is_some_and(|id| id.to_string() == target) || me.tenant_name.as_deref() == Some(target);
        if own {
            return Ok(self.client.clone());
        }
        // Holding the lock across the exchange makes concurrent resources of one
        // tenant share a single switch.
        let mut tenants = self.cache.tenants.lock().await;
        if let Some((client, expires_at)) = tenants.get(target) {
            if *expires_at - RENEW_BEFORE > Utc::now() {
                return Ok(client.clone());
            }
        }
        let switched = self.client.switch_tenant(target).await.map_err(|err| Error::TenantSwitch {
            tenant: target.to_string(),
            from: source,
            err,
        })?;
        let client = self.client.with_token(switched.token);
        if let Some(id) = switched.tenant_id {
            tenants.insert(id.to_string(), (client.clone(), switched.expires_at));
        }
        tenants.insert(target.to_string(), (client.clone(), switched.expires_at));
        tracing::debug!(tenant = target, "switched tenant context");
        Ok(client)
    }
}
