//! Password hashing with argon2id (PHC strings). Verification runs on the blocking
//! pool: argon2 is deliberately slow and must not stall the async runtime.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::ApiError;

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 1024;

/// Checks the server's length rule; the message names the field.
pub fn validate(field: &str, password: &str) -> Result<(), ApiError> {
    validate_min(field, password, MIN_LEN)
}

/// Checks the length rule with `min` characters at least (a tenant policy's).
pub fn validate_min(field: &str, password: &str, min: usize) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(min..=MAX_LEN).contains(&n) {
        return Err(ApiError::bad_field(field, format!("{field} must be {min} to {MAX_LEN} characters long")));
    }
    Ok(())
}

pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Verifies `password` against a stored hash. With no stored hash it still spends
/// the time of one verification, so response timing does not reveal whether a
/// username exists.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        let parsed = PasswordHash::new(&stored).map_err(ApiError::internal)?;
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(ok && known)
    })
    .await
    .map_err(ApiError::internal)?
}

/// An argon2id hash of a random string nobody knows, for constant-time misses.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut secret);
        Argon2::default().hash_password(&secret, &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}
