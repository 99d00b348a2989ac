//! Signed service calls between the global controller and its regions.
//!
//! Every call carries `X-Basalt-Key-Id`, `X-Basalt-Timestamp` (Unix seconds),
//! `X-Basalt-Nonce`, `X-Basalt-Caller` (`global` or `region`), `X-Basalt-Region`
//! (the region spoken for or to) and `X-Basalt-Signature`: the hex HMAC-SHA256,
//! under that region's key, of the canonical request
//!
//! ```text
//! BASALT-HMAC-SHA256
//! <METHOD>
//! <path>
//! <query pairs sorted, joined with &>
//! <signed headers: lowercase name:trimmed value, sorted, one per line>
//! <hex SHA-256 of the body>
//! ```
//!
//! Signed headers are every `x-basalt-*` header but the signature, plus
//! `content-type`, `idempotency-key` and `if-match` when present: adding,
//! removing or changing any of them breaks the signature.
//!
//! A region's key is derived from a controller master secret with HKDF-SHA256
//! (info `basalt-region:<name>`), so the controller can speak with every region
//! while one region's key cannot speak for another. Several keys may be active
//! (rotation); the first of a [`Keyring`] signs.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub const KEY_ID: &str = "x-basalt-key-id";
pub const TIMESTAMP: &str = "x-basalt-timestamp";
pub const NONCE: &str = "x-basalt-nonce";
pub const CALLER: &str = "x-basalt-caller";
pub const REGION: &str = "x-basalt-region";
pub const SIGNATURE: &str = "x-basalt-signature";
/// The forwarded caller (see `identity`), signed like every `x-basalt-*` header.
pub const PRINCIPAL: &str = "x-basalt-principal";

/// How far a call's timestamp may be from our clock, either way.
pub const SKEW_SECONDS: i64 = 300;

/// Who signed a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Global,
    Region,
}

impl Caller {
    pub fn as_str(self) -> &'static str {
        match self {
            Caller::Global => "global",
            Caller::Region => "region",
        }
    }
}

/// Why a signed call was refused (every one is a 401 to the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the call is not signed (missing {0})")]
    Missing(&'static str),
    #[error("unknown key id {0}")]
    UnknownKey(String),
    #[error("the timestamp is outside the {SKEW_SECONDS} s window")]
    Stale,
    #[error("the signature does not match the request")]
    Mismatch,
    #[error("the nonce was already used")]
    Replayed,
    #[error("the call is signed by {got}, expected {expected}")]
    WrongCaller { got: String, expected: &'static str },
    #[error("the call is for region {got}, this is {expected}")]
    WrongRegion { got: String, expected: String },
}

/// A secret, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// The key a region uses, derived from a controller master secret.
    pub fn derive_region_key(&self, region: &str) -> Secret {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"basalt-federation-v1"), &self.0);
        let mut out = [0u8; 32];
        hk.expand(format!("basalt-region:{region}").as_bytes(), &mut out).expect("32 bytes is a valid HKDF length");
        Secret(out.to_vec())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} line {line}: expected `<key id> <hex secret of at least 32 bytes>`")]
    Syntax { path: String, line: usize },
    #[error("{0} holds no key")]
    Empty(String),
}

/// Active keys by id; the first one signs. A file of lines `<key id> <hex secret>`
/// (`#` comments): at the controller the secrets are masters, in a region they are
/// that region's derived keys (`basalt-server federation region-keys`).
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<(String, Secret)>,
}

impl Keyring {
    pub fn parse(text: &str, path: &str) -> Result<Keyring, KeyringError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = || KeyringError::Syntax { path: path.to_string(), line: n + 1 };
            let (id, secret) = line.split_once(char::is_whitespace).ok_or_else(syntax)?;
            let bytes = hex::decode(secret.trim()).map_err(|_| syntax())?;
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_ok || bytes.len() < 32 {
                return Err(syntax());
            }
            keys.push((id.to_string(), Secret(bytes)));
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty(path.to_string()));
        }
        Ok(Keyring { keys })
    }

    pub fn load(path: &std::path::Path) -> Result<Keyring, KeyringError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| KeyringError::Read { path: shown.clone(), source })?;
        Keyring::parse(&text, &shown)
    }

    /// The key that signs outgoing calls.
    pub fn signing(&self) -> (&str, &Secret) {
        let (id, s) = &self.keys[0];
        (id, s)
    }

    pub fn get(&self, key_id: &str) -> Option<&Secret> {
        self.keys.iter().find(|(id, _)| id == key_id).map(|(_, s)| s)
    }

    /// The same ids with each master turned into `region`'s key (what a region is given).
    pub fn derive_for_region(&self, region: &str) -> Keyring {
        Keyring { keys: self.keys.iter().map(|(id, s)| (id.clone(), s.derive_region_key(region))).collect() }
    }

    pub fn to_file_text(&self) -> String {
        self.keys.iter().map(|(id, s)| format!("{id} {}\n", s.to_hex())).collect()
    }
}

