//! Webhooks: a tenant's audit events, delivered as signed HTTP POSTs.
//!
//! * [`sealing`]: signing secrets are encrypted at rest under the server's
//!   webhook key (the server must sign, so it cannot keep a hash).
//! * [`target`]: which URLs a webhook may call (no internal addresses), checked
//!   when a webhook is written and again before every call.
//! * [`send`]: one signed POST, bounded in time, and its outcome.
//! * [`worker`]: the background job (one replica at a time) that turns new
//!   audit events into deliveries and sends them, with retries.
//!
//! The routes are in `api/webhooks.rs`.

pub mod sealing;
pub mod send;
pub mod target;
pub mod worker;

/// What the server delivers webhooks with: the key sealing their secrets and
/// the one HTTP client every call goes through.
#[derive(Debug)]
pub struct Webhooks {
    pub key: sealing::SealingKey,
    pub sender: send::Sender,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Key(#[from] sealing::KeyError),
    #[error("building the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl Webhooks {
    /// Loads (or generates) the sealing key and builds the client.
    pub fn start(config: &crate::config::WebhookConfig) -> Result<Webhooks, StartError> {
        Ok(Webhooks {
            key: sealing::SealingKey::load_or_generate(&config.key_file)?,
            sender: send::Sender::new(config.allow_private_targets, config.timeout)?,
        })
    }
}

/// Whether the audit action `action` matches one of `patterns`: `*` matches
/// every action, `vm.*` every action under `vm.`, anything else exactly.
pub fn matches(patterns: &[String], action: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => p == action,
    })
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_exactly_by_prefix_or_all() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(matches(&p(&["*"]), "vm.create"));
        assert!(matches(&p(&["vm.*"]), "vm.create"));
        assert!(matches(&p(&["vm.*"]), "vm.reconcile.stop"));
        assert!(!matches(&p(&["vm.*"]), "vmx.create"));
        assert!(!matches(&p(&["vm.*"]), "user.create"));
        assert!(matches(&p(&["user.create"]), "user.create"));
        assert!(!matches(&p(&["user.create"]), "user.create.more"));
    }
}
