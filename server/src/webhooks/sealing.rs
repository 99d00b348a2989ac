//! Webhook signing secrets at rest.
//!
//! A secret is shown to its tenant once and must be usable by the server for
//! every delivery afterwards, so it is stored sealed: XChaCha20-Poly1305 under
//! the server's webhook key (a 32-byte key file, `webhook_key_file`, generated
//! on first start like the JWT key and shared by replicas), a random 24-byte
//! nonce per seal, and the webhook's id as associated data (a sealed secret
//! copied onto another webhook's row does not open). Stored as
//! `version (1 byte) || nonce (24) || ciphertext and tag`.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use uuid::Uuid;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// The key that seals webhook secrets. Never printed.
pub struct SealingKey(XChaCha20Poly1305);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("webhook key {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("webhook key {0} must hold 64 hex characters (32 bytes)")]
    Invalid(String),
}

/// A sealed secret that does not open (another key, another row, damage).
#[derive(Debug, thiserror::Error)]
#[error("the webhook secret cannot be opened with this server's webhook key")]
pub struct OpenError;

impl SealingKey {
    pub fn new(key: [u8; 32]) -> SealingKey {
        SealingKey(XChaCha20Poly1305::new(Key::from_slice(&key)))
    }

    /// The key in `path` (hex), or a new random one written there (mode 0600).
    pub fn load_or_generate(path: &Path) -> Result<SealingKey, KeyError> {
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        let text = if path.exists() {
            std::fs::read_to_string(path).map_err(io)?
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let text = hex::encode(rand::random::<[u8; 32]>());
            crate::auth::jwt::write_private(path, text.as_bytes()).map_err(io)?;
            text
        };
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Invalid(path.display().to_string()))?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Invalid(path.display().to_string()))?;
        Ok(SealingKey::new(key))
    }

    /// Seals `secret` for the webhook `id`.
    pub fn seal(&self, id: Uuid, secret: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .0
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: id.as_bytes() })
            .expect("XChaCha20-Poly1305 seals any message of this size");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`seal`](Self::seal) made for the webhook `id`.
    pub fn open(&self, id: Uuid, sealed: &[u8]) -> Result<String, OpenError> {
        let (version, rest) = sealed.split_first().ok_or(OpenError)?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let plain = self
            .0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: id.as_bytes() })
            .map_err(|_| OpenError)?;
        String::from_utf8(plain).map_err(|_| OpenError)
    }
}

/// A new signing secret: `whsec_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_webhook_and_key() {
        let key = SealingKey::new([7; 32]);
        let (id, secret) = (Uuid::now_v7(), new_secret());
        let sealed = key.seal(id, &secret);
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()), "no plain text at rest");
        assert_eq!(key.open(id, &sealed).unwrap(), secret);
        assert!(key.open(Uuid::now_v7(), &sealed).is_err(), "bound to its webhook");
        assert!(SealingKey::new([8; 32]).open(id, &sealed).is_err(), "bound to the key");
        assert!(key.open(id, &sealed[..10]).is_err());
    }
}