/// The canonical text a signature covers.
pub fn canonical_request(method: &Method, path: &str, query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> String {
    let mut pairs: Vec<&str> = query.unwrap_or("").split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort_unstable();
    let mut signed: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        let covered = (n.starts_with("x-basalt-") && n != SIGNATURE)
            || matches!(n, "content-type" | "idempotency-key" | "if-match");
        if covered {
            let v = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
            signed
                .entry(n.to_string())
                .and_modify(|e| {
                    e.push(',');
                    e.push_str(&v)
                })
                .or_insert(v);
        }
    }
    let headers: Vec<String> = signed.into_iter().map(|(n, v)| format!("{n}:{v}")).collect();
    format!(
        "BASALT-HMAC-SHA256\n{}\n{}\n{}\n{}\n{}",
        method.as_str(),
        path,
        pairs.join("&"),
        headers.join("\n"),
        hex::encode(Sha256::digest(body))
    )
}

fn mac(key: &Secret, text: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    m.update(text.as_bytes());
    m
}

/// Adds the signing headers to `headers` for a call by `caller` about `region`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    key_id: &str,
    key: &Secret,
    caller: Caller,
    region: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &mut HeaderMap,
    body: &[u8],
    now: i64,
) {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    sign_with_nonce(key_id, key, caller, region, method, path, query, headers, body, now, &nonce);
}

/// [`sign`] with a given nonce (the worked example in `docs/federation.md`).
#[allow(clippy::too_many_arguments)]
pub fn sign_with_nonce(
    key_id: &str,
    key: &Secret,
    caller: Caller,
    region: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &mut HeaderMap,
    body: &[u8],
    now: i64,
    nonce: &str,
) {
    let set = |h: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = value.parse() {
            h.insert(name, v);
        }
    };
    set(headers, KEY_ID, key_id);
    set(headers, TIMESTAMP, &now.to_string());
    set(headers, NONCE, nonce);
    set(headers, CALLER, caller.as_str());
    set(headers, REGION, region);
    let text = canonical_request(method, path, query, headers, body);
    let signature = hex::encode(mac(key, &text).finalize().into_bytes());
    set(headers, SIGNATURE, &signature);
}

/// What a valid signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub nonce: String,
    pub caller: Caller,
    pub region: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).ok_or(SignatureError::Missing(name))
}

/// Checks a call's signature (not its nonce: see [`remember_nonce`]). `key_for`
/// answers the key of `(key id, region)`; `expect` is the caller that may make
/// this call, and `region_must_be` the region it must speak for, if fixed.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    expect: Caller,
    region_must_be: Option<&str>,
    key_for: impl Fn(&str, &str) -> Option<Secret>,
) -> Result<Verified, SignatureError> {
    let key_id = header(headers, KEY_ID)?;
    let ts: i64 = header(headers, TIMESTAMP)?.parse().map_err(|_| SignatureError::Stale)?;
    let nonce = header(headers, NONCE)?;
    let caller = header(headers, CALLER)?;
    let region = header(headers, REGION)?;
    let given = hex::decode(header(headers, SIGNATURE)?).map_err(|_| SignatureError::Mismatch)?;
    if caller != expect.as_str() {
        return Err(SignatureError::WrongCaller { got: caller.to_string(), expected: expect.as_str() });
    }
    if let Some(own) = region_must_be {
        if region != own {
            return Err(SignatureError::WrongRegion { got: region.to_string(), expected: own.to_string() });
        }
    }
    let key = key_for(key_id, region).ok_or_else(|| SignatureError::UnknownKey(key_id.to_string()))?;
    // `abs_diff`: the timestamp is the caller's, and `now - ts` overflows for
    // one far enough in the past (a panic in a debug build; in release, one
    // exact value wrapped to i64::MIN and passed as fresh). Found by fuzzing.
    if now.abs_diff(ts) > SKEW_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let text = canonical_request(method, path, query, headers, body);
    // Constant-time comparison (hmac's verify_slice).
    mac(&key, &text).verify_slice(&given).map_err(|_| SignatureError::Mismatch)?;
    Ok(Verified { key_id: key_id.to_string(), nonce: nonce.to_string(), caller: expect, region: region.to_string() })
}

