//! Federation: one global controller, regional gateways, signed calls between them.
//!
//! * [`Mode`]: the one binary runs `standalone` (everything, as before), `global`
//!   (identity, tenants, roles, bindings, the region registry, entitlements; every
//!   region-scoped route is forwarded by [`proxy`]) or `region` (compute in its own
//!   Postgres; callers are authenticated by the controller, [`identity`]).
//! * [`signing`]: HMAC-SHA256 over a canonical request, per-region HKDF keys,
//!   nonces, rotation.
//! * [`sync`]: the controller pushes tenant states, entitlements and its token
//!   key to each region on change and with every health check ([`health`]); a
//!   region that has not been confirmed recently refuses tenants' mutations.
//!
//! [`Federation`] is the runtime a non-standalone server carries in `AppState`.

pub mod health;
pub mod identity;
pub mod proxy;
pub mod signing;
pub mod sync;

use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method};

use crate::error::ApiError;
use signing::{Caller, Keyring, KeyringError};

/// How this process takes part in an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Standalone,
    Global,
    Region,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Global => "global",
            Mode::Region => "region",
        }
    }
}

/// Federation settings (part of `Config`).
#[derive(Debug, Clone)]
pub struct FederationConfig {
    pub mode: Mode,
    /// The keyring file (masters at the controller, derived keys in a region).
    pub keys_file: Option<PathBuf>,
    /// A region's name (region mode).
    pub region_name: Option<String>,
    /// The URL others reach this server at (a region registers it).
    pub public_url: Option<String>,
    /// The controller's URL (region mode).
    pub global_url: Option<String>,
    /// Seconds between health checks (and confirmations) of each region.
    pub health_interval_seconds: u64,
    /// A region answering slower than this is `degraded`.
    pub degraded_after_ms: u64,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            mode: Mode::Standalone,
            keys_file: None,
            region_name: None,
            public_url: None,
            global_url: None,
            health_interval_seconds: 30,
            degraded_after_ms: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

/// The keyring file, re-read when it changes (keys rotate without a restart).
struct KeyringFile {
    path: PathBuf,
    cached: Mutex<(Option<SystemTime>, Keyring)>,
}

impl KeyringFile {
    fn open(path: PathBuf) -> Result<KeyringFile, KeyringError> {
        let ring = Keyring::load(&path)?;
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        Ok(KeyringFile { path, cached: Mutex::new((mtime, ring)) })
    }

    fn current(&self) -> Keyring {
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let mut slot = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if mtime != slot.0 {
            match Keyring::load(&self.path) {
                Ok(ring) => {
                    tracing::info!(path = %self.path.display(), "federation keyring reloaded");
                    *slot = (mtime, ring);
                }
                // Keep the last good keyring: a half-written file must not stop the federation.
                Err(e) => tracing::warn!(error = %e, "federation keyring not reloaded"),
            }
        }
        slot.1.clone()
    }
}

/// The federation runtime of a global controller or a region.
pub struct Federation {
    pub config: FederationConfig,
    keys: KeyringFile,
    http: reqwest::Client,
    /// Region mode: the controller's token verifier.
    global_tokens: RwLock<Option<std::sync::Arc<crate::auth::jwt::Verifier>>>,
    /// Global mode: wakes the health loop to push now (a tenant changed).
    pub changed: tokio::sync::Notify,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation").field("mode", &self.config.mode).finish_non_exhaustive()
    }
}

/// A signed call's failure to reach its peer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

