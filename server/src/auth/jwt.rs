//! User tokens: JWTs signed with this controller's Ed25519 key (EdDSA only; any
//! other algorithm, a tampered signature or an expired token is a 401).
//!
//! The key pair is generated at first start and kept as a PKCS#8 file readable by
//! its owner only (0600). Replicas of one controller share that file.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use std::path::Path;
use uuid::Uuid;

use super::{Context, CredentialKind, Principal};
use crate::error::ApiError;

const ISSUER: &str = "basalt";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading or writing the signing key {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the signing key {0} is not an Ed25519 PKCS#8 key")]
    Invalid(String),
}

/// The claims of a user token. `tid` is the one tenant context (absent: system scope).
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: Uuid,
    name: String,
    /// The user's own tenant (absent for provider staff).
    home: Option<Uuid>,
    tid: Option<Uuid>,
    iat: i64,
    exp: i64,
    jti: Uuid,
}

/// Signs and verifies user tokens.
pub struct Keys {
    encoding: EncodingKey,
    verifier: Verifier,
    ttl: Duration,
}

/// Verifies user tokens with a public key only: what a region holds of the
/// controller's key, so it can check tokens and never mint one.
pub struct Verifier {
    decoding: DecodingKey,
    validation: Validation,
    public: Vec<u8>,
}

impl Verifier {
    /// From the raw 32-byte Ed25519 public key.
    pub fn from_public_key(raw: &[u8]) -> Verifier {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Verifier { decoding: DecodingKey::from_ed_der(raw), validation, public: raw.to_vec() }
    }

    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// Verifies a token; every failure is the same 401 with a short reason.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidAlgorithm => "the token is not signed with EdDSA",
                ErrorKind::InvalidSignature => "the token signature is not valid",
                _ => "the token is not a valid Basalt token",
            };
            ApiError::Unauthenticated(why.into())
        })?;
        let c = data.claims;
        // A tenant user's token can only carry its own tenant.
        if c.home.is_some() && c.tid != c.home {
            return Err(ApiError::Unauthenticated("the token is not a valid Basalt token".into()));
        }
        Ok(Principal {
            user_id: c.sub,
            username: c.name,
            home_tenant: c.home,
            context: match c.tid {
                Some(t) => Context::Tenant(t),
                None => Context::System,
            },
            credential: CredentialKind::UserToken,
        })
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl Keys {
    /// Loads the key at `path`, generating it (mode 0600) when absent.
    pub fn load_or_generate(path: &Path, ttl: Duration) -> Result<Keys, KeyError> {
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        let pkcs8 = if path.exists() {
            std::fs::read(path).map_err(io)?
        } else {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| KeyError::Invalid(path.display().to_string()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            write_private(path, doc.as_ref()).map_err(io)?;
            doc.as_ref().to_vec()
        };
        Keys::from_pkcs8(&pkcs8, ttl).ok_or_else(|| KeyError::Invalid(path.display().to_string()))
    }

    pub fn from_pkcs8(pkcs8: &[u8], ttl: Duration) -> Option<Keys> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).ok()?;
        Some(Keys {
            encoding: EncodingKey::from_ed_der(pkcs8),
            verifier: Verifier::from_public_key(pair.public_key().as_ref()),
            ttl,
        })
    }

    /// Issues a token for `user` acting in `context`.
    pub fn issue(
        &self,
        user_id: Uuid,
        username: &str,
        home_tenant: Option<Uuid>,
        context: Context,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let now = Utc::now();
        let exp = now + self.ttl;
        let claims = Claims {
            iss: ISSUER.into(),
            sub: user_id,
            name: username.into(),
            home: home_tenant,
            tid: context.tenant(),
            iat: now.timestamp(),
            exp: exp.timestamp(),
            jti: Uuid::now_v7(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .map_err(ApiError::internal)?;
        Ok((token, exp))
    }

    /// Verifies a token (see [`Verifier::verify`]).
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        self.verifier.verify(token)
    }

    /// The raw Ed25519 public key regions verify tokens with.
    pub fn public_key(&self) -> &[u8] {
        self.verifier.public_key()
    }
}

/// Writes a new file only its owner can read (fails if it exists).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Keys::from_pkcs8(doc.as_ref(), Duration::hours(1)).unwrap()
    }

    #[test]
    fn issued_token_verifies_and_carries_context() {
        let k = keys();
        let t = Uuid::now_v7();
        let (tok, _) = k.issue(Uuid::now_v7(), "ops", Some(t), Context::Tenant(t)).unwrap();
        let p = k.verify(&tok).unwrap();
        assert_eq!(p.context, Context::Tenant(t));
        assert_eq!(p.username, "ops");
    }

    #[test]
    fn the_public_key_alone_verifies() {
        let k = keys();
        let (tok, _) = k.issue(Uuid::now_v7(), "ops", None, Context::System).unwrap();
        let v = Verifier::from_public_key(k.public_key());
        assert_eq!(v.verify(&tok).unwrap().username, "ops");
        assert!(Verifier::from_public_key(keys().public_key()).verify(&tok).is_err());
    }

    #[test]
    fn other_key_and_tampering_are_refused() {
        let (a, b) = (keys(), keys());
        let (tok, _) = a.issue(Uuid::now_v7(), "x", None, Context::System).unwrap();
        assert!(b.verify(&tok).is_err());
        let mut parts: Vec<String> = tok.split('.').map(String::from).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(a.verify(&parts.join(".")).is_err());
    }
}
