//! Server configuration: flags, then `BASALT_*` environment variables, then an
//! optional TOML file (`--config`), then defaults, in that order of precedence.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Settings a TOML file may hold (every key optional; same names as the flags).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub app_database_url: Option<String>,
    pub app_database_password: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub jwt_key_file: Option<PathBuf>,
    pub token_ttl_seconds: Option<i64>,
    pub tenant_retention_days: Option<i64>,
    pub purge_interval_seconds: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub db_max_connections: Option<u32>,
    pub cpu_overcommit: Option<u32>,
    pub reconcile_interval_seconds: Option<u64>,
    pub mode: Option<crate::federation::Mode>,
    pub federation_keys: Option<PathBuf>,
    pub region_name: Option<String>,
    pub public_url: Option<String>,
    pub global_url: Option<String>,
    pub health_interval_seconds: Option<u64>,
    pub degraded_after_ms: Option<u64>,
    pub webhook_key_file: Option<PathBuf>,
    pub webhook_allow_private_targets: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("parsing {path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("{0}")]
    Missing(&'static str),
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.display().to_string(), source })
    }
}

/// The resolved configuration of a running server.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The administrative (owner) URL: used for migrations only.
    pub database_url: String,
    /// The app role's URL; every request is served over it.
    pub app_database_url: String,
    pub app_database_password: Option<String>,
    pub state_dir: PathBuf,
    pub jwt_key_file: PathBuf,
    pub token_ttl_seconds: i64,
    pub tenant_retention_days: i64,
    pub purge_interval_seconds: u64,
    pub max_body_bytes: usize,
    pub db_max_connections: u32,
    /// Schedulable vCPUs per host CPU (placement).
    pub cpu_overcommit: u32,
    /// Seconds between reconciler passes.
    pub reconcile_interval_seconds: u64,
    /// Standalone, or a global controller or region of a federation.
    pub federation: crate::federation::FederationConfig,
    /// Webhook delivery: the key sealing signing secrets, target rules, retries.
    pub webhooks: WebhookConfig,
}

/// How webhooks are delivered (`server/src/webhooks/`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The 32-byte key (hex) that seals webhook signing secrets at rest;
    /// generated on first start, like the JWT key, and shared by replicas.
    pub key_file: PathBuf,
    /// Deliver to loopback, private, link-local addresses too (tests, dev mode).
    /// Off by default: a tenant must not make Basalt call internal services.
    pub allow_private_targets: bool,
    /// How often the delivery job looks for new events and due retries.
    pub poll_interval: std::time::Duration,
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: i32,
    /// The first retry's delay; each further one doubles it.
    pub retry_base: std::time::Duration,
    /// The bound on one HTTP call (connect, send, answer).
    pub timeout: std::time::Duration,
}

impl WebhookConfig {
    pub fn defaults(state_dir: &Path) -> WebhookConfig {
        WebhookConfig {
            key_file: state_dir.join("webhook-secrets.key"),
            allow_private_targets: false,
            poll_interval: std::time::Duration::from_secs(2),
            max_attempts: 6,
            retry_base: std::time::Duration::from_secs(10),
            timeout: std::time::Duration::from_secs(10),
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Config {
    /// Defaults for everything but the database URL.
    pub fn with_database(database_url: String, state_dir: PathBuf) -> Result<Config, ConfigError> {
        let app = crate::db::derive_app_url(&database_url, None)
            .map_err(|_| ConfigError::Missing("database URL must look like postgres://user@host/db"))?;
        Ok(Config {
            listen: DEFAULT_LISTEN.parse().expect("constant address"),
            app_database_url: app,
            database_url,
            app_database_password: None,
            jwt_key_file: state_dir.join("jwt-ed25519.pk8"),
            webhooks: WebhookConfig::defaults(&state_dir),
            state_dir,
            token_ttl_seconds: 3600,
            tenant_retention_days: 30,
            purge_interval_seconds: 3600,
            max_body_bytes: 1 << 20,
            db_max_connections: 16,
            cpu_overcommit: 4,
            reconcile_interval_seconds: 30,
            federation: crate::federation::FederationConfig::default(),
        })
    }

    /// Fills every field the flags left empty from the file, then from defaults.
    pub fn resolve(flags: FileConfig, file: FileConfig) -> Result<Config, ConfigError> {
        let database_url = flags
            .database_url
            .or(file.database_url)
            .ok_or(ConfigError::Missing("a database URL is required (--database-url or BASALT_DATABASE_URL)"))?;
        let state_dir = flags.state_dir.or(file.state_dir).unwrap_or_else(|| PathBuf::from("/var/lib/basalt"));
        let mut c = Config::with_database(database_url, state_dir)?;
        c.app_database_password = flags.app_database_password.or(file.app_database_password);
        if let Some(url) = flags.app_database_url.or(file.app_database_url) {
            c.app_database_url = url;
        } else if let Some(pw) = &c.app_database_password {
            c.app_database_url = crate::db::derive_app_url(&c.database_url, Some(pw))
                .map_err(|_| ConfigError::Missing("database URL must look like postgres://user@host/db"))?;
        }
        macro_rules! take {
            ($field:ident) => {
                if let Some(v) = flags.$field.or(file.$field) {
                    c.$field = v;
                }
            };
        }
        take!(listen);
        take!(jwt_key_file);
        take!(token_ttl_seconds);
        take!(tenant_retention_days);
        take!(purge_interval_seconds);
        take!(max_body_bytes);
        take!(db_max_connections);
        take!(cpu_overcommit);
        take!(reconcile_interval_seconds);
        if let Some(v) = flags.webhook_key_file.or(file.webhook_key_file) {
            c.webhooks.key_file = v;
        }
        if let Some(v) = flags.webhook_allow_private_targets.or(file.webhook_allow_private_targets) {
            c.webhooks.allow_private_targets = v;
        }
        let f = &mut c.federation;
        if let Some(mode) = flags.mode.or(file.mode) {
            f.mode = mode;
        }
        f.keys_file = flags.federation_keys.or(file.federation_keys);
        f.region_name = flags.region_name.or(file.region_name);
        f.public_url = flags.public_url.or(file.public_url);
        f.global_url = flags.global_url.or(file.global_url);
        if let Some(v) = flags.health_interval_seconds.or(file.health_interval_seconds) {
            f.health_interval_seconds = v;
        }
        if let Some(v) = flags.degraded_after_ms.or(file.degraded_after_ms) {
            f.degraded_after_ms = v;
        }
        Ok(c)
    }
}
