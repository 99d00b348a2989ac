//! Long-lived API tokens for pipelines: `bst_<token id>_<secret>`.
//!
//! Only SHA-256(secret) is stored. The id half makes the lookup one index probe;
//! the secret half is compared in constant time. A token carries exactly one
//! context: its user's tenant, or (provider staff only) system scope or a named tenant.

use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Context, CredentialKind, Principal};
use crate::db::{Db, DbScope};
use crate::error::ApiError;

pub const PREFIX: &str = "bst_";

/// A fresh secret (32 random bytes, hex) and its stored digest.
pub fn generate_secret() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let digest = Sha256::digest(secret.as_bytes()).to_vec();
    (secret, digest)
}

pub fn format_token(id: Uuid, secret: &str) -> String {
    format_secret(PREFIX, id, secret)
}

fn parse(token: &str) -> Option<(Uuid, &str)> {
    parse_secret(PREFIX, token)
}

/// `<prefix><id>_<secret>`: the shape of every Basalt secret (API tokens,
/// invitations), so one lookup by id finds the row whose digest is compared.
pub fn format_secret(prefix: &str, id: Uuid, secret: &str) -> String {
    format!("{prefix}{}_{secret}", id.simple())
}

/// The id and secret halves of `<prefix><id>_<secret>`.
pub fn parse_secret<'a>(prefix: &str, token: &'a str) -> Option<(Uuid, &'a str)> {
    let rest = token.strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('_')?;
    Some((Uuid::try_parse(id).ok()?, secret))
}

/// Does `secret` hash to `digest`? Compared in constant time.
pub fn secret_matches(secret: &str, digest: &[u8]) -> bool {
    let computed = Sha256::digest(secret.as_bytes());
    subtle::ConstantTimeEq::ct_eq(computed.as_slice(), digest).into()
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    secret_sha256: Vec<u8>,
    user_id: Uuid,
    username: String,
    home_tenant: Option<Uuid>,
    context_tenant_id: Option<Uuid>,
    usable: bool,
}

/// Resolves an API token to its principal, in the read-only auth scope.
pub async fn authenticate(db: &Db, token: &str) -> Result<Principal, ApiError> {
    let invalid = || ApiError::Unauthenticated("the API token is not valid".into());
    let (id, secret) = parse(token).ok_or_else(invalid)?;
    let mut tx = db.begin(DbScope::Auth, None, false).await?;
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT secret_sha256, user_id, username, home_tenant, context_tenant_id, usable
           FROM basalt_lookup_api_token($1)",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let row = row.ok_or_else(invalid)?;
    if !secret_matches(secret, &row.secret_sha256) {
        return Err(invalid());
    }
    if !row.usable {
        return Err(ApiError::Unauthenticated("the API token is revoked or expired".into()));
    }
    // Best effort: the time of last use helps people find unused tokens.
    sqlx::query("UPDATE api_tokens SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Principal {
        user_id: row.user_id,
        username: row.username,
        home_tenant: row.home_tenant,
        context: match row.context_tenant_id {
            Some(t) => Context::Tenant(t),
            None => Context::System,
        },
        credential: CredentialKind::ApiToken(id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let id = Uuid::now_v7();
        let (secret, digest) = generate_secret();
        assert_eq!(digest.len(), 32);
        let token = format_token(id, &secret);
        assert_eq!(parse(&token), Some((id, secret.as_str())));
        assert_eq!(parse("bst_nothex_abc"), None);
        assert_eq!(parse("bst_"), None);
        assert_eq!(parse("eyJhbGciOi"), None);
    }
}