/// Records a verified call's nonce; a nonce seen before (by any replica) is a
/// replay. Nonces older than the window are forgotten on the way.
pub async fn remember_nonce(db: &crate::db::Db, v: &Verified) -> Result<(), crate::error::ApiError> {
    let mut tx = db.begin(crate::db::DbScope::System, None, true).await?;
    let fresh = sqlx::query("INSERT INTO federation_nonces (key_id, nonce) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(&v.key_id)
        .bind(&v.nonce)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if rand::random::<u8>() < 8 {
        sqlx::query("DELETE FROM federation_nonces WHERE seen_at < now() - make_interval(secs => $1)")
            .bind((2 * SKEW_SECONDS) as f64)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if fresh {
        Ok(())
    } else {
        Err(crate::error::ApiError::Unauthenticated(SignatureError::Replayed.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> Keyring {
        Keyring::parse(&format!("k1 {}\nk2 {}\n", "11".repeat(32), "22".repeat(32)), "test").unwrap()
    }

    fn signed(ring: &Keyring, region: &str, body: &[u8], now: i64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        let (id, key) = ring.signing();
        sign(
            id,
            &key.derive_region_key(region),
            Caller::Region,
            region,
            &Method::POST,
            "/v1/x",
            Some("b=2&a=1"),
            &mut h,
            body,
            now,
        );
        h
    }

    fn check(ring: &Keyring, path: &str, h: &HeaderMap, body: &[u8], now: i64) -> Result<Verified, SignatureError> {
        verify(&Method::POST, path, Some("a=1&b=2"), h, body, now, Caller::Region, None, |id, region| {
            ring.get(id).map(|m| m.derive_region_key(region))
        })
    }

    #[test]
    fn a_signed_call_verifies_with_the_query_in_any_order() {
        let ring = master();
        let h = signed(&ring, "r1", b"{}", 1000);
        let v = check(&ring, "/v1/x", &h, b"{}", 1010).unwrap();
        assert_eq!((v.key_id.as_str(), v.region.as_str()), ("k1", "r1"));
    }

    #[test]
    fn tampering_is_refused() {
        let ring = master();
        let h = signed(&ring, "r1", b"{\"a\":1}", 1000);
        assert_eq!(check(&ring, "/v1/x", &h, b"{\"a\":2}", 1000), Err(SignatureError::Mismatch), "body");
        assert_eq!(check(&ring, "/v1/y", &h, b"{\"a\":1}", 1000), Err(SignatureError::Mismatch), "path");
        let mut h2 = h.clone();
        h2.insert(REGION, "r2".parse().unwrap());
        assert_eq!(
            check(&ring, "/v1/x", &h2, b"{\"a\":1}", 1000),
            Err(SignatureError::Mismatch),
            "region 1's key for region 2"
        );
        let mut h3 = h.clone();
        h3.insert(PRINCIPAL, "someone-else".parse().unwrap());
        assert_eq!(check(&ring, "/v1/x", &h3, b"{\"a\":1}", 1000), Err(SignatureError::Mismatch), "added header");
    }

    #[test]
    fn stale_and_unknown_keys_are_refused() {
        let ring = master();
        let h = signed(&ring, "r1", b"", 1000);
        assert_eq!(check(&ring, "/v1/x", &h, b"", 1000 + SKEW_SECONDS + 1), Err(SignatureError::Stale));
        assert_eq!(check(&ring, "/v1/x", &h, b"", 1000 - SKEW_SECONDS - 1), Err(SignatureError::Stale));
        for (at, verified) in [(i64::MIN, 1000), (i64::MAX, -1000), (i64::MIN, i64::MAX), (1000 + i64::MIN, 1000)] {
            let h = signed(&ring, "r1", b"", at);
            assert_eq!(check(&ring, "/v1/x", &h, b"", verified), Err(SignatureError::Stale), "{at} at {verified}");
        }
        let other = Keyring::parse(&format!("k9 {}\n", "33".repeat(32)), "t").unwrap();
        assert_eq!(check(&other, "/v1/x", &h, b"", 1000), Err(SignatureError::UnknownKey("k1".into())));
    }

    #[test]
    fn region_keys_differ_and_keyring_files_parse_strictly() {
        let ring = master();
        let (_, m) = ring.signing();
        assert_ne!(m.derive_region_key("r1"), m.derive_region_key("r2"));
        assert!(Keyring::parse("k1 abcd\n", "t").is_err(), "short secret");
        assert!(Keyring::parse("# nothing\n", "t").is_err());
        let derived = master().derive_for_region("r1");
        let back = Keyring::parse(&derived.to_file_text(), "t").unwrap();
        assert_eq!(back.get("k2"), Some(&m_for("k2", "r1")));
        assert!(!format!("{:?}", back).contains("22"), "secrets never print");
    }

    /// The worked example of docs/federation.md, recomputed: the document must
    /// show what the code does.
    #[test]
    fn the_documented_example_is_what_the_code_computes() {
        let master = Secret::new(vec![0x42; 32]);
        let key = master.derive_region_key("eu-west");
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        let body = br#"{"name":"eu-west","endpoint":"https://eu-west.example.net"}"#;
        sign_with_nonce(
            "k2026",
            &key,
            Caller::Region,
            "eu-west",
            &Method::POST,
            "/v1/federation/register",
            None,
            &mut h,
            body,
            1_796_169_600,
            "6e6f6e63652d31",
        );
        let text = canonical_request(&Method::POST, "/v1/federation/register", None, &h, body);
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/federation.md")).unwrap();
        let signature = h.get(SIGNATURE).unwrap().to_str().unwrap();
        for needle in [key.to_hex().as_str(), text.as_str(), signature] {
            assert!(doc.contains(needle), "docs/federation.md does not show:\n{needle}");
        }
    }

    fn m_for(id: &str, region: &str) -> Secret {
        master().get(id).unwrap().derive_region_key(region)
    }
}
