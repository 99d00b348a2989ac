//! Federation signing (`federation::signing`): keyring files, and the
//! verification of arbitrary signed calls. Never panics. A keyring that parses
//! writes back to the same keys; a call signed with a parsed key verifies, at
//! any clock, within the skew window (and is refused outside it), and a changed
//! body no longer does; headers from anywhere are refused or verified, never
//! a crash. The forwarded-caller header decodes or is refused.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use basalt_server::federation::identity::ForwardedPrincipal;
use basalt_server::federation::signing::{self, Caller, Keyring, SignatureError, SKEW_SECONDS};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    keyring: &'a str,
    method: u8,
    path: &'a str,
    query: Option<&'a str>,
    headers: Vec<(&'a [u8], &'a [u8])>,
    body: &'a [u8],
    region: &'a str,
    region_must_be: Option<&'a str>,
    caller_is_global: bool,
    signed_at: i64,
    verified_at: i64,
    flip: usize,
    forwarded: &'a str,
}

const FALLBACK: &str = "k1 1111111111111111111111111111111111111111111111111111111111111111
k2 2222222222222222222222222222222222222222222222222222222222222222
";

const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

fuzz_target!(|input: Input| {
    let _ = ForwardedPrincipal::decode(input.forwarded);
    let method = &METHODS[usize::from(input.method) % METHODS.len()];
    let caller = if input.caller_is_global { Caller::Global } else { Caller::Region };
    let mut headers = HeaderMap::new();
    for (name, value) in input.headers.iter().take(32) {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    // The fuzzed keyring text, or (it rarely parses) a fixed ring, so that the
    // calls below get past the key lookup.
    let ring = match Keyring::parse(input.keyring, "fuzz") {
        Ok(ring) => {
            let back = Keyring::parse(&ring.to_file_text(), "again").expect("a keyring's own text parses");
            assert_eq!(back.to_file_text(), ring.to_file_text());
            ring
        }
        Err(_) => Keyring::parse(FALLBACK, "fallback").expect("the fallback ring parses"),
    };
    let key_for = |id: &str, region: &str| ring.get(id).map(|m| m.derive_region_key(region));

    // Whatever arrives is verified or refused.
    let _ = signing::verify(
        method,
        input.path,
        input.query,
        &headers,
        input.body,
        input.verified_at,
        caller,
        input.region_must_be,
        key_for,
    );

    let _ = ring.derive_for_region(input.region);

    // Sign the request with the ring's signing key, then verify it.
    let (key_id, master) = ring.signing();
    let key = master.derive_region_key(input.region);
    signing::sign(
        key_id,
        &key,
        caller,
        input.region,
        method,
        input.path,
        input.query,
        &mut headers,
        input.body,
        input.signed_at,
    );
    let verify = |at: i64, body: &[u8]| {
        signing::verify(method, input.path, input.query, &headers, body, at, caller, None, key_for)
    };
    // A region name that is no header value cannot be signed for (its header is left out).
    let region_sent =
        headers.get(signing::REGION).and_then(|v| v.to_str().ok()) == Some(input.region) && !input.region.is_empty();
    if !region_sent {
        assert!(verify(input.signed_at, input.body).is_err());
        return;
    }
    verify(input.signed_at, input.body).expect("a freshly signed call verifies");
    let fresh = input.verified_at.abs_diff(input.signed_at) <= SKEW_SECONDS as u64;
    match verify(input.verified_at, input.body) {
        Ok(_) => assert!(fresh, "a stale call verified"),
        Err(e) => assert!(!fresh && e == SignatureError::Stale, "{e:?}"),
    }
    if !input.body.is_empty() {
        let mut changed = input.body.to_vec();
        let i = input.flip % changed.len();
        changed[i] ^= 1;
        assert_eq!(verify(input.signed_at, &changed), Err(SignatureError::Mismatch), "a changed body verified");
    }
});
