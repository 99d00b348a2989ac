//! A thin typed client: one method per route family, errors decoded from the
//! API's error body so callers can match on `code` and HTTP status.

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::types::*;
use crate::Operation;

/// An API error (the server answered with an error body) or a transport failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{status} {}: {}", .body.error.code, .body.error.message)]
    Api { status: u16, body: ErrorBody },
    #[error("unexpected answer {status}: {text}")]
    Unexpected { status: u16, text: String },
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Unexpected { status, .. } => Some(*status),
            ClientError::Transport(e) => e.status().map(|s| s.as_u16()),
        }
    }

    /// The API error code (`not_found`, `permission_denied`, ...), when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => Some(&body.error.code),
            _ => None,
        }
    }
}

/// Per-request headers beyond the bearer token.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    pub idempotency_key: Option<String>,
    pub if_match: Option<i64>,
}

/// A client bound to one endpoint and (optionally) one bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(endpoint: &str, token: Option<String>) -> Self {
        Client { http: reqwest::Client::new(), base: endpoint.trim_end_matches('/').to_string(), token }
    }

    /// The same endpoint with another token (after login or a tenant switch).
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Client { http: self.http.clone(), base: self.base.clone(), token: Some(token.into()) }
    }

    pub fn endpoint(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Sends a request and decodes a JSON answer (or the API error).
    pub async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        opts: &RequestOptions,
    ) -> Result<T, ClientError> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = &opts.idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(v) = opts.if_match {
            req = req.header("If-Match", format!("\"{v}\""));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        if (200..300).contains(&status) {
            let slice: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(slice)
                .map_err(|_| ClientError::Unexpected { status, text: String::from_utf8_lossy(&bytes).into_owned() });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api { status, body }),
            Err(_) => Err(ClientError::Unexpected { status, text: String::from_utf8_lossy(&bytes).into_owned() }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send::<(), T>(reqwest::Method::GET, path, None, &RequestOptions::default()).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        opts: &RequestOptions,
    ) -> Result<T, ClientError> {
        self.send(reqwest::Method::POST, path, Some(body), opts).await
    }

    async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        opts: &RequestOptions,
    ) -> Result<T, ClientError> {
        self.send(reqwest::Method::PATCH, path, Some(body), opts).await
    }

    async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send::<(), serde_json::Value>(reqwest::Method::DELETE, path, None, &RequestOptions::default())
            .await
            .map(|_| ())
    }

    // --- auth ---------------------------------------------------------------

    pub async fn login(&self, req: &LoginRequest) -> Result<TokenResponse, ClientError> {
        self.post("/v1/auth/login", req, &RequestOptions::default()).await
    }

    pub async fn switch_tenant(&self, tenant: &str) -> Result<TokenResponse, ClientError> {
        let body = SwitchTenantRequest { tenant: tenant.to_string() };
        self.post("/v1/auth/switch-tenant", &body, &RequestOptions::default()).await
    }

    pub async fn me(&self) -> Result<Me, ClientError> {
        self.get("/v1/me").await
    }

    // --- tenants ------------------------------------------------------------

    pub async fn create_tenant(&self, req: &CreateTenant, opts: &RequestOptions) -> Result<Tenant, ClientError> {
        self.post("/v1/tenants", req, opts).await
    }

    pub async fn get_tenant(&self, id: Uuid) -> Result<Tenant, ClientError> {
        self.get(&format!("/v1/tenants/{id}")).await
    }

    /// `query` is appended as is, e.g. `limit=10&cursor=...` or `name=acme`.
    pub async fn list_tenants(&self, query: &str) -> Result<Page<Tenant>, ClientError> {
        self.get(&format!("/v1/tenants?{query}")).await
    }

    pub async fn update_tenant(
        &self,
        id: Uuid,
        req: &UpdateTenant,
        opts: &RequestOptions,
    ) -> Result<Tenant, ClientError> {
        self.patch(&format!("/v1/tenants/{id}"), req, opts).await
    }

    pub async fn suspend_tenant(&self, id: Uuid) -> Result<Tenant, ClientError> {
        self.post(&format!("/v1/tenants/{id}/suspend"), &serde_json::json!({}), &RequestOptions::default()).await
    }

    pub async fn resume_tenant(&self, id: Uuid) -> Result<Tenant, ClientError> {
        self.post(&format!("/v1/tenants/{id}/resume"), &serde_json::json!({}), &RequestOptions::default()).await
    }

    pub async fn delete_tenant(&self, id: Uuid) -> Result<(), ClientError> {
        self.delete(&format!("/v1/tenants/{id}")).await
    }

    // --- users --------------------------------------------------------------

    pub async fn create_user(&self, req: &CreateUser, opts: &RequestOptions) -> Result<User, ClientError> {
        self.post("/v1/users", req, opts).await
    }

    pub async fn get_user(&self, id: Uuid) -> Result<User, ClientError> {
        self.get(&format!("/v1/users/{id}")).await
    }

    pub async fn list_users(&self, query: &str) -> Result<Page<User>, ClientError> {
        self.get(&format!("/v1/users?{query}")).await
    }

    pub async fn update_user(&self, id: Uuid, req: &UpdateUser, opts: &RequestOptions) -> Result<User, ClientError> {
        self.patch(&format!("/v1/users/{id}"), req, opts).await
    }

    pub async fn delete_user(&self, id: Uuid) -> Result<(), ClientError> {
        self.delete(&format!("/v1/users/{id}")).await
    }

    // --- API tokens ---------------------------------------------------------

    pub async fn create_api_token(&self, req: &CreateApiToken) -> Result<CreatedApiToken, ClientError> {
        self.post("/v1/tokens", req, &RequestOptions::default()).await
    }

    pub async fn list_api_tokens(&self) -> Result<Page<ApiToken>, ClientError> {
        self.get("/v1/tokens").await
    }

    pub async fn revoke_api_token(&self, id: Uuid) -> Result<(), ClientError> {
        self.delete(&format!("/v1/tokens/{id}")).await
    }

    // --- roles and bindings -------------------------------------------------

    pub async fn create_role(&self, req: &CreateRole, opts: &RequestOptions) -> Result<Role, ClientError> {
        self.post("/v1/roles", req, opts).await
    }

    pub async fn get_role(&self, id: Uuid) -> Result<Role, ClientError> {
        self.get(&format!("/v1/roles/{id}")).await
    }

    pub async fn list_roles(&self, query: &str) -> Result<Page<Role>, ClientError> {
        self.get(&format!("/v1/roles?{query}")).await
    }

    pub async fn update_role(&self, id: Uuid, req: &UpdateRole, opts: &RequestOptions) -> Result<Role, ClientError> {
        self.patch(&format!("/v1/roles/{id}"), req, opts).await
    }

    pub async fn delete_role(&self, id: Uuid) -> Result<(), ClientError> {
        self.delete(&format!("/v1/roles/{id}")).await
    }

    pub async fn create_role_binding(
        &self,
        req: &CreateRoleBinding,
        opts: &RequestOptions,
    ) -> Result<RoleBinding, ClientError> {
        self.post("/v1/role-bindings", req, opts).await
    }

    pub async fn get_role_binding(&self, id: Uuid) -> Result<RoleBinding, ClientError> {
        self.get(&format!("/v1/role-bindings/{id}")).await
    }

    pub async fn list_role_bindings(&self, query: &str) -> Result<Page<RoleBinding>, ClientError> {
        self.get(&format!("/v1/role-bindings?{query}")).await
    }

    pub async fn delete_role_binding(&self, id: Uuid) -> Result<(), ClientError> {
        self.delete(&format!("/v1/role-bindings/{id}")).await
    }

    pub async fn authz_check(&self, req: &AuthzCheck) -> Result<AuthzDecision, ClientError> {
        self.post("/v1/authz/check", req, &RequestOptions::default()).await
    }

    // --- audit, catalog -----------------------------------------------------

    pub async fn list_audit_events(&self, query: &str) -> Result<Page<AuditEvent>, ClientError> {
        self.get(&format!("/v1/audit-events?{query}")).await
    }

    pub async fn list_permissions(&self) -> Result<Vec<Permission>, ClientError> {
        self.get("/v1/permissions").await
    }

    // --- any resource by path (compute: regions, clusters, quotas, templates, VMs) ---

    /// `POST path` with a JSON body: a create (201) or an action (202 with an operation).
    pub async fn post_at<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        opts: &RequestOptions,
    ) -> Result<T, ClientError> {
        self.post(path, body, opts).await
    }

    /// `GET path`.
    pub async fn get_at<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.get(path).await
    }

    /// `PATCH path` with a partial update.
    pub async fn patch_at<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        opts: &RequestOptions,
    ) -> Result<T, ClientError> {
        self.patch(path, body, opts).await
    }

    /// `PUT path` without a body: make a membership exist (204, also when it did).
    pub async fn put_at(&self, path: &str) -> Result<(), ClientError> {
        self.send::<(), Option<Operation>>(reqwest::Method::PUT, path, None, &RequestOptions::default()).await.map(drop)
    }

    /// `DELETE path`: 204, or 202 with the operation doing the deletion.
    pub async fn delete_at(&self, path: &str) -> Result<Option<Operation>, ClientError> {
        self.send::<(), Option<Operation>>(reqwest::Method::DELETE, path, None, &RequestOptions::default()).await
    }

    /// Polls operation `id` until it is done (or `timeout` passes: the last state
    /// seen is answered, not done).
    pub async fn wait_operation(&self, id: Uuid, timeout: std::time::Duration) -> Result<Operation, ClientError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            let op: Operation = self.get(&format!("/v1/operations/{id}")).await?;
            if op.status.is_done() || std::time::Instant::now() >= deadline {
                return Ok(op);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(1));
        }
    }
}