impl Federation {
    pub fn new(config: FederationConfig) -> Result<Federation, FederationError> {
        let need = |v: &Option<String>, what: &str| {
            v.clone().ok_or_else(|| FederationError::Config(format!("--mode {} needs {what}", config.mode.as_str())))
        };
        if config.mode == Mode::Region {
            need(&config.region_name, "--region-name")?;
            need(&config.global_url, "--global-url")?;
            need(&config.public_url, "--public-url")?;
        }
        let keys_file = config.keys_file.clone().ok_or_else(|| {
            FederationError::Config(format!("--mode {} needs --federation-keys", config.mode.as_str()))
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| FederationError::Config(format!("HTTP client: {e}")))?;
        Ok(Federation {
            keys: KeyringFile::open(keys_file)?,
            config,
            http,
            global_tokens: RwLock::new(None),
            changed: tokio::sync::Notify::new(),
        })
    }

    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    pub fn global_tokens(&self) -> Option<std::sync::Arc<crate::auth::jwt::Verifier>> {
        self.global_tokens.read().ok().and_then(|v| v.clone())
    }

    pub fn set_global_tokens(&self, raw_public_key: &[u8]) {
        let fresh = crate::auth::jwt::Verifier::from_public_key(raw_public_key);
        if let Ok(mut slot) = self.global_tokens.write() {
            let same = slot.as_ref().is_some_and(|v| v.public_key() == raw_public_key);
            if !same {
                tracing::info!("controller token key installed");
                *slot = Some(std::sync::Arc::new(fresh));
            }
        }
    }

    /// Tell the health loop to push tenant states now (global mode).
    pub fn notify_changed(&self) {
        self.changed.notify_one();
    }

    /// The key a call about `region` is signed or checked with, by key id.
    fn key_for(&self, key_id: &str, region: &str) -> Option<signing::Secret> {
        let ring = self.keys.current();
        let secret = ring.get(key_id)?;
        Some(match self.config.mode {
            // The controller holds masters and derives each region's key.
            Mode::Global => secret.derive_region_key(region),
            // A region holds its own derived keys, and speaks only for itself.
            _ => secret.clone(),
        })
    }

    /// Makes a signed call to `base_url` (a region's endpoint, or the controller's)
    /// about `region`, with `extra` headers (signed too).
    pub async fn call(
        &self,
        base_url: &str,
        region: &str,
        method: Method,
        path_and_query: &str,
        mut extra: HeaderMap,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, Unreachable> {
        let caller = if self.config.mode == Mode::Global { Caller::Global } else { Caller::Region };
        let ring = self.keys.current();
        let (key_id, _) = ring.signing();
        let key = self.key_for(key_id, region).ok_or_else(|| Unreachable("no signing key".into()))?;
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        if !body.is_empty() && !extra.contains_key("content-type") {
            extra.insert("content-type", axum::http::HeaderValue::from_static("application/json"));
        }
        let now = chrono::Utc::now().timestamp();
        signing::sign(key_id, &key, caller, region, &method, path, query, &mut extra, &body, now);
        let url = format!("{}{}", base_url.trim_end_matches('/'), path_and_query);
        self.http
            .request(method, url)
            .headers(extra)
            .body(body)
            .send()
            .await
            .map_err(|e| Unreachable(if e.is_timeout() { "timed out".into() } else { short_error(&e) }))
    }

    /// Checks an incoming service call made by `expect`, and records its nonce.
    /// Refusals are 401s; the key id (never a key) is logged.
    pub async fn verify_incoming(
        &self,
        db: &crate::db::Db,
        parts: &axum::http::request::Parts,
        body: &[u8],
        expect: Caller,
    ) -> Result<signing::Verified, ApiError> {
        // A region accepts only calls for itself (its configured name).
        let must_be = if self.config.mode == Mode::Region { self.config.region_name.as_deref() } else { None };
        let now = chrono::Utc::now().timestamp();
        let key_id = parts.headers.get(signing::KEY_ID).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let verified = signing::verify(
            &parts.method,
            parts.uri.path(),
            parts.uri.query(),
            &parts.headers,
            body,
            now,
            expect,
            must_be,
            |id, region| self.key_for(id, region),
        )
        .map_err(|e| {
            tracing::warn!(key_id = %key_id, path = %parts.uri.path(), error = %e, "signed call refused");
            ApiError::Unauthenticated(format!("service signature refused: {e}"))
        })?;
        signing::remember_nonce(db, &verified).await.inspect_err(|_| {
            tracing::warn!(key_id = %key_id, path = %parts.uri.path(), "signed call refused: replayed nonce");
        })?;
        Ok(verified)
    }
}

/// A transport error without the URL's query or anything secret.
fn short_error(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        // The URL (a region's endpoint) is known to the caller; keep the message short.
        let mut s = e.to_string();
        s.truncate(200);
        s
    }
}

/// `basalt-server federation region-keys`: a region's keyring derived from the controller's.
pub fn region_keyring_text(master: &std::path::Path, region: &str) -> Result<String, KeyringError> {
    Ok(Keyring::load(master)?.derive_for_region(region).to_file_text())
}
