//! One delivery attempt: a signed JSON POST, bounded in time.
//!
//! Headers: `Content-Type: application/json`, `Basalt-Webhook-Id`,
//! `Basalt-Delivery-Id`, `Basalt-Event` (the audit action or `ping`) and
//! `Basalt-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! where the key is the secret's UTF-8 bytes as shown at creation. Receivers
//! should recompute it over the raw body and refuse old timestamps.
//!
//! Every call goes through one [`Sender`]: an HTTP client (rustls, Mozilla's
//! roots) whose DNS resolver refuses internal addresses, so the
//! address a connection is made to is the one checked, whatever the name
//! resolved to a moment before; literal addresses are checked before the call.
//! It follows no redirect and uses no proxy. Neither the secret nor the body is
//! ever logged; an error is recorded as its kind, without the URL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;
use uuid::Uuid;

use super::target::{self, TargetError};

/// The HTTP client of every delivery.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("allow_private", &self.allow_private).finish()
    }
}

impl Sender {
    /// A client bounded by `timeout` per call; internal targets refused unless `allow_private`.
    pub fn new(allow_private: bool, timeout: Duration) -> Result<Sender, reqwest::Error> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("Basalt-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender { client, allow_private })
    }

    /// POSTs `d` once; the target is checked again first.
    pub async fn post(&self, d: &Delivery<'_>) -> Outcome {
        let started = Instant::now();
        let result = self.attempt(d).await;
        let duration = started.elapsed();
        match result {
            Ok(code) => Outcome { status_code: Some(code), error: None, duration },
            Err(error) => Outcome { status_code: None, error: Some(error), duration },
        }
    }

    async fn attempt(&self, d: &Delivery<'_>) -> Result<u16, String> {
        let url = target::parse(d.url).map_err(|e| e.to_string())?;
        // Names the refused address in the outcome; the resolver enforces it at connect.
        target::resolve(&url, self.allow_private).await.map_err(|e| e.to_string())?;
        let t = chrono::Utc::now().timestamp();
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Basalt-Webhook-Id", d.webhook_id.to_string())
            .header("Basalt-Delivery-Id", d.delivery_id.to_string())
            .header("Basalt-Event", d.event_type)
            .header("Basalt-Signature", signature(d.secret, t, d.body))
            .body(d.body.to_vec())
            .send()
            .await
            .map_err(describe)?;
        Ok(response.status().as_u16())
    }
}

/// Resolves names for the webhook client, refusing any that has an internal address.
struct CheckedResolver {
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private {
                if let Some(bad) = addrs.iter().find(|a| target::is_internal(a.ip())) {
                    return Err(Box::new(TargetError::Internal { host, addr: bad.ip() }) as _);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration: Duration,
}

impl Outcome {
    /// A 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }

    pub fn duration_ms(&self) -> i64 {
        i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX)
    }
}

/// One delivery to make.
pub struct Delivery<'a> {
    pub url: &'a str,
    pub webhook_id: Uuid,
    pub delivery_id: Uuid,
    pub event_type: &'a str,
    pub secret: &'a str,
    pub body: &'a [u8],
}

/// The `Basalt-Signature` value for `body` signed at `t` (Unix seconds).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// An error's kind, without the URL (it may carry a credential).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "request failed"
    } else {
        "failed"
    };
    format!("{kind}: {}", e.without_url())
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // HMAC-SHA256("key", "1.{}"), computed independently.
        let s = signature("key", 1, b"{}");
        assert!(s.starts_with("t=1,v1="));
        assert_eq!(s.len(), "t=1,v1=".len() + 64);
        assert_ne!(signature("key", 1, b"{}"), signature("other", 1, b"{}"));
        assert_ne!(signature("key", 1, b"{}"), signature("key", 2, b"{}"));
    }
}
