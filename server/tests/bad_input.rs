//! Bad input gets the documented 4xx with a clear message, never a 5xx, and
//! changes nothing: the database fingerprint (every row of every business table)
//! is the same before and after the whole corpus. Refusals of permission are
//! audited and failed logins counted, so those two may grow, by exactly as much.
//!
//! The corpus is a table, one line per case, grouped by route family: what is
//! sent (method, path, who, body, extra headers) and the status, error code and
//! `details.field` that must come back.

mod common;

use base64::Engine;
use common::TestApp;
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::Value;

/// Who sends the request.
#[derive(Clone, Copy)]
enum As {
    Nobody,
    /// Provider staff, at system scope (a user token).
    Admin,
    /// The tenant administrator of tenant `alpha` (a user token).
    Tenant,
    /// This `Authorization` header (`Bearer ` is added unless it names a scheme).
    Raw(&'static str),
}
use As::{Admin, Nobody, Raw, Tenant};

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;

// The codes most cases expect.
const BODY: &str = "invalid_body";
const FIELD: &str = "invalid_field";
const QUERY: &str = "invalid_query";
const NOT_FOUND: &str = "not_found";
const UNPROCESSABLE_REF: &str = "invalid_reference";
const DENIED: &str = "permission_denied";
const UNAUTHENTICATED: &str = "unauthenticated";

/// An id no object has.
const GHOST: &str = "0190a0a0-a0a0-7000-8000-00000000dead";

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    who: As,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// The field the error must name (`details.field`), if any.
    field: Option<&'static str>,
}

/// A JSON request that must answer `status` with error `code`.
fn c(
    name: &'static str,
    method: Method,
    path: impl Into<String>,
    who: As,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        who,
        content_type: Some("application/json"),
        headers: Vec::new(),
        body: body.into(),
        status,
        code,
        field: None,
    }
}

impl Case {
    /// The error must name this field in `details.field`.
    fn at(mut self, f: &'static str) -> Case {
        self.field = Some(f);
        self
    }
    fn content_type(mut self, ct: Option<&'static str>) -> Case {
        self.content_type = ct;
        self
    }
    /// An extra header, as raw bytes (so it may be anything HTTP can carry).
    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Case {
        self.headers.push((name, value.into()));
        self
    }
    /// The headers of a websocket upgrade.
    fn upgrade(self) -> Case {
        self.header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    }
}

/// A JWT signed with HS256 (an algorithm Basalt never accepts) and one with `none`.
fn forged_tokens() -> (&'static str, &'static str) {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = b64(
        r#"{"iss":"basalt","sub":"00000000-0000-0000-0000-000000000000","name":"x","home":null,"tid":null,"iat":1,"exp":9999999999,"jti":"00000000-0000-0000-0000-000000000000"}"#,
    );
    let hs = format!("{}.{}.{}", b64(r#"{"alg":"HS256","typ":"JWT"}"#), claims, b64("signature"));
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), claims);
    (Box::leak(hs.into_boxed_str()), Box::leak(none.into_boxed_str()))
}

/// What the cases refer to: the tenant `alpha`, its administrator, a built-in role.
struct Fx {
    user: String,
    tenant: String,
    builtin_role: String,
}

/// `n` copies of `s`.
fn rep(s: &str, n: usize) -> String {
    s.repeat(n)
}

/// A JSON array of `n` copies of the string `s`.
fn array_of(s: &str, n: usize) -> String {
    format!("[{}]", vec![format!("{s:?}"); n].join(","))
}

/// A cursor as the server encodes it, around any text.
fn cursor_of(raw: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

// ---------------------------------------------------------------------------
// The corpus, by route family.
// ---------------------------------------------------------------------------

/// Bodies in general (the strict JSON extractor: every route decodes alike).
#[rustfmt::skip]
fn bodies(_: &Fx) -> Vec<Case> {
    let big = format!(r#"{{"name":"a","display_name":"{}"}}"#, rep("x", 2 << 20));
    let deep = format!("{}{}", rep("[", 10_000), rep("]", 10_000));
    let deep_object = format!(r#"{{"name":{}1{}}}"#, rep(r#"{"a":"#, 10_000), rep("}", 10_000));
    vec![
        // One JSON object, nothing before or after it.
        c("malformed json", POST, "/v1/tenants", Admin, r#"{"name": "a""#, 400, BODY),
        c("not an object", POST, "/v1/tenants", Admin, r#"["a"]"#, 400, BODY),
        c("empty body", POST, "/v1/tenants", Admin, "", 400, BODY),
        c("trailing garbage", POST, "/v1/tenants", Admin, r#"{"name":"a"} x"#, 400, BODY),
        c("two objects", POST, "/v1/tenants", Admin, r#"{"name":"a"}{"name":"b"}"#, 400, BODY),
        c("json comment", POST, "/v1/tenants", Admin, r#"{"name":"a" /* hi */}"#, 400, BODY),
        c("single quotes", POST, "/v1/tenants", Admin, "{'name':'a'}", 400, BODY),
        c("NaN literal", POST, "/v1/tenants", Admin, r#"{"name":"a","display_name":NaN}"#, 400, BODY),
        c("deeply nested array (10,000)", POST, "/v1/tenants", Admin, deep, 400, BODY),
        c("deeply nested object in a field (10,000)", POST, "/v1/tenants", Admin, deep_object, 400, BODY),
        // Types: unknown, missing, null, wrong, duplicated fields name the field.
        c("unknown field", POST, "/v1/tenants", Admin, r#"{"name":"a","colour":"red"}"#, 400, FIELD).at("colour"),
        c("wrong type", POST, "/v1/tenants", Admin, r#"{"name":42}"#, 400, FIELD).at("name"),
        c("null required", POST, "/v1/tenants", Admin, r#"{"name":null}"#, 400, FIELD).at("name"),
        c("missing required", POST, "/v1/tenants", Admin, r#"{"display_name":"x"}"#, 400, FIELD).at("name"),
        c("duplicate key", POST, "/v1/tenants", Admin, r#"{"name":"a","name":"b"}"#, 400, FIELD).at("name"),
        c("bad enum", POST, "/v1/tenants", Admin, r#"{"name":"a","state":"paused"}"#, 400, FIELD).at("state"),
        c("enum of the wrong case", POST, "/v1/tenants", Admin, r#"{"name":"a","state":"Active"}"#, 400, FIELD).at("state"),
        // Size: the body limit (1 MiB) answers 413 before any decoding.
        c("oversized body", POST, "/v1/tenants", Admin, big, 413, "payload_too_large"),
        // Content-Type: application/json (or +json) only.
        c("form body", POST, "/v1/tenants", Admin, "name=a", 415, "unsupported_media_type").content_type(Some("application/x-www-form-urlencoded")),
        c("no content type", POST, "/v1/tenants", Admin, r#"{"name":"a"}"#, 415, "unsupported_media_type").content_type(None),
        c("text/json", POST, "/v1/tenants", Admin, r#"{"name":"a"}"#, 415, "unsupported_media_type").content_type(Some("text/json")),
        c("application/jsonp", POST, "/v1/tenants", Admin, r#"{"name":"a"}"#, 415, "unsupported_media_type").content_type(Some("application/jsonp")),
        c("content type not utf-8", POST, "/v1/tenants", Admin, r#"{"name":"a"}"#, 415, "unsupported_media_type").content_type(None).header("content-type", b"application/json\xff".as_slice()),
        // Encodings: invalid UTF-8, overlong forms, surrogates, a byte-order mark.
        c("invalid utf-8", POST, "/v1/tenants", Admin, b"{\"name\":\"\xff\xfe\"}".as_slice(), 400, BODY),
        c("overlong utf-8 slash", POST, "/v1/tenants", Admin, b"{\"name\":\"a\xc0\xafb\"}".as_slice(), 400, BODY),
        c("overlong utf-8 nul", POST, "/v1/tenants", Admin, b"{\"name\":\"a\xe0\x80\x80b\"}".as_slice(), 400, BODY),
        c("utf-8 encoded surrogate", POST, "/v1/tenants", Admin, b"{\"name\":\"\xed\xa0\x80\"}".as_slice(), 400, BODY),
        c("lone surrogate escape", POST, "/v1/tenants", Admin, r#"{"name":"\ud800"}"#, 400, BODY),
        c("utf-8 byte-order mark", POST, "/v1/tenants", Admin, b"\xef\xbb\xbf{\"name\":\"a\"}".as_slice(), 400, BODY),
        c("utf-16 body", POST, "/v1/tenants", Admin, b"\xff\xfe{\0\"\0n\0\"\0:\0\"\0a\0\"\0}\0".as_slice(), 400, BODY).content_type(Some("application/json; charset=utf-16")),
        // Routes and methods.
        c("unknown route", GET, "/v1/nothing-here", Admin, "", 404, NOT_FOUND),
        c("trailing slash", GET, "/v1/users/", Admin, "", 404, NOT_FOUND),
        c("wrong method", PUT, "/v1/tenants", Admin, "{}", 405, "method_not_allowed"),
        c("post to me", POST, "/v1/me", Admin, "{}", 405, "method_not_allowed"),
        c("delete an operation", DELETE, format!("/v1/operations/{GHOST}"), Admin, "", 405, "method_not_allowed"),
    ]
}

/// Credentials, login and switch-tenant.
#[rustfmt::skip]
fn auth(_: &Fx) -> Vec<Case> {
    let (hs256, alg_none) = forged_tokens();
    let huge_login = format!(r#"{{"username":"admin","password":"{}"}}"#, rep("p", 2 << 20));
    vec![
        // Credentials: a missing, malformed or forged one is 401.
        c("no token", GET, "/v1/users", Nobody, "", 401, UNAUTHENTICATED),
        c("not bearer", GET, "/v1/users", Raw("Basic YWRtaW46YWRtaW4="), "", 401, UNAUTHENTICATED),
        c("bearer without token", GET, "/v1/users", Raw("Bearer"), "", 401, UNAUTHENTICATED),
        c("garbage token", GET, "/v1/users", Raw("Bearer garbage"), "", 401, UNAUTHENTICATED),
        c("hs256 token", GET, "/v1/users", Raw(hs256), "", 401, UNAUTHENTICATED),
        c("alg none token", GET, "/v1/users", Raw(alg_none), "", 401, UNAUTHENTICATED),
        c("unknown api token", GET, "/v1/users", Raw("Bearer bst_0190a0a0a0a07000800000000000000a_00"), "", 401, UNAUTHENTICATED),
        c("malformed api token", GET, "/v1/users", Raw("Bearer bst_nope"), "", 401, UNAUTHENTICATED),
        c("authorization not utf-8", GET, "/v1/users", Nobody, "", 401, UNAUTHENTICATED).header("authorization", b"Bearer \xff\xfe".as_slice()),
        c("me without token", GET, "/v1/me", Nobody, "", 401, UNAUTHENTICATED),
        // Login: a wrong credential is 401 (counted once), a malformed body 400.
        c("login wrong password", POST, "/v1/auth/login", Nobody, r#"{"username":"admin","password":"wrong password"}"#, 401, UNAUTHENTICATED),
        c("login unknown tenant", POST, "/v1/auth/login", Nobody, r#"{"username":"admin","password":"x","tenant":"no-such-tenant"}"#, 401, UNAUTHENTICATED),
        c("login over-long username", POST, "/v1/auth/login", Nobody, format!(r#"{{"username":"{}","password":"x"}}"#, rep("a", 65)), 401, UNAUTHENTICATED),
        c("login unknown field", POST, "/v1/auth/login", Nobody, r#"{"username":"admin","password":"x","otp":1}"#, 400, FIELD).at("otp"),
        c("login missing password", POST, "/v1/auth/login", Nobody, r#"{"username":"admin"}"#, 400, FIELD).at("password"),
        c("login tenant as number", POST, "/v1/auth/login", Nobody, r#"{"username":"admin","password":"x","tenant":7}"#, 400, FIELD).at("tenant"),
        c("login over the body limit", POST, "/v1/auth/login", Nobody, huge_login, 413, "payload_too_large"),
        c("login as a form", POST, "/v1/auth/login", Nobody, "username=admin&password=x", 415, "unsupported_media_type").content_type(Some("application/x-www-form-urlencoded")),
        // Switching tenant: by id or name, only to a live tenant one may enter.
        c("switch without tenant", POST, "/v1/auth/switch-tenant", Admin, "{}", 400, FIELD).at("tenant"),
        c("switch tenant as number", POST, "/v1/auth/switch-tenant", Admin, r#"{"tenant":1}"#, 400, FIELD).at("tenant"),
        c("switch to unknown tenant", POST, "/v1/auth/switch-tenant", Admin, format!(r#"{{"tenant":"{GHOST}"}}"#), 404, NOT_FOUND),
        c("switch to empty name", POST, "/v1/auth/switch-tenant", Admin, r#"{"tenant":""}"#, 404, NOT_FOUND),
        c("switch to look-alike name", POST, "/v1/auth/switch-tenant", Admin, r#"{"tenant":"\u0430lpha"}"#, 404, NOT_FOUND),
        c("switch without token", POST, "/v1/auth/switch-tenant", Nobody, r#"{"tenant":"alpha"}"#, 401, UNAUTHENTICATED),
    ]
}

/// Tenants, their lifecycle and their region entitlements.
#[rustfmt::skip]
fn tenants(fx: &Fx) -> Vec<Case> {
    let tenant = format!("/v1/tenants/{}", fx.tenant);
    let regions = format!("{tenant}/regions");
    vec![
        // Names: 1-63 of a-z 0-9 '-', ASCII only (no look-alikes, no invisible characters).
        c("empty name", POST, "/v1/tenants", Admin, r#"{"name":""}"#, 400, FIELD).at("name"),
        c("name of 64 characters", POST, "/v1/tenants", Admin, format!(r#"{{"name":"{}"}}"#, rep("a", 64)), 400, FIELD).at("name"),
        c("upper-case name", POST, "/v1/tenants", Admin, r#"{"name":"Acme"}"#, 400, FIELD).at("name"),
        c("name ending with -", POST, "/v1/tenants", Admin, r#"{"name":"acme-"}"#, 400, FIELD).at("name"),
        c("cyrillic look-alike", POST, "/v1/tenants", Admin, r#"{"name":"\u0430cme"}"#, 400, FIELD).at("name"),
        c("fullwidth look-alike", POST, "/v1/tenants", Admin, r#"{"name":"\uff41cme"}"#, 400, FIELD).at("name"),
        c("zero-width space in name", POST, "/v1/tenants", Admin, r#"{"name":"ac\u200bme"}"#, 400, FIELD).at("name"),
        c("sql in name", POST, "/v1/tenants", Admin, r#"{"name":"a'; DROP TABLE tenants; --"}"#, 400, FIELD).at("name"),
        c("nul in name", POST, "/v1/tenants", Admin, r#"{"name":"a\u0000b"}"#, 400, FIELD).at("name"),
        // Display text: at most 128 characters, no control, zero-width or bidi characters.
        c("bidi override", POST, "/v1/tenants", Admin, r#"{"name":"ok","display_name":"evil\u202egnp.exe"}"#, 400, FIELD).at("display_name"),
        c("right-to-left isolate", POST, "/v1/tenants", Admin, r#"{"name":"ok","display_name":"a\u2067b"}"#, 400, FIELD).at("display_name"),
        c("arabic letter mark", POST, "/v1/tenants", Admin, r#"{"name":"ok","display_name":"a\u061cb"}"#, 400, FIELD).at("display_name"),
        c("zero-width joiner", POST, "/v1/tenants", Admin, r#"{"name":"ok","display_name":"a\u200db"}"#, 400, FIELD).at("display_name"),
        c("word joiner", POST, "/v1/tenants", Admin, r#"{"name":"ok","display_name":"a\u2060b"}"#, 400, FIELD).at("display_name"),
        c("soft hyphen", POST, "/v1/tenants", Admin, r#"{"name":"ok","display_name":"a\u00adb"}"#, 400, FIELD).at("display_name"),
        c("invisible tag characters", POST, "/v1/tenants", Admin, r#"{"name":"ok","display_name":"a\udb40\udc41b"}"#, 400, FIELD).at("display_name"),
        c("control char", POST, "/v1/tenants", Admin, r#"{"name":"ok","display_name":"a\nb"}"#, 400, FIELD).at("display_name"),
        c("over-long display name", POST, "/v1/tenants", Admin, format!(r#"{{"name":"ok","display_name":"{}"}}"#, rep("é", 129)), 400, FIELD).at("display_name"),
        c("display name as array", POST, "/v1/tenants", Admin, r#"{"name":"ok","display_name":["a"]}"#, 400, FIELD).at("display_name"),
        // State: a new tenant is active or suspended; deletion is DELETE.
        c("deleted on create", POST, "/v1/tenants", Admin, r#"{"name":"a","state":"deleted"}"#, 400, FIELD).at("state"),
        c("bad suspend action", POST, "/v1/tenants", Admin, r#"{"name":"a","suspend_action":"pause"}"#, 400, FIELD).at("suspend_action"),
        c("delete tenant via patch", PATCH, &tenant, Admin, r#"{"state":"deleted"}"#, 400, FIELD).at("state"),
        c("patch bad suspend action", PATCH, &tenant, Admin, r#"{"suspend_action":1}"#, 400, FIELD).at("suspend_action"),
        // Lists, ids and versions.
        c("list deleted tenants", GET, "/v1/tenants?state=deleted", Admin, "", 400, FIELD).at("state"),
        c("list with a repeated filter", GET, "/v1/tenants?name=a&name=b", Admin, "", 400, QUERY),
        c("tenant id not a uuid", GET, "/v1/tenants/acme", Admin, "", 400, FIELD).at("id"),
        c("tenant id not utf-8", GET, "/v1/tenants/%FF%FE", Admin, "", 400, FIELD).at("id"),
        c("missing tenant", GET, format!("/v1/tenants/{GHOST}"), Admin, "", 404, NOT_FOUND),
        c("suspend bad id", POST, "/v1/tenants/acme/suspend", Admin, "{}", 400, FIELD).at("id"),
        c("resume missing tenant", POST, format!("/v1/tenants/{GHOST}/resume"), Admin, "{}", 404, NOT_FOUND),
        c("if-match not a version", PATCH, &tenant, Admin, r#"{"display_name":"x"}"#, 400, FIELD).at("If-Match").header("if-match", r#""v1""#),
        c("if-match star", DELETE, &tenant, Admin, "", 400, FIELD).at("If-Match").header("if-match", "*"),
        c("if-match beyond i64", DELETE, &tenant, Admin, "", 400, FIELD).at("If-Match").header("if-match", r#""99999999999999999999""#),
        c("if-match not utf-8", DELETE, &tenant, Admin, "", 400, FIELD).at("If-Match").header("if-match", b"\"\xff\"".as_slice()),
        c("stale if-match on delete", DELETE, &tenant, Admin, "", 409, "version_mismatch").header("if-match", r#""999""#),
        // Idempotency-Key: 1-255 visible ASCII characters.
        c("empty idempotency key", POST, "/v1/tenants", Admin, r#"{"name":"idem"}"#, 400, FIELD).at("Idempotency-Key").header("idempotency-key", ""),
        c("idempotency key of 256", POST, "/v1/tenants", Admin, r#"{"name":"idem"}"#, 400, FIELD).at("Idempotency-Key").header("idempotency-key", rep("k", 256)),
        c("idempotency key with space", POST, "/v1/tenants", Admin, r#"{"name":"idem"}"#, 400, FIELD).at("Idempotency-Key").header("idempotency-key", "a b"),
        c("idempotency key not ascii", POST, "/v1/tenants", Admin, r#"{"name":"idem"}"#, 400, FIELD).at("Idempotency-Key").header("idempotency-key", "☃".as_bytes()),
        // Region entitlements (/v1/tenants/{id}/regions/{region_id}).
        c("entitlements of bad tenant id", GET, "/v1/tenants/acme/regions", Admin, "", 400, FIELD).at("id"),
        c("entitle bad region id", PUT, format!("{regions}/not-a-uuid"), Admin, "", 400, FIELD).at("id"),
        c("entitle bad tenant id", PUT, format!("/v1/tenants/acme/regions/{GHOST}"), Admin, "", 400, FIELD).at("id"),
        c("entitle missing tenant", PUT, format!("/v1/tenants/{GHOST}/regions/{GHOST}"), Admin, "", 404, NOT_FOUND),
        c("entitle missing region", PUT, format!("{regions}/{GHOST}"), Admin, "", 404, NOT_FOUND),
        c("revoke missing region", DELETE, format!("{regions}/{GHOST}"), Admin, "", 404, NOT_FOUND),
        c("entitle by post", POST, format!("{regions}/{GHOST}"), Admin, "{}", 405, "method_not_allowed"),
        // Permissions (audited as denied, nothing else written).
        c("tenant creates tenant", POST, "/v1/tenants", Tenant, r#"{"name":"evil"}"#, 403, DENIED),
        c("tenant suspends itself", POST, format!("{tenant}/suspend"), Tenant, "{}", 403, DENIED),
        c("tenant entitles itself", PUT, format!("{regions}/{GHOST}"), Tenant, "", 403, DENIED),
    ]
}

/// Users, tokens, the permission catalog and the audit trail.
#[rustfmt::skip]
fn identities(fx: &Fx) -> Vec<Case> {
    let user = format!("/v1/users/{}", fx.user);
    vec![
        // Users: usernames, passwords (12-1024), emails, tenant context.
        c("bad username", POST, "/v1/users", Tenant, r#"{"username":"a b"}"#, 400, FIELD).at("username"),
        c("username of 65", POST, "/v1/users", Tenant, format!(r#"{{"username":"{}"}}"#, rep("u", 65)), 400, FIELD).at("username"),
        c("username with zero-width joiner", POST, "/v1/users", Tenant, r#"{"username":"ad\u200dmin"}"#, 400, FIELD).at("username"),
        c("username with rtl override", POST, "/v1/users", Tenant, r#"{"username":"\u202enimda"}"#, 400, FIELD).at("username"),
        c("short password", POST, "/v1/users", Tenant, r#"{"username":"ok","password":"short"}"#, 400, FIELD).at("password"),
        c("password of 1025", POST, "/v1/users", Tenant, format!(r#"{{"username":"ok","password":"{}"}}"#, rep("p", 1025)), 400, FIELD).at("password"),
        c("password as number", POST, "/v1/users", Tenant, r#"{"username":"ok","password":123456789012}"#, 400, FIELD).at("password"),
        c("bad email", POST, "/v1/users", Tenant, r#"{"username":"ok","email":"not-an-email"}"#, 400, FIELD).at("email"),
        c("email of 255", POST, "/v1/users", Tenant, format!(r#"{{"username":"ok","email":"{}@example.com"}}"#, rep("e", 243)), 400, FIELD).at("email"),
        c("email with look-alike", POST, "/v1/users", Tenant, r#"{"username":"ok","email":"ops@ex\u0430mple.com"}"#, 400, FIELD).at("email"),
        c("foreign tenant_id in body", POST, "/v1/users", Tenant, format!(r#"{{"username":"ok","tenant_id":"{GHOST}"}}"#), 422, "tenant_mismatch"),
        c("bad uuid in body", POST, "/v1/users", Tenant, r#"{"username":"ok","tenant_id":"nope"}"#, 400, FIELD).at("tenant_id"),
        c("disabled as string", PATCH, &user, Tenant, r#"{"disabled":"yes"}"#, 400, FIELD).at("disabled"),
        c("disable yourself", PATCH, &user, Tenant, r#"{"disabled":true}"#, 403, "forbidden"),
        c("delete yourself", DELETE, &user, Tenant, "", 403, "forbidden"),
        c("delete missing user", DELETE, format!("/v1/users/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("stale if-match", PATCH, &user, Tenant, r#"{"email":"a@example.com"}"#, 409, "version_mismatch").header("if-match", r#""999""#),
        c("weak if-match not a number", PATCH, &user, Tenant, r#"{"email":"a@example.com"}"#, 400, FIELD).at("If-Match").header("if-match", r#"W/"x""#),
        // Paths: ids are UUIDs.
        c("bad uuid in path", GET, "/v1/users/not-a-uuid", Tenant, "", 400, FIELD).at("id"),
        c("sql in path", GET, "/v1/users/1%27%20OR%201=1", Tenant, "", 400, FIELD).at("id"),
        c("nul in path", GET, "/v1/users/%00", Tenant, "", 400, FIELD).at("id"),
        c("uuid with an extra digit", GET, format!("/v1/users/{GHOST}0"), Tenant, "", 400, FIELD).at("id"),
        // Lists: limit 1-500, an opaque cursor, no unknown parameters.
        c("limit zero", GET, "/v1/users?limit=0", Tenant, "", 400, FIELD).at("limit"),
        c("limit negative", GET, "/v1/users?limit=-1", Tenant, "", 400, FIELD).at("limit"),
        c("limit too big", GET, "/v1/users?limit=100000", Tenant, "", 400, FIELD).at("limit"),
        c("limit i32::MAX+1", GET, "/v1/users?limit=2147483648", Tenant, "", 400, FIELD).at("limit"),
        c("limit beyond i64", GET, "/v1/users?limit=9223372036854775808", Tenant, "", 400, QUERY),
        c("limit not a number", GET, "/v1/users?limit=ten", Tenant, "", 400, QUERY),
        c("limit as float", GET, "/v1/users?limit=1.5", Tenant, "", 400, QUERY),
        c("empty limit", GET, "/v1/users?limit=", Tenant, "", 400, QUERY),
        c("limit given twice", GET, "/v1/users?limit=1&limit=2", Tenant, "", 400, QUERY),
        c("forged cursor", GET, "/v1/users?cursor=AAAA", Tenant, "", 400, FIELD).at("cursor"),
        c("empty cursor", GET, "/v1/users?cursor=", Tenant, "", 400, FIELD).at("cursor"),
        c("cursor with padding", GET, format!("/v1/users?cursor={}=", cursor_of(b"v1:x")), Tenant, "", 400, FIELD).at("cursor"),
        c("cursor of a non-uuid", GET, format!("/v1/users?cursor={}", cursor_of(b"v1:not-a-uuid")), Tenant, "", 400, FIELD).at("cursor"),
        c("cursor of another version", GET, format!("/v1/users?cursor={}", cursor_of(format!("v2:{GHOST}").as_bytes())), Tenant, "", 400, FIELD).at("cursor"),
        c("cursor not utf-8", GET, format!("/v1/users?cursor={}", cursor_of(b"v1:\xff\xfe")), Tenant, "", 400, FIELD).at("cursor"),
        c("cursor percent-encoded garbage", GET, "/v1/users?cursor=%FF%00", Tenant, "", 400, FIELD).at("cursor"),
        c("unknown query parameter", GET, "/v1/users?tenant_id=x", Tenant, "", 400, QUERY),
        // Tokens: a name, a ttl of 60 s to 2 years, one's own tenant only.
        c("token name of 64", POST, "/v1/tokens", Tenant, format!(r#"{{"name":"{}"}}"#, rep("t", 64)), 400, FIELD).at("name"),
        c("token ttl too short", POST, "/v1/tokens", Tenant, r#"{"name":"ci","ttl_seconds":1}"#, 400, FIELD).at("ttl_seconds"),
        c("token ttl negative", POST, "/v1/tokens", Tenant, r#"{"name":"ci","ttl_seconds":-1}"#, 400, FIELD).at("ttl_seconds"),
        c("token ttl beyond i64", POST, "/v1/tokens", Tenant, r#"{"name":"ci","ttl_seconds":9223372036854775808}"#, 400, FIELD).at("ttl_seconds"),
        c("token ttl fraction", POST, "/v1/tokens", Tenant, r#"{"name":"ci","ttl_seconds":3600.5}"#, 400, FIELD).at("ttl_seconds"),
        c("token ttl not a number", POST, "/v1/tokens", Tenant, r#"{"name":"ci","ttl_seconds":"1h"}"#, 400, FIELD).at("ttl_seconds"),
        c("huge number", POST, "/v1/tokens", Tenant, r#"{"name":"ci","ttl_seconds":1e400}"#, 400, BODY),
        c("token for another tenant", POST, "/v1/tokens", Tenant, r#"{"name":"ci","tenant":"someone-else"}"#, 404, NOT_FOUND),
        c("revoke bad token id", DELETE, "/v1/tokens/nope", Tenant, "", 400, FIELD).at("id"),
        c("revoke unknown token", DELETE, format!("/v1/tokens/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("tokens unknown filter", GET, "/v1/tokens?expired=true", Tenant, "", 400, QUERY),
        // The catalog and the audit trail.
        c("bad scope filter", GET, "/v1/permissions?scope=galaxy", Tenant, "", 400, FIELD).at("scope"),
        c("audit target not a uuid", GET, "/v1/audit-events?target_id=x", Tenant, "", 400, QUERY),
        c("audit forged cursor", GET, "/v1/audit-events?cursor=djE6eA", Tenant, "", 400, FIELD).at("cursor"),
    ]
}

/// Roles, role bindings and `POST /v1/authz/check`.
#[rustfmt::skip]
fn rbac(fx: &Fx) -> Vec<Case> {
    let builtin = format!("/v1/roles/{}", fx.builtin_role);
    let many = format!(r#"{{"name":"r","permissions":{}}}"#, array_of("x", 100_000));
    let long_permission = format!(r#"{{"permission":"{}"}}"#, rep("vm:read", 100_000));
    vec![
        // Roles: a name, at most 256 catalog permissions grantable here, a description.
        c("role without permissions", POST, "/v1/roles", Tenant, r#"{"name":"r","permissions":[]}"#, 400, FIELD).at("permissions"),
        c("role permissions not a list", POST, "/v1/roles", Tenant, r#"{"name":"r","permissions":"vm:read"}"#, 400, FIELD).at("permissions"),
        c("role permission as number", POST, "/v1/roles", Tenant, r#"{"name":"r","permissions":[1]}"#, 400, FIELD).at("permissions[0]"),
        c("role of 100k permissions", POST, "/v1/roles", Tenant, many, 400, FIELD).at("permissions"),
        c("role name of 64", POST, "/v1/roles", Tenant, format!(r#"{{"name":"{}","permissions":["vm:read"]}}"#, rep("r", 64)), 400, FIELD).at("name"),
        c("role description of 1025", POST, "/v1/roles", Tenant, format!(r#"{{"name":"r","description":"{}","permissions":["vm:read"]}}"#, rep("d", 1025)), 400, FIELD).at("description"),
        c("role description with bidi", POST, "/v1/roles", Tenant, r#"{"name":"r","description":"\u202e","permissions":["vm:read"]}"#, 400, FIELD).at("description"),
        c("unknown permission", POST, "/v1/roles", Tenant, r#"{"name":"r","permissions":["vm:explode"]}"#, 422, "unknown_permission").at("permissions"),
        c("system permission in a tenant role", POST, "/v1/roles", Tenant, r#"{"name":"r","permissions":["tenant:create"]}"#, 422, "permission_not_grantable").at("permissions"),
        c("patch a built-in role", PATCH, &builtin, Tenant, r#"{"description":"mine"}"#, 403, "forbidden"),
        c("delete a built-in role", DELETE, &builtin, Tenant, "", 403, "forbidden"),
        c("patch missing role", PATCH, format!("/v1/roles/{GHOST}"), Tenant, r#"{"description":"x"}"#, 404, NOT_FOUND),
        c("patch role with empty permissions", PATCH, format!("/v1/roles/{GHOST}"), Tenant, r#"{"permissions":[]}"#, 400, FIELD).at("permissions"),
        c("role id not a uuid", GET, "/v1/roles/tenant-admin", Tenant, "", 400, FIELD).at("id"),
        // Role bindings: a role and a user of this context, a cluster of this tenant.
        c("binding role_id not a uuid", POST, "/v1/role-bindings", Tenant, format!(r#"{{"role_id":"admin","user_id":"{}"}}"#, fx.user), 400, FIELD).at("role_id"),
        c("binding without user_id", POST, "/v1/role-bindings", Tenant, format!(r#"{{"role_id":"{}"}}"#, fx.builtin_role), 400, FIELD).at("user_id"),
        c("binding of unknown user", POST, "/v1/role-bindings", Tenant, format!(r#"{{"role_id":"{}","user_id":"{GHOST}"}}"#, fx.builtin_role), 404, NOT_FOUND),
        c("binding on unknown cluster", POST, "/v1/role-bindings", Tenant, format!(r#"{{"role_id":"{}","user_id":"{}","cluster_id":"{GHOST}"}}"#, fx.builtin_role, fx.user), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("system binding on a cluster", POST, "/v1/role-bindings", Admin, format!(r#"{{"role_id":"{}","user_id":"{}","cluster_id":"{GHOST}"}}"#, fx.builtin_role, fx.user), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("binding in another tenant", POST, "/v1/role-bindings", Tenant, format!(r#"{{"role_id":"{}","user_id":"{}","tenant_id":"{GHOST}"}}"#, fx.builtin_role, fx.user), 422, "tenant_mismatch"),
        c("binding id not a uuid", DELETE, "/v1/role-bindings/1", Tenant, "", 400, FIELD).at("id"),
        c("missing binding", GET, format!("/v1/role-bindings/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        // authz/check: a catalog permission, optionally on a cluster.
        c("check unknown permission", POST, "/v1/authz/check", Tenant, r#"{"permission":"vm:raed"}"#, 422, "unknown_permission").at("permission"),
        c("check a 700 KB permission", POST, "/v1/authz/check", Tenant, long_permission, 422, "unknown_permission").at("permission"),
        c("check permission as number", POST, "/v1/authz/check", Tenant, r#"{"permission":7}"#, 400, FIELD).at("permission"),
        c("check without permission", POST, "/v1/authz/check", Tenant, "{}", 400, FIELD).at("permission"),
        c("check bad cluster id", POST, "/v1/authz/check", Tenant, r#"{"permission":"vm:read","cluster_id":"c1"}"#, 400, FIELD).at("cluster_id"),
        c("check unknown field", POST, "/v1/authz/check", Tenant, r#"{"permission":"vm:read","as":"admin"}"#, 400, FIELD).at("as"),
        c("check without token", POST, "/v1/authz/check", Nobody, r#"{"permission":"vm:read"}"#, 401, UNAUTHENTICATED),
    ]
}

/// Regions, clusters (and their hosts) and quotas.
#[rustfmt::skip]
fn capacity(fx: &Fx) -> Vec<Case> {
    let t = &fx.tenant;
    let hosts_100k = format!(r#"{{"name":"w","hosts":{}}}"#, array_of("a", 100_000));
    let hosts_65: Vec<String> = (0..65).map(|i| format!("\"test:///default?name=h{i}\"")).collect();
    let hosts_65 = format!(r#"{{"name":"w","hosts":[{}]}}"#, hosts_65.join(","));
    let quota = |fields: &str| format!(r#"{{"tenant_id":"{t}","cluster_id":"{t}",{fields}}}"#);
    vec![
        // Regions: a name and an http(s) endpoint of at most 512 characters.
        c("region bad endpoint", POST, "/v1/regions", Admin, r#"{"name":"eu","endpoint":"ftp://x"}"#, 400, FIELD).at("endpoint"),
        c("region endpoint of 513", POST, "/v1/regions", Admin, format!(r#"{{"name":"eu","endpoint":"https://{}"}}"#, rep("e", 505)), 400, FIELD).at("endpoint"),
        c("region endpoint with space", POST, "/v1/regions", Admin, r#"{"name":"eu","endpoint":"https://a b"}"#, 400, FIELD).at("endpoint"),
        c("region endpoint scheme only", POST, "/v1/regions", Admin, r#"{"name":"eu","endpoint":"https://"}"#, 400, FIELD).at("endpoint"),
        c("region without endpoint", POST, "/v1/regions", Admin, r#"{"name":"eu"}"#, 400, FIELD).at("endpoint"),
        c("region name of 64", POST, "/v1/regions", Admin, format!(r#"{{"name":"{}","endpoint":"https://x"}}"#, rep("r", 64)), 400, FIELD).at("name"),
        c("patch region javascript endpoint", PATCH, format!("/v1/regions/{GHOST}"), Admin, r#"{"endpoint":"javascript:alert(1)"}"#, 400, FIELD).at("endpoint"),
        c("patch missing region", PATCH, format!("/v1/regions/{GHOST}"), Admin, r#"{"endpoint":"https://x"}"#, 404, NOT_FOUND),
        c("deregister with force=yes", DELETE, format!("/v1/regions/{GHOST}?force=yes"), Admin, "", 400, QUERY),
        c("region id not a uuid", GET, "/v1/regions/local", Admin, "", 400, FIELD).at("id"),
        c("tenant registers a region", POST, "/v1/regions", Tenant, r#"{"name":"eu","endpoint":"https://x"}"#, 403, DENIED),
        // Clusters: 1-64 distinct libvirt URIs, each reachable; a name and an alias.
        c("cluster without hosts", POST, "/v1/clusters", Admin, r#"{"name":"w","hosts":[]}"#, 400, FIELD).at("hosts"),
        c("cluster of 100k hosts", POST, "/v1/clusters", Admin, hosts_100k, 400, FIELD).at("hosts"),
        c("cluster of 65 hosts", POST, "/v1/clusters", Admin, hosts_65, 400, FIELD).at("hosts"),
        c("cluster hosts as string", POST, "/v1/clusters", Admin, r#"{"name":"w","hosts":"test:///default"}"#, 400, FIELD).at("hosts"),
        c("cluster host not libvirt", POST, "/v1/clusters", Admin, r#"{"name":"w","hosts":["http://x"]}"#, 400, FIELD).at("hosts[0]"),
        c("cluster host with newline", POST, "/v1/clusters", Admin, r#"{"name":"w","hosts":["test:///default\n"]}"#, 400, FIELD).at("hosts[0]"),
        c("cluster host of 513", POST, "/v1/clusters", Admin, format!(r#"{{"name":"w","hosts":["test:///{}"]}}"#, rep("h", 506)), 400, FIELD).at("hosts[0]"),
        c("cluster host listed twice", POST, "/v1/clusters", Admin, r#"{"name":"w","hosts":["test:///default?name=bi","test:///default?name=bi"]}"#, 400, FIELD).at("hosts[1]"),
        c("cluster host unreachable", POST, "/v1/clusters", Admin, r#"{"name":"w","hosts":["qemu+tcp://127.0.0.1:1/system"]}"#, 422, "host_unreachable").at("hosts[0]"),
        c("cluster bad name", POST, "/v1/clusters", Admin, r#"{"name":"West","hosts":["test:///default"]}"#, 400, FIELD).at("name"),
        c("cluster bad alias", POST, "/v1/clusters", Admin, r#"{"name":"w","alias":"w w","hosts":["test:///default"]}"#, 400, FIELD).at("alias"),
        c("cluster unknown region", POST, "/v1/clusters", Admin, r#"{"name":"w","region":"mars","hosts":["test:///default?name=bi"]}"#, 422, UNPROCESSABLE_REF).at("region"),
        c("patch cluster bad alias", PATCH, format!("/v1/clusters/{GHOST}"), Admin, r#"{"alias":"-x"}"#, 400, FIELD).at("alias"),
        c("patch missing cluster", PATCH, format!("/v1/clusters/{GHOST}"), Admin, r#"{"alias":"x"}"#, 404, NOT_FOUND),
        c("hosts of missing cluster", GET, format!("/v1/clusters/{GHOST}/hosts"), Admin, "", 404, NOT_FOUND),
        c("hosts of bad cluster id", GET, "/v1/clusters/west/hosts", Admin, "", 400, FIELD).at("id"),
        c("delete bad cluster id", DELETE, "/v1/clusters/west", Admin, "", 400, FIELD).at("id"),
        c("tenant lists hosts", GET, format!("/v1/clusters/{GHOST}/hosts"), Tenant, "", 403, DENIED),
        // Quotas: vcpus 0-100000, memory_mib 0-1 TiB, max_vms 0-10000, as integers.
        c("quota negative vcpus", POST, "/v1/quotas", Admin, quota(r#""vcpus":-1,"memory_mib":1,"max_vms":1"#), 400, FIELD).at("vcpus"),
        c("quota vcpus as text", POST, "/v1/quotas", Admin, quota(r#""vcpus":"8","memory_mib":1,"max_vms":1"#), 400, FIELD).at("vcpus"),
        c("quota vcpus i32::MAX+1", POST, "/v1/quotas", Admin, quota(r#""vcpus":2147483648,"memory_mib":1,"max_vms":1"#), 400, FIELD).at("vcpus"),
        c("quota vcpus fraction", POST, "/v1/quotas", Admin, quota(r#""vcpus":1.5,"memory_mib":1,"max_vms":1"#), 400, FIELD).at("vcpus"),
        c("quota memory 1e309", POST, "/v1/quotas", Admin, quota(r#""vcpus":1,"memory_mib":1e309,"max_vms":1"#), 400, BODY),
        c("quota memory huge float", POST, "/v1/quotas", Admin, quota(r#""vcpus":1,"memory_mib":1e300,"max_vms":1"#), 400, FIELD).at("memory_mib"),
        c("quota memory over 1 TiB", POST, "/v1/quotas", Admin, quota(r#""vcpus":1,"memory_mib":1073741825,"max_vms":1"#), 400, FIELD).at("memory_mib"),
        c("quota max_vms over 10000", POST, "/v1/quotas", Admin, quota(r#""vcpus":1,"memory_mib":1,"max_vms":10001"#), 400, FIELD).at("max_vms"),
        c("quota without cluster", POST, "/v1/quotas", Admin, format!(r#"{{"tenant_id":"{t}","vcpus":1,"memory_mib":1,"max_vms":1}}"#), 400, FIELD).at("cluster_id"),
        c("quota for no tenant", POST, "/v1/quotas", Admin, format!(r#"{{"tenant_id":"{GHOST}","cluster_id":"{GHOST}","vcpus":1,"memory_mib":1,"max_vms":1}}"#), 422, UNPROCESSABLE_REF).at("tenant_id"),
        c("quota on no cluster", POST, "/v1/quotas", Admin, quota(r#""vcpus":1,"memory_mib":1,"max_vms":1"#), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("patch quota negative", PATCH, format!("/v1/quotas/{GHOST}"), Admin, r#"{"max_vms":-1}"#, 400, FIELD).at("max_vms"),
        c("patch missing quota", PATCH, format!("/v1/quotas/{GHOST}"), Admin, r#"{"max_vms":1}"#, 404, NOT_FOUND),
        c("quotas by bad tenant id", GET, "/v1/quotas?tenant_id=nope", Admin, "", 400, QUERY),
        c("quota id not a uuid", GET, "/v1/quotas/q1", Admin, "", 400, FIELD).at("id"),
    ]
}

/// Templates (sizes, host paths, direct kernel boot, region).
#[rustfmt::skip]
fn templates(_: &Fx) -> Vec<Case> {
    let t = |fields: &str| format!(r#"{{"name":"t","vcpus":1,"memory_mib":128{fields}}}"#);
    let boot = r#","kernel":"/boot/vmlinuz","initrd":"/boot/initrd.img""#;
    vec![
        // Sizes: vcpus 1-256, memory_mib 64-1048576, disk_gib 1-65536.
        c("template zero vcpus", POST, "/v1/templates", Admin, r#"{"name":"t","vcpus":0,"memory_mib":128}"#, 400, FIELD).at("vcpus"),
        c("template 257 vcpus", POST, "/v1/templates", Admin, r#"{"name":"t","vcpus":257,"memory_mib":128}"#, 400, FIELD).at("vcpus"),
        c("template tiny memory", POST, "/v1/templates", Admin, r#"{"name":"t","vcpus":1,"memory_mib":10}"#, 400, FIELD).at("memory_mib"),
        c("template memory beyond i64", POST, "/v1/templates", Admin, r#"{"name":"t","vcpus":1,"memory_mib":9223372036854775808}"#, 400, FIELD).at("memory_mib"),
        c("template disk zero", POST, "/v1/templates", Admin, t(r#","disk_gib":0"#), 400, FIELD).at("disk_gib"),
        c("template disk 65537", POST, "/v1/templates", Admin, t(r#","disk_gib":65537"#), 400, FIELD).at("disk_gib"),
        c("template name of 64", POST, "/v1/templates", Admin, format!(r#"{{"name":"{}","vcpus":1,"memory_mib":128}}"#, rep("t", 64)), 400, FIELD).at("name"),
        // Host paths: absolute, no '..', no control characters, at most 1024.
        c("template relative image", POST, "/v1/templates", Admin, t(r#","image":"../etc/shadow""#), 400, FIELD).at("image"),
        c("template image with nul", POST, "/v1/templates", Admin, t(r#","image":"/var/lib/x\u0000.qcow2""#), 400, FIELD).at("image"),
        c("template image of 1025", POST, "/v1/templates", Admin, t(&format!(r#","image":"/{}""#, rep("i", 1024))), 400, FIELD).at("image"),
        c("template relative kernel", POST, "/v1/templates", Admin, t(r#","kernel":"vmlinuz","initrd":"/boot/initrd.img""#), 400, FIELD).at("kernel"),
        c("template kernel without initrd", POST, "/v1/templates", Admin, t(r#","kernel":"/boot/vmlinuz""#), 400, FIELD).at("initrd"),
        c("template cmdline without kernel", POST, "/v1/templates", Admin, t(r#","cmdline":"console=ttyS0""#), 400, FIELD).at("cmdline"),
        c("template cmdline of 1025", POST, "/v1/templates", Admin, t(&format!(r#"{boot},"cmdline":"{}""#, rep("c", 1025))), 400, FIELD).at("cmdline"),
        c("template cmdline not ascii", POST, "/v1/templates", Admin, t(&format!(r#"{boot},"cmdline":"console=ttyS0 ré""#)), 400, FIELD).at("cmdline"),
        c("template cmdline with newline", POST, "/v1/templates", Admin, t(&format!(r#"{boot},"cmdline":"a\nb""#)), 400, FIELD).at("cmdline"),
        // Only provider templates name files on the hosts; the region must exist.
        c("tenant template naming a host path", POST, "/v1/templates", Tenant, t(r#","image":"/var/lib/basalt/vms/other.qcow2""#), 422, "image_not_allowed").at("image"),
        c("tenant template with a kernel", POST, "/v1/templates", Tenant, t(boot), 422, "image_not_allowed").at("kernel"),
        c("system template naming a tenant", POST, "/v1/templates", Admin, t(&format!(r#","tenant_id":"{GHOST}""#)), 422, "tenant_mismatch"),
        c("template unknown region", POST, "/v1/templates", Admin, t(r#","region":"mars""#), 422, UNPROCESSABLE_REF).at("region"),
        c("template region as number", POST, "/v1/templates", Admin, t(r#","region":1"#), 400, FIELD).at("region"),
        c("patch template zero vcpus", PATCH, format!("/v1/templates/{GHOST}"), Admin, r#"{"vcpus":0}"#, 400, FIELD).at("vcpus"),
        c("patch template unknown field", PATCH, format!("/v1/templates/{GHOST}"), Admin, r#"{"image":"/x"}"#, 400, FIELD).at("image"),
        c("patch missing template", PATCH, format!("/v1/templates/{GHOST}"), Admin, r#"{"vcpus":2}"#, 404, NOT_FOUND),
        c("templates limit 501", GET, "/v1/templates?limit=501", Admin, "", 400, FIELD).at("limit"),
    ]
}

/// VMs (create, power actions, resize, migrate, template-from-VM), snapshots,
/// operations and console tickets.
#[rustfmt::skip]
fn compute(fx: &Fx) -> Vec<Case> {
    let vm = format!("/v1/vms/{GHOST}");
    let create = |fields: &str| format!(r#"{{"name":"web","cluster_id":"{GHOST}","template_id":"{GHOST}"{fields}}}"#);
    vec![
        // Create: a name (letters, digits, '-'), a visible cluster, a template, sizes.
        c("vm on a cluster without quota", POST, "/v1/vms", Tenant, create(""), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("vm bad name", POST, "/v1/vms", Tenant, format!(r#"{{"name":"-web","cluster_id":"{GHOST}","template_id":"{GHOST}"}}"#), 400, FIELD).at("name"),
        c("vm name of 64", POST, "/v1/vms", Tenant, format!(r#"{{"name":"{}","cluster_id":"{GHOST}","template_id":"{GHOST}"}}"#, rep("v", 64)), 400, FIELD).at("name"),
        c("vm name with zero-width space", POST, "/v1/vms", Tenant, format!(r#"{{"name":"we\u200bb","cluster_id":"{GHOST}","template_id":"{GHOST}"}}"#), 400, FIELD).at("name"),
        c("vm unknown power state", POST, "/v1/vms", Tenant, create(r#","power_state":"paused""#), 400, FIELD).at("power_state"),
        c("vm cluster id not a uuid", POST, "/v1/vms", Tenant, r#"{"name":"web","cluster_id":"west","template_id":"west"}"#, 400, FIELD).at("cluster_id"),
        c("vm without template", POST, "/v1/vms", Tenant, format!(r#"{{"name":"web","cluster_id":"{GHOST}"}}"#), 400, FIELD).at("template_id"),
        c("vm zero vcpus", POST, "/v1/vms", Tenant, create(r#","vcpus":0"#), 400, FIELD).at("vcpus"),
        c("vm vcpus i32::MAX+1", POST, "/v1/vms", Tenant, create(r#","vcpus":2147483648"#), 400, FIELD).at("vcpus"),
        c("vm memory as float", POST, "/v1/vms", Tenant, create(r#","memory_mib":512.0"#), 400, FIELD).at("memory_mib"),
        c("vm in another tenant", POST, "/v1/vms", Tenant, create(&format!(r#","tenant_id":"{}""#, fx.user)), 422, "tenant_mismatch"),
        c("vm bad idempotency key", POST, "/v1/vms", Tenant, create(""), 400, FIELD).at("Idempotency-Key").header("idempotency-key", "key\twith\ttabs"),
        c("vm id not a uuid", GET, "/v1/vms/web", Tenant, "", 400, FIELD).at("id"),
        c("delete missing vm", DELETE, vm.clone(), Tenant, "", 404, NOT_FOUND),
        c("vm list forged cursor", GET, "/v1/vms?cursor=%2F%2F%2F", Tenant, "", 400, FIELD).at("cursor"),
        // Power actions: a VM of this tenant; stop takes an optional {force, timeout_seconds 1-3600}.
        c("start missing vm", POST, format!("{vm}/start"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("reboot bad vm id", POST, "/v1/vms/web/reboot", Tenant, "", 400, FIELD).at("id").content_type(None),
        c("suspend missing vm", POST, format!("{vm}/suspend"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("resume missing vm", POST, format!("{vm}/resume"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("stop unknown vm", POST, format!("{vm}/stop"), Tenant, "{}", 404, NOT_FOUND),
        c("stop with zero timeout", POST, format!("{vm}/stop"), Tenant, r#"{"timeout_seconds":0}"#, 400, FIELD).at("timeout_seconds"),
        c("stop with timeout 3601", POST, format!("{vm}/stop"), Tenant, r#"{"timeout_seconds":3601}"#, 400, FIELD).at("timeout_seconds"),
        c("stop with negative timeout", POST, format!("{vm}/stop"), Tenant, r#"{"timeout_seconds":-1}"#, 400, FIELD).at("timeout_seconds"),
        c("stop with timeout u32::MAX+1", POST, format!("{vm}/stop"), Tenant, r#"{"timeout_seconds":4294967296}"#, 400, FIELD).at("timeout_seconds"),
        c("stop force as string", POST, format!("{vm}/stop"), Tenant, r#"{"force":"yes"}"#, 400, FIELD).at("force"),
        c("stop body as text", POST, format!("{vm}/stop"), Tenant, "force", 415, "unsupported_media_type").content_type(Some("text/plain")),
        c("stop body without content type", POST, format!("{vm}/stop"), Tenant, r#"{"force":true}"#, 415, "unsupported_media_type").content_type(None),
        // Resize: vcpus and/or memory_mib within the template bounds.
        c("resize nothing", POST, format!("{vm}/resize"), Tenant, "{}", 400, BODY),
        c("resize 257 vcpus", POST, format!("{vm}/resize"), Tenant, r#"{"vcpus":257}"#, 400, FIELD).at("vcpus"),
        c("resize memory as string", POST, format!("{vm}/resize"), Tenant, r#"{"memory_mib":"1G"}"#, 400, FIELD).at("memory_mib"),
        c("resize restart as string", POST, format!("{vm}/resize"), Tenant, r#"{"vcpus":2,"restart":"true"}"#, 400, FIELD).at("restart"),
        c("resize missing vm", POST, format!("{vm}/resize"), Tenant, r#"{"vcpus":2}"#, 404, NOT_FOUND),
        // Migrate: an optional destination host id.
        c("migrate host id not a uuid", POST, format!("{vm}/migrate"), Tenant, r#"{"host_id":"h1"}"#, 400, FIELD).at("host_id"),
        c("migrate array body", POST, format!("{vm}/migrate"), Tenant, "[]", 400, BODY),
        c("migrate missing vm", POST, format!("{vm}/migrate"), Tenant, "{}", 404, NOT_FOUND),
        // Template from a VM: a name, a stopped VM of this tenant.
        c("template from vm bad name", POST, format!("{vm}/template"), Tenant, r#"{"name":"T 1"}"#, 400, FIELD).at("name"),
        c("template from vm without name", POST, format!("{vm}/template"), Tenant, "{}", 400, FIELD).at("name"),
        c("template from missing vm", POST, format!("{vm}/template"), Tenant, r#"{"name":"golden"}"#, 404, NOT_FOUND),
        // Snapshots: a name of letters, digits, '-' and '_'.
        c("snapshot bad name", POST, format!("{vm}/snapshots"), Tenant, r#"{"name":"a b"}"#, 400, FIELD).at("name"),
        c("snapshot name of 64", POST, format!("{vm}/snapshots"), Tenant, format!(r#"{{"name":"{}"}}"#, rep("s", 64)), 400, FIELD).at("name"),
        c("snapshot of missing vm", POST, format!("{vm}/snapshots"), Tenant, r#"{"name":"s1"}"#, 404, NOT_FOUND),
        c("snapshots of bad vm id", GET, "/v1/vms/web/snapshots", Tenant, "", 400, FIELD).at("id"),
        c("snapshots limit zero", GET, format!("{vm}/snapshots?limit=0"), Tenant, "", 400, FIELD).at("limit"),
        c("snapshot id not a uuid", GET, format!("{vm}/snapshots/s1"), Tenant, "", 400, FIELD).at("id"),
        c("missing snapshot", GET, format!("{vm}/snapshots/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("revert missing snapshot", POST, format!("{vm}/snapshots/{GHOST}/revert"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("delete snapshot bad id", DELETE, format!("{vm}/snapshots/%20"), Tenant, "", 400, FIELD).at("id"),
        // Operations.
        c("operation id not a uuid", GET, "/v1/operations/42", Tenant, "", 400, FIELD).at("id"),
        c("missing operation", GET, format!("/v1/operations/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("operations by status", GET, "/v1/operations?status=failed", Tenant, "", 400, QUERY),
        c("operations limit 501", GET, "/v1/operations?limit=501", Tenant, "", 400, FIELD).at("limit"),
        // Console: a ticket for a VM of this tenant, spent once on a websocket upgrade.
        c("console ticket for missing vm", POST, format!("{vm}/console"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("console ticket bad vm id", POST, "/v1/vms/web/console", Tenant, "", 400, FIELD).at("id").content_type(None),
        c("console without ticket", GET, format!("{vm}/console/ws"), Nobody, "", 400, FIELD).at("ticket"),
        c("console with unknown parameter", GET, format!("{vm}/console/ws?ticket=bct_x&token=y"), Nobody, "", 400, FIELD).at("ticket"),
        c("console without upgrade", GET, format!("{vm}/console/ws?ticket=bct_x"), Nobody, "", 400, "websocket_required"),
        c("console forged ticket", GET, format!("{vm}/console/ws?ticket=bct_x"), Nobody, "", 401, UNAUTHENTICATED).upgrade(),
        c("console ticket of a ghost tenant", GET, format!("{vm}/console/ws?ticket=bct_{}_{}_s", GHOST.replace('-', ""), GHOST.replace('-', "")), Nobody, "", 401, UNAUTHENTICATED).upgrade(),
        c("console unknown ticket of this tenant", GET, format!("{vm}/console/ws?ticket=bct_{}_{}_s", fx.tenant.replace('-', ""), GHOST.replace('-', "")), Nobody, "", 401, UNAUTHENTICATED).upgrade(),
        c("console bad vm id", GET, "/v1/vms/web/console/ws?ticket=bct_x", Nobody, "", 400, FIELD).at("id").upgrade(),
    ]
}

/// Invitations, the tenant policy, service accounts, unlock, a user's
/// permissions and the audit export.
#[rustfmt::skip]
fn identity_depth(fx: &Fx) -> Vec<Case> {
    let sa = format!("/v1/service-accounts/{GHOST}");
    let ghost_invitation = format!(r#"{{"token":"bsi_{}_00","username":"eve","password":"a long enough password"}}"#, GHOST.replace('-', ""));
    vec![
        // Invitations: an email, a lifetime of 1 to 720 hours, a visible role.
        c("invitation bad email", POST, "/v1/invitations", Tenant, r#"{"email":"nope"}"#, 400, FIELD).at("email"),
        c("invitation without email", POST, "/v1/invitations", Tenant, "{}", 400, FIELD).at("email"),
        c("invitation of 0 hours", POST, "/v1/invitations", Tenant, r#"{"email":"a@example.com","expires_in_hours":0}"#, 400, FIELD).at("expires_in_hours"),
        c("invitation of 721 hours", POST, "/v1/invitations", Tenant, r#"{"email":"a@example.com","expires_in_hours":721}"#, 400, FIELD).at("expires_in_hours"),
        c("invitation role not a uuid", POST, "/v1/invitations", Tenant, r#"{"email":"a@example.com","role_id":"admin"}"#, 400, FIELD).at("role_id"),
        c("invitation unknown role", POST, "/v1/invitations", Tenant, format!(r#"{{"email":"a@example.com","role_id":"{GHOST}"}}"#), 404, NOT_FOUND),
        c("invitation foreign tenant", POST, "/v1/invitations", Tenant, format!(r#"{{"email":"a@example.com","tenant_id":"{GHOST}"}}"#), 422, "tenant_mismatch"),
        c("revoke unknown invitation", POST, format!("/v1/invitations/{GHOST}/revoke"), Tenant, "{}", 404, NOT_FOUND),
        // Accepting: no credential; every bad invitation is the same 401.
        c("accept garbage token", POST, "/v1/invitations/accept", Nobody, r#"{"token":"garbage","username":"eve","password":"a long enough password"}"#, 401, UNAUTHENTICATED),
        c("accept an api token", POST, "/v1/invitations/accept", Nobody, r#"{"token":"bst_0190a0a0a0a07000800000000000000a_00","username":"eve","password":"a long enough password"}"#, 401, UNAUTHENTICATED),
        c("accept unknown invitation", POST, "/v1/invitations/accept", Nobody, ghost_invitation, 401, UNAUTHENTICATED),
        c("accept without password", POST, "/v1/invitations/accept", Nobody, r#"{"token":"x","username":"eve"}"#, 400, FIELD).at("password"),
        c("accept unknown field", POST, "/v1/invitations/accept", Nobody, r#"{"token":"x","username":"eve","password":"p","role_id":"x"}"#, 400, FIELD).at("role_id"),
        // The tenant policy: 8-128, 1-732 days or null; tenant scope only.
        c("policy min 7", PATCH, "/v1/tenant-policy", Tenant, r#"{"password_min_length":7}"#, 400, FIELD).at("password_min_length"),
        c("policy min 129", PATCH, "/v1/tenant-policy", Tenant, r#"{"password_min_length":129}"#, 400, FIELD).at("password_min_length"),
        c("policy min as string", PATCH, "/v1/tenant-policy", Tenant, r#"{"password_min_length":"12"}"#, 400, FIELD).at("password_min_length"),
        c("policy ttl 0 days", PATCH, "/v1/tenant-policy", Tenant, r#"{"token_max_ttl_days":0}"#, 400, FIELD).at("token_max_ttl_days"),
        c("policy ttl 733 days", PATCH, "/v1/tenant-policy", Tenant, r#"{"token_max_ttl_days":733}"#, 400, FIELD).at("token_max_ttl_days"),
        c("policy ttl as float", PATCH, "/v1/tenant-policy", Tenant, r#"{"token_max_ttl_days":1.5}"#, 400, FIELD).at("token_max_ttl_days"),
        c("policy unknown field", PATCH, "/v1/tenant-policy", Tenant, r#"{"mfa":true}"#, 400, FIELD).at("mfa"),
        c("policy stale if-match", PATCH, "/v1/tenant-policy", Tenant, r#"{"password_min_length":14}"#, 409, "version_mismatch").header("if-match", r#""7""#),
        c("policy at system scope", GET, "/v1/tenant-policy", Admin, "", 403, DENIED),
        // Service accounts: a username-like name, short clean descriptions.
        c("service account bad name", POST, "/v1/service-accounts", Tenant, r#"{"name":"ci bot"}"#, 400, FIELD).at("name"),
        c("service account with password", POST, "/v1/service-accounts", Tenant, r#"{"name":"ci","password":"a long enough password"}"#, 400, FIELD).at("password"),
        c("service account description with rtl override", POST, "/v1/service-accounts", Tenant, r#"{"name":"ci","description":"\u202eevil"}"#, 400, FIELD).at("description"),
        c("service account description of 256", POST, "/v1/service-accounts", Tenant, format!(r#"{{"name":"ci","description":"{}"}}"#, rep("d", 256)), 400, FIELD).at("description"),
        c("service account unknown", GET, &sa, Tenant, "", 404, NOT_FOUND),
        c("service account bad id", GET, "/v1/service-accounts/nope", Tenant, "", 400, FIELD).at("id"),
        c("service account the admin (a person)", GET, format!("/v1/service-accounts/{}", fx.user), Tenant, "", 404, NOT_FOUND),
        c("service account disabled as string", PATCH, &sa, Tenant, r#"{"disabled":"yes"}"#, 400, FIELD).at("disabled"),
        c("service account token ttl too short", POST, format!("{sa}/tokens"), Tenant, r#"{"name":"ci","ttl_seconds":1}"#, 400, FIELD).at("ttl_seconds"),
        c("service account token bad name", POST, format!("{sa}/tokens"), Tenant, r#"{"name":"CI"}"#, 400, FIELD).at("name"),
        c("service account token for nobody", POST, format!("{sa}/tokens"), Tenant, r#"{"name":"ci"}"#, 404, NOT_FOUND),
        c("service account token revoke bad id", DELETE, format!("{sa}/tokens/nope"), Tenant, "", 400, FIELD).at("id"),
        c("a person's password via service accounts", PATCH, format!("/v1/service-accounts/{}", fx.user), Tenant, r#"{"password":"a long enough password"}"#, 400, FIELD).at("password"),
        // Unlock, permissions of a user: UUIDs of the context's users.
        c("unlock unknown user", POST, format!("/v1/users/{GHOST}/unlock"), Tenant, "{}", 404, NOT_FOUND),
        c("permissions of unknown user", GET, format!("/v1/users/{GHOST}/permissions"), Tenant, "", 404, NOT_FOUND),
        c("permissions bad id", GET, "/v1/users/nope/permissions", Tenant, "", 400, FIELD).at("id"),
        // The audit export: RFC 3339 times, since before until.
        c("export since not a time", GET, "/v1/audit-events/export?since=yesterday", Tenant, "", 400, QUERY),
        c("export unknown parameter", GET, "/v1/audit-events/export?format=csv", Tenant, "", 400, QUERY),
        c("export since after until", GET, "/v1/audit-events/export?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z", Tenant, "", 400, FIELD).at("since"),
    ]
}

/// VM depth: updates and labels, protection, metrics, rebuild, clone, reset,
/// snapshot updates, placement groups.
#[rustfmt::skip]
fn vm_depth(_fx: &Fx) -> Vec<Case> {
    let vm = format!("/v1/vms/{GHOST}");
    let pg = format!("/v1/placement-groups/{GHOST}");
    let labels_33: Vec<String> = (0..33).map(|i| format!(r#""k{i}":"v""#)).collect();
    vec![
        c("patch vm bad name", PATCH, vm.clone(), Tenant, r#"{"name":"a b"}"#, 400, FIELD).at("name"),
        c("patch vm 33 labels", PATCH, vm.clone(), Tenant, format!(r#"{{"labels":{{{}}}}}"#, labels_33.join(",")), 400, FIELD).at("labels"),
        c("patch vm upper-case label key", PATCH, vm.clone(), Tenant, r#"{"labels":{"Env":"x"}}"#, 400, FIELD).at("labels"),
        c("patch vm label key of 64", PATCH, vm.clone(), Tenant, format!(r#"{{"labels":{{"{}":"x"}}}}"#, rep("k", 64)), 400, FIELD).at("labels"),
        c("patch vm label value of 257", PATCH, vm.clone(), Tenant, format!(r#"{{"labels":{{"env":"{}"}}}}"#, rep("v", 257)), 400, FIELD).at("labels.env"),
        c("patch vm label value as number", PATCH, vm.clone(), Tenant, r#"{"labels":{"env":1}}"#, 400, FIELD).at("labels.env"),
        c("patch vm labels as list", PATCH, vm.clone(), Tenant, r#"{"labels":["env"]}"#, 400, FIELD).at("labels"),
        c("patch vm description with bidi override", PATCH, vm.clone(), Tenant, r#"{"description":"a\u202eb"}"#, 400, FIELD).at("description"),
        c("patch vm protected field", PATCH, vm.clone(), Tenant, r#"{"protected":false}"#, 400, FIELD).at("protected"),
        c("patch missing vm", PATCH, vm.clone(), Tenant, r#"{"description":"x"}"#, 404, NOT_FOUND),
        c("patch vm bad if-match", PATCH, vm.clone(), Tenant, r#"{"description":"x"}"#, 400, FIELD).at("If-Match").header("if-match", "latest"),
        c("vm list label without colon", GET, "/v1/vms?label=env", Tenant, "", 400, FIELD).at("label"),
        c("vm list bad label key", GET, "/v1/vms?label=Env:x", Tenant, "", 400, FIELD).at("label"),
        c("protect missing vm", POST, format!("{vm}/protect"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("unprotect bad vm id", POST, "/v1/vms/web/unprotect", Tenant, "", 400, FIELD).at("id").content_type(None),
        c("metrics of missing vm", GET, format!("{vm}/metrics"), Tenant, "", 404, NOT_FOUND),
        c("rebuild template not a uuid", POST, format!("{vm}/rebuild"), Tenant, r#"{"template_id":"debian"}"#, 400, FIELD).at("template_id"),
        c("rebuild unknown field", POST, format!("{vm}/rebuild"), Tenant, r#"{"image":"/etc/passwd"}"#, 400, FIELD).at("image"),
        c("rebuild missing vm", POST, format!("{vm}/rebuild"), Tenant, "{}", 404, NOT_FOUND),
        c("clone without name", POST, format!("{vm}/clone"), Tenant, "{}", 400, FIELD).at("name"),
        c("clone bad name", POST, format!("{vm}/clone"), Tenant, r#"{"name":"-x"}"#, 400, FIELD).at("name"),
        c("clone missing vm", POST, format!("{vm}/clone"), Tenant, r#"{"name":"copy"}"#, 404, NOT_FOUND),
        c("reset missing vm", POST, format!("{vm}/reset"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("patch snapshot long description", PATCH, format!("{vm}/snapshots/{GHOST}"), Tenant, format!(r#"{{"description":"{}"}}"#, rep("d", 1025)), 400, FIELD).at("description"),
        c("patch snapshot name", PATCH, format!("{vm}/snapshots/{GHOST}"), Tenant, r#"{"name":"s2"}"#, 400, FIELD).at("name"),
        c("patch missing snapshot", PATCH, format!("{vm}/snapshots/{GHOST}"), Tenant, r#"{"description":"x"}"#, 404, NOT_FOUND),
        c("vm in unknown placement group", POST, "/v1/vms", Tenant, format!(r#"{{"name":"web","cluster_id":"{GHOST}","template_id":"{GHOST}","placement_group_id":"pg"}}"#), 400, FIELD).at("placement_group_id"),
        c("placement group bad name", POST, "/v1/placement-groups", Tenant, format!(r#"{{"cluster_id":"{GHOST}","name":"Web"}}"#), 400, FIELD).at("name"),
        c("placement group unknown policy", POST, "/v1/placement-groups", Tenant, format!(r#"{{"cluster_id":"{GHOST}","name":"web","policy":"pack"}}"#), 400, FIELD).at("policy"),
        c("placement group without cluster", POST, "/v1/placement-groups", Tenant, r#"{"name":"web"}"#, 400, FIELD).at("cluster_id"),
        c("placement group on unknown cluster", POST, "/v1/placement-groups", Tenant, format!(r#"{{"cluster_id":"{GHOST}","name":"web"}}"#), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("placement group long description", POST, "/v1/placement-groups", Tenant, format!(r#"{{"cluster_id":"{GHOST}","name":"web","description":"{}"}}"#, rep("d", 1025)), 400, FIELD).at("description"),
        c("placement group at system scope", POST, "/v1/placement-groups", Admin, format!(r#"{{"cluster_id":"{GHOST}","name":"web"}}"#), 403, DENIED),
        c("placement groups limit 501", GET, "/v1/placement-groups?limit=501", Tenant, "", 400, FIELD).at("limit"),
        c("placement groups unknown filter", GET, "/v1/placement-groups?region=x", Tenant, "", 400, QUERY),
        c("placement group id not a uuid", GET, "/v1/placement-groups/web", Tenant, "", 400, FIELD).at("id"),
        c("missing placement group", GET, pg.clone(), Tenant, "", 404, NOT_FOUND),
        c("patch placement group policy", PATCH, pg.clone(), Tenant, r#"{"policy":"spread"}"#, 400, FIELD).at("policy"),
        c("patch placement group bad name", PATCH, pg.clone(), Tenant, r#"{"name":"a b"}"#, 400, FIELD).at("name"),
        c("patch missing placement group", PATCH, pg.clone(), Tenant, r#"{"description":"x"}"#, 404, NOT_FOUND),
        c("delete missing placement group", DELETE, pg, Tenant, "", 404, NOT_FOUND),
    ]
}

/// Provider operations: quota requests, template publication, host evacuation,
/// cluster capacity, operation cancel, notices, console sessions.
#[rustfmt::skip]
fn provider_ops(_: &Fx) -> Vec<Case> {
    let qr = |fields: &str| format!(r#"{{"cluster_id":"{GHOST}","vcpus":8,"memory_mib":4096,"max_vms":4{fields}}}"#);
    let request = format!("/v1/quota-requests/{GHOST}");
    let host = format!("/v1/clusters/{GHOST}/hosts/{GHOST}");
    let notice = |fields: &str| format!(r#"{{"title":"Maintenance","severity":"warning","starts_at":"2026-12-24T22:00:00Z"{fields}}}"#);
    let vm = format!("/v1/vms/{GHOST}");
    vec![
        // Quota requests: the limits of a quota, a reason of at most 1000 characters, a visible cluster.
        c("quota request negative vcpus", POST, "/v1/quota-requests", Tenant, format!(r#"{{"cluster_id":"{GHOST}","vcpus":-1,"memory_mib":1,"max_vms":1}}"#), 400, FIELD).at("vcpus"),
        c("quota request memory over 1 TiB", POST, "/v1/quota-requests", Tenant, format!(r#"{{"cluster_id":"{GHOST}","vcpus":1,"memory_mib":1073741825,"max_vms":1}}"#), 400, FIELD).at("memory_mib"),
        c("quota request max_vms as text", POST, "/v1/quota-requests", Tenant, format!(r#"{{"cluster_id":"{GHOST}","vcpus":1,"memory_mib":1,"max_vms":"4"}}"#), 400, FIELD).at("max_vms"),
        c("quota request disk field", POST, "/v1/quota-requests", Tenant, qr(r#","disk_gib":100"#), 400, FIELD).at("disk_gib"),
        c("quota request reason of 1001", POST, "/v1/quota-requests", Tenant, qr(&format!(r#","reason":"{}""#, rep("r", 1001))), 400, FIELD).at("reason"),
        c("quota request reason with bell", POST, "/v1/quota-requests", Tenant, qr(r#","reason":"more\u0007""#), 400, FIELD).at("reason"),
        c("quota request without cluster", POST, "/v1/quota-requests", Tenant, r#"{"vcpus":1,"memory_mib":1,"max_vms":1}"#, 400, FIELD).at("cluster_id"),
        c("quota request on a cluster without quota", POST, "/v1/quota-requests", Tenant, qr(""), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("staff files a quota request", POST, "/v1/quota-requests", Admin, qr(""), 403, DENIED),
        c("quota requests by bad state", GET, "/v1/quota-requests?state=open", Admin, "", 400, FIELD).at("state"),
        c("quota requests by bad tenant id", GET, "/v1/quota-requests?tenant_id=acme", Admin, "", 400, QUERY),
        c("quota request id not a uuid", GET, "/v1/quota-requests/r1", Tenant, "", 400, FIELD).at("id"),
        c("missing quota request", GET, request.clone(), Tenant, "", 404, NOT_FOUND),
        c("approve missing quota request", POST, format!("{request}/approve"), Admin, "", 404, NOT_FOUND).content_type(None),
        c("approve reason as number", POST, format!("{request}/approve"), Admin, r#"{"reason":1}"#, 400, FIELD).at("reason"),
        c("reject without reason", POST, format!("{request}/reject"), Admin, "{}", 400, FIELD).at("reason"),
        c("reject with blank reason", POST, format!("{request}/reject"), Admin, r#"{"reason":"  "}"#, 400, FIELD).at("reason"),
        c("tenant approves a request", POST, format!("{request}/approve"), Tenant, "{}", 403, DENIED),
        c("tenant rejects a request", POST, format!("{request}/reject"), Tenant, r#"{"reason":"no"}"#, 403, DENIED),
        c("cancel missing quota request", POST, format!("{request}/cancel"), Tenant, "", 404, NOT_FOUND).content_type(None),
        // Template publication (system scope).
        c("publish missing template", POST, format!("/v1/templates/{GHOST}/publish"), Admin, "", 404, NOT_FOUND).content_type(None),
        c("unpublish bad template id", POST, "/v1/templates/tiny/unpublish", Admin, "", 400, FIELD).at("id").content_type(None),
        c("tenant unpublishes a template", POST, format!("/v1/templates/{GHOST}/unpublish"), Tenant, "", 403, DENIED).content_type(None),
        // Host evacuation, cluster capacity, operation cancel.
        c("evacuate missing host", POST, format!("{host}/evacuate"), Admin, "", 404, NOT_FOUND).content_type(None),
        c("evacuate bad host id", POST, format!("/v1/clusters/{GHOST}/hosts/h1/evacuate"), Admin, "", 400, FIELD).at("id").content_type(None),
        c("tenant evacuates a host", POST, format!("{host}/evacuate"), Tenant, "", 403, DENIED).content_type(None),
        c("capacity of missing cluster", GET, format!("/v1/clusters/{GHOST}/capacity"), Admin, "", 404, NOT_FOUND),
        c("capacity bad cluster id", GET, "/v1/clusters/west/capacity", Admin, "", 400, FIELD).at("id"),
        c("tenant reads capacity", GET, format!("/v1/clusters/{GHOST}/capacity"), Tenant, "", 403, DENIED),
        c("cancel missing operation", POST, format!("/v1/operations/{GHOST}/cancel"), Admin, "", 404, NOT_FOUND).content_type(None),
        c("cancel bad operation id", POST, "/v1/operations/42/cancel", Admin, "", 400, FIELD).at("id").content_type(None),
        c("tenant cancels an operation", POST, format!("/v1/operations/{GHOST}/cancel"), Tenant, "", 403, DENIED).content_type(None),
        // Notices: a title, a severity, a window (end after start), an existing region.
        c("notice without title", POST, "/v1/notices", Admin, r#"{"severity":"info","starts_at":"2026-12-24T22:00:00Z"}"#, 400, FIELD).at("title"),
        c("notice blank title", POST, "/v1/notices", Admin, r#"{"title":"   ","severity":"info","starts_at":"2026-12-24T22:00:00Z"}"#, 400, FIELD).at("title"),
        c("notice title of 201", POST, "/v1/notices", Admin, format!(r#"{{"title":"{}","severity":"info","starts_at":"2026-12-24T22:00:00Z"}}"#, rep("t", 201)), 400, FIELD).at("title"),
        c("notice title with newline", POST, "/v1/notices", Admin, r#"{"title":"a\nb","severity":"info","starts_at":"2026-12-24T22:00:00Z"}"#, 400, FIELD).at("title"),
        c("notice body with escape", POST, "/v1/notices", Admin, notice(r#","body":"line\u001b[31m""#), 400, FIELD).at("body"),
        c("notice unknown severity", POST, "/v1/notices", Admin, r#"{"title":"x","severity":"fatal","starts_at":"2026-12-24T22:00:00Z"}"#, 400, FIELD).at("severity"),
        c("notice bad start", POST, "/v1/notices", Admin, r#"{"title":"x","severity":"info","starts_at":"tomorrow"}"#, 400, FIELD).at("starts_at"),
        c("notice ends before it starts", POST, "/v1/notices", Admin, notice(r#","ends_at":"2026-12-24T21:00:00Z""#), 400, FIELD).at("ends_at"),
        c("notice unknown region", POST, "/v1/notices", Admin, notice(&format!(r#","region_id":"{GHOST}""#)), 422, UNPROCESSABLE_REF).at("region_id"),
        c("tenant publishes a notice", POST, "/v1/notices", Tenant, notice(""), 403, DENIED),
        c("patch missing notice", PATCH, format!("/v1/notices/{GHOST}"), Admin, r#"{"title":"x"}"#, 404, NOT_FOUND),
        c("patch notice bad severity", PATCH, format!("/v1/notices/{GHOST}"), Admin, r#"{"severity":"loud"}"#, 400, FIELD).at("severity"),
        c("tenant deletes a notice", DELETE, format!("/v1/notices/{GHOST}"), Tenant, "", 403, DENIED),
        c("notices limit 501", GET, "/v1/notices?limit=501", Tenant, "", 400, FIELD).at("limit"),
        c("notices by bad region id", GET, "/v1/notices?region_id=eu", Tenant, "", 400, QUERY),
        c("notice id not a uuid", GET, "/v1/notices/n1", Tenant, "", 400, FIELD).at("id"),
        // Console sessions: a VM of this tenant, a session id.
        c("console sessions of missing vm", GET, format!("{vm}/console-sessions"), Tenant, "", 404, NOT_FOUND),
        c("console sessions bad vm id", GET, "/v1/vms/web/console-sessions", Tenant, "", 400, FIELD).at("id"),
        c("revoke session of missing vm", DELETE, format!("{vm}/console-sessions/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("revoke bad session id", DELETE, format!("{vm}/console-sessions/s1"), Tenant, "", 400, FIELD).at("id"),
        c("staff lists console sessions", GET, format!("{vm}/console-sessions"), Admin, "", 403, DENIED),
    ]
}

/// Networks (CIDRs), VM interfaces (addresses), volumes (sizes, attachments)
/// and the quota's disk limit.
#[rustfmt::skip]
fn networks_volumes(fx: &Fx) -> Vec<Case> {
    let net = |cidr: &str| format!(r#"{{"name":"lan","cluster_id":"{GHOST}","cidr":"{cidr}"}}"#);
    let vol = |fields: &str| format!(r#"{{"name":"data","cluster_id":"{GHOST}"{fields}}}"#);
    let t = &fx.tenant;
    vec![
        c("network cidr without prefix", POST, "/v1/networks", Tenant, net("10.0.0.0"), 400, "invalid_field").at("cidr"),
        c("network cidr /15", POST, "/v1/networks", Tenant, net("10.0.0.0/15"), 400, "invalid_field").at("cidr"),
        c("network cidr /30", POST, "/v1/networks", Tenant, net("10.0.0.0/30"), 400, "invalid_field").at("cidr"),
        c("network cidr host bits", POST, "/v1/networks", Tenant, net("10.0.0.1/24"), 400, "invalid_field").at("cidr"),
        c("network cidr ipv6", POST, "/v1/networks", Tenant, net("fd00::/64"), 400, "invalid_field").at("cidr"),
        c("network cidr octet 256", POST, "/v1/networks", Tenant, net("10.0.256.0/24"), 400, "invalid_field").at("cidr"),
        c("network cidr as number", POST, "/v1/networks", Tenant, format!(r#"{{"name":"lan","cluster_id":"{GHOST}","cidr":10}}"#), 400, FIELD).at("cidr"),
        c("network bad name", POST, "/v1/networks", Tenant, format!(r#"{{"name":"LAN","cluster_id":"{GHOST}","cidr":"10.0.0.0/24"}}"#), 400, FIELD).at("name"),
        c("network bidi description", POST, "/v1/networks", Tenant, format!(r#"{{"name":"lan","cluster_id":"{GHOST}","cidr":"10.0.0.0/24","description":"a\u202eb"}}"#), 400, FIELD).at("description"),
        c("network on a cluster without quota", POST, "/v1/networks", Tenant, net("10.0.0.0/24"), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("network at system scope", POST, "/v1/networks", Admin, net("10.0.0.0/24"), 403, DENIED),
        c("network changing its cidr", PATCH, format!("/v1/networks/{GHOST}"), Tenant, r#"{"cidr":"10.1.0.0/24"}"#, 400, FIELD).at("cidr"),
        c("patch missing network", PATCH, format!("/v1/networks/{GHOST}"), Tenant, r#"{"description":"x"}"#, 404, NOT_FOUND),
        c("network id not a uuid", GET, "/v1/networks/lan", Tenant, "", 400, FIELD).at("id"),
        c("delete missing network", DELETE, format!("/v1/networks/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("interface bad ip", POST, format!("/v1/vms/{GHOST}/interfaces"), Tenant, format!(r#"{{"network_id":"{GHOST}","ip":"10.0.0.300"}}"#), 400, FIELD).at("ip"),
        c("interface without network", POST, format!("/v1/vms/{GHOST}/interfaces"), Tenant, r#"{}"#, 400, FIELD).at("network_id"),
        c("interface of a missing vm", POST, format!("/v1/vms/{GHOST}/interfaces"), Tenant, format!(r#"{{"network_id":"{GHOST}"}}"#), 404, NOT_FOUND),
        c("interfaces of a missing vm", GET, format!("/v1/vms/{GHOST}/interfaces"), Tenant, "", 404, NOT_FOUND),
        c("detach interface bad id", DELETE, format!("/v1/vms/{GHOST}/interfaces/eth0"), Tenant, "", 400, FIELD).at("id"),
        c("detach interface of a missing vm", DELETE, format!("/v1/vms/{GHOST}/interfaces/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("volume zero size", POST, "/v1/volumes", Tenant, vol(r#","size_gib":0"#), 400, FIELD).at("size_gib"),
        c("volume size over 64 TiB", POST, "/v1/volumes", Tenant, vol(r#","size_gib":65537"#), 400, FIELD).at("size_gib"),
        c("volume size as text", POST, "/v1/volumes", Tenant, vol(r#","size_gib":"10""#), 400, FIELD).at("size_gib"),
        c("volume without size", POST, "/v1/volumes", Tenant, vol(""), 400, FIELD).at("size_gib"),
        c("volume naming its path", POST, "/v1/volumes", Tenant, vol(r#","size_gib":1,"path":"/etc/passwd""#), 400, FIELD).at("path"),
        c("volume on a cluster without quota", POST, "/v1/volumes", Tenant, vol(r#","size_gib":1"#), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("patch volume shrink to zero", PATCH, format!("/v1/volumes/{GHOST}"), Tenant, r#"{"size_gib":0}"#, 400, FIELD).at("size_gib"),
        c("patch missing volume", PATCH, format!("/v1/volumes/{GHOST}"), Tenant, r#"{"size_gib":2}"#, 404, NOT_FOUND),
        c("attach missing volume", POST, format!("/v1/volumes/{GHOST}/attach"), Tenant, format!(r#"{{"vm_id":"{GHOST}"}}"#), 404, NOT_FOUND),
        c("attach volume without vm", POST, format!("/v1/volumes/{GHOST}/attach"), Tenant, "{}", 400, FIELD).at("vm_id"),
        c("detach volume bad vm id", POST, format!("/v1/volumes/{GHOST}/detach"), Tenant, r#"{"vm_id":"web"}"#, 400, FIELD).at("vm_id"),
        c("volume id not a uuid", DELETE, "/v1/volumes/data", Tenant, "", 400, FIELD).at("id"),
        c("quota negative disk", POST, "/v1/quotas", Admin, format!(r#"{{"tenant_id":"{t}","cluster_id":"{GHOST}","vcpus":1,"memory_mib":1,"max_vms":1,"disk_gib":-1}}"#), 400, FIELD).at("disk_gib"),
        c("quota disk as text", PATCH, format!("/v1/quotas/{GHOST}"), Admin, r#"{"disk_gib":"10"}"#, 400, FIELD).at("disk_gib"),
    ]
}

/// Public IP pools (CIDRs, gateways) and floating IPs (addresses, references,
/// attachments) (perm-g).
#[rustfmt::skip]
fn floating_ips(_fx: &Fx) -> Vec<Case> {
    let pool = |fields: &str| format!(r#"{{"name":"public","cluster_id":"{GHOST}"{fields}}}"#);
    let fip = |fields: &str| format!(r#"{{"cluster_id":"{GHOST}"{fields}}}"#);
    vec![
        c("pool without cidr", POST, "/v1/ip-pools", Admin, pool(""), 400, FIELD).at("cidr"),
        c("pool cidr /19", POST, "/v1/ip-pools", Admin, pool(r#","cidr":"203.0.96.0/19""#), 400, FIELD).at("cidr"),
        c("pool cidr /31", POST, "/v1/ip-pools", Admin, pool(r#","cidr":"203.0.113.0/31""#), 400, FIELD).at("cidr"),
        c("pool cidr host bits", POST, "/v1/ip-pools", Admin, pool(r#","cidr":"203.0.113.1/28""#), 400, FIELD).at("cidr"),
        c("pool cidr ipv6", POST, "/v1/ip-pools", Admin, pool(r#","cidr":"2001:db8::/64""#), 400, FIELD).at("cidr"),
        c("pool gateway outside", POST, "/v1/ip-pools", Admin, pool(r#","cidr":"203.0.113.0/28","gateway":"203.0.113.17""#), 400, FIELD).at("gateway"),
        c("pool gateway is the broadcast", POST, "/v1/ip-pools", Admin, pool(r#","cidr":"203.0.113.0/28","gateway":"203.0.113.15""#), 400, FIELD).at("gateway"),
        c("pool gateway not an address", POST, "/v1/ip-pools", Admin, pool(r#","cidr":"203.0.113.0/28","gateway":"gw""#), 400, FIELD).at("gateway"),
        c("pool bad name", POST, "/v1/ip-pools", Admin, format!(r#"{{"name":"Public","cluster_id":"{GHOST}","cidr":"203.0.113.0/28"}}"#), 400, FIELD).at("name"),
        c("pool on no cluster", POST, "/v1/ip-pools", Admin, pool(r#","cidr":"203.0.113.0/28""#), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("tenant creates a pool", POST, "/v1/ip-pools", Tenant, pool(r#","cidr":"203.0.113.0/28""#), 403, DENIED),
        c("tenant lists pools", GET, "/v1/ip-pools", Tenant, "", 403, DENIED),
        c("pool changing its cidr", PATCH, format!("/v1/ip-pools/{GHOST}"), Admin, r#"{"cidr":"203.0.113.0/29"}"#, 400, FIELD).at("cidr"),
        c("patch missing pool", PATCH, format!("/v1/ip-pools/{GHOST}"), Admin, r#"{"description":"x"}"#, 404, NOT_FOUND),
        c("delete missing pool", DELETE, format!("/v1/ip-pools/{GHOST}"), Admin, "", 404, NOT_FOUND),
        c("pool id not a uuid", GET, "/v1/ip-pools/public", Admin, "", 400, FIELD).at("id"),
        c("floating ip without cluster", POST, "/v1/floating-ips", Tenant, "{}", 400, FIELD).at("cluster_id"),
        c("floating ip bad address", POST, "/v1/floating-ips", Tenant, fip(r#","address":"203.0.113.300""#), 400, FIELD).at("address"),
        c("floating ip ipv6 address", POST, "/v1/floating-ips", Tenant, fip(r#","address":"2001:db8::1""#), 400, FIELD).at("address"),
        c("floating ip bad pool id", POST, "/v1/floating-ips", Tenant, fip(r#","ip_pool_id":"public""#), 400, FIELD).at("ip_pool_id"),
        c("floating ip bidi description", POST, "/v1/floating-ips", Tenant, fip(r#","description":"a\u202eb""#), 400, FIELD).at("description"),
        c("floating ip on a cluster without quota", POST, "/v1/floating-ips", Tenant, fip(""), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("floating ip at system scope", POST, "/v1/floating-ips", Admin, fip(""), 403, DENIED),
        c("floating ip changing its address", PATCH, format!("/v1/floating-ips/{GHOST}"), Tenant, r#"{"address":"203.0.113.9"}"#, 400, FIELD).at("address"),
        c("patch missing floating ip", PATCH, format!("/v1/floating-ips/{GHOST}"), Tenant, r#"{"description":"x"}"#, 404, NOT_FOUND),
        c("release missing floating ip", DELETE, format!("/v1/floating-ips/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("attach missing floating ip", POST, format!("/v1/floating-ips/{GHOST}/attach"), Tenant, format!(r#"{{"vm_id":"{GHOST}"}}"#), 404, NOT_FOUND),
        c("attach floating ip without vm", POST, format!("/v1/floating-ips/{GHOST}/attach"), Tenant, "{}", 400, FIELD).at("vm_id"),
        c("detach missing floating ip", POST, format!("/v1/floating-ips/{GHOST}/detach"), Tenant, "", 404, NOT_FOUND),
        c("floating ip id not a uuid", GET, "/v1/floating-ips/web", Tenant, "", 400, FIELD).at("id"),
    ]
}

/// Snapshot schedules (interval, retention, a VM of the tenant) and maintenance
/// windows (a window of at most a week, a title, a cluster; system scope).
#[rustfmt::skip]
fn schedules_maintenance(_: &Fx) -> Vec<Case> {
    let sched = |fields: &str| format!(r#"{{"vm_id":"{GHOST}","name":"hourly"{fields}}}"#);
    let schedule = format!("/v1/snapshot-schedules/{GHOST}");
    let win = |fields: &str| format!(r#"{{"cluster_id":"{GHOST}","title":"Upgrade","starts_at":"2026-12-24T22:00:00Z"{fields}}}"#);
    let window = format!("/v1/maintenance-windows/{GHOST}");
    vec![
        c("schedule interval 14", POST, "/v1/snapshot-schedules", Tenant, sched(r#","interval_minutes":14,"keep":1"#), 400, FIELD).at("interval_minutes"),
        c("schedule interval over a week", POST, "/v1/snapshot-schedules", Tenant, sched(r#","interval_minutes":10081,"keep":1"#), 400, FIELD).at("interval_minutes"),
        c("schedule interval as text", POST, "/v1/snapshot-schedules", Tenant, sched(r#","interval_minutes":"60","keep":1"#), 400, FIELD).at("interval_minutes"),
        c("schedule keep 0", POST, "/v1/snapshot-schedules", Tenant, sched(r#","interval_minutes":60,"keep":0"#), 400, FIELD).at("keep"),
        c("schedule keep 101", POST, "/v1/snapshot-schedules", Tenant, sched(r#","interval_minutes":60,"keep":101"#), 400, FIELD).at("keep"),
        c("schedule without keep", POST, "/v1/snapshot-schedules", Tenant, sched(r#","interval_minutes":60"#), 400, FIELD).at("keep"),
        c("schedule bad name", POST, "/v1/snapshot-schedules", Tenant, format!(r#"{{"vm_id":"{GHOST}","name":"Hourly!","interval_minutes":60,"keep":1}}"#), 400, FIELD).at("name"),
        c("schedule cron field", POST, "/v1/snapshot-schedules", Tenant, sched(r#","interval_minutes":60,"keep":1,"cron":"0 * * * *""#), 400, FIELD).at("cron"),
        c("schedule of a missing vm", POST, "/v1/snapshot-schedules", Tenant, sched(r#","interval_minutes":60,"keep":1"#), 422, UNPROCESSABLE_REF).at("vm_id"),
        c("schedule at system scope", POST, "/v1/snapshot-schedules", Admin, sched(r#","interval_minutes":60,"keep":1"#), 403, DENIED),
        c("patch schedule keep 0", PATCH, schedule.clone(), Tenant, r#"{"keep":0}"#, 400, FIELD).at("keep"),
        c("patch schedule enabled as text", PATCH, schedule.clone(), Tenant, r#"{"enabled":"yes"}"#, 400, FIELD).at("enabled"),
        c("patch missing schedule", PATCH, schedule.clone(), Tenant, r#"{"keep":2}"#, 404, NOT_FOUND),
        c("run missing schedule", POST, format!("{schedule}/run"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("run bad schedule id", POST, "/v1/snapshot-schedules/hourly/run", Tenant, "", 400, FIELD).at("id").content_type(None),
        c("schedules by bad vm id", GET, "/v1/snapshot-schedules?vm_id=web", Tenant, "", 400, QUERY),
        c("delete missing schedule", DELETE, schedule, Tenant, "", 404, NOT_FOUND),
        c("window ends when it starts", POST, "/v1/maintenance-windows", Admin, win(r#","ends_at":"2026-12-24T22:00:00Z""#), 400, FIELD).at("ends_at"),
        c("window over a week", POST, "/v1/maintenance-windows", Admin, win(r#","ends_at":"2027-01-01T22:00:01Z""#), 400, FIELD).at("ends_at"),
        c("window without end", POST, "/v1/maintenance-windows", Admin, win(""), 400, FIELD).at("ends_at"),
        c("window blank title", POST, "/v1/maintenance-windows", Admin, format!(r#"{{"cluster_id":"{GHOST}","title":" ","starts_at":"2026-12-24T22:00:00Z","ends_at":"2026-12-25T02:00:00Z"}}"#), 400, FIELD).at("title"),
        c("window bidi description", POST, "/v1/maintenance-windows", Admin, win(r#","ends_at":"2026-12-25T02:00:00Z","description":"a\u202eb""#), 400, FIELD).at("description"),
        c("window on a missing cluster", POST, "/v1/maintenance-windows", Admin, win(r#","ends_at":"2026-12-25T02:00:00Z""#), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("tenant announces a window", POST, "/v1/maintenance-windows", Tenant, win(r#","ends_at":"2026-12-25T02:00:00Z""#), 403, DENIED),
        c("patch window unknown state", PATCH, window.clone(), Admin, r#"{"state":"over"}"#, 400, FIELD).at("state"),
        c("patch missing window", PATCH, window.clone(), Admin, r#"{"state":"cancelled"}"#, 404, NOT_FOUND),
        c("tenant deletes a window", DELETE, window, Tenant, "", 403, DENIED),
        c("window id not a uuid", GET, "/v1/maintenance-windows/w1", Tenant, "", 400, FIELD).at("id"),
    ]
}

/// Security groups (perm-f): names, rules (direction, protocol, ports, remote
/// CIDR), VM membership.
#[rustfmt::skip]
fn security_groups(_: &Fx) -> Vec<Case> {
    let rules = format!("/v1/security-groups/{GHOST}/rules");
    let rule = |fields: &str| format!(r#"{{"direction":"ingress","protocol":"tcp","remote_cidr":"0.0.0.0/0"{fields}}}"#);
    let cidr = |c: &str| format!(r#"{{"direction":"ingress","protocol":"tcp","remote_cidr":"{c}"}}"#);
    let members = format!("/v1/vms/{GHOST}/security-groups");
    vec![
        c("security group bad name", POST, "/v1/security-groups", Tenant, format!(r#"{{"name":"Web","cluster_id":"{GHOST}"}}"#), 400, FIELD).at("name"),
        c("security group bidi description", POST, "/v1/security-groups", Tenant, format!(r#"{{"name":"web","cluster_id":"{GHOST}","description":"a\u202eb"}}"#), 400, FIELD).at("description"),
        c("security group without cluster", POST, "/v1/security-groups", Tenant, r#"{"name":"web"}"#, 400, FIELD).at("cluster_id"),
        c("security group on a cluster without quota", POST, "/v1/security-groups", Tenant, format!(r#"{{"name":"web","cluster_id":"{GHOST}"}}"#), 422, UNPROCESSABLE_REF).at("cluster_id"),
        c("security group at system scope", POST, "/v1/security-groups", Admin, format!(r#"{{"name":"web","cluster_id":"{GHOST}"}}"#), 403, DENIED),
        c("security group changing its cluster", PATCH, format!("/v1/security-groups/{GHOST}"), Tenant, format!(r#"{{"cluster_id":"{GHOST}"}}"#), 400, FIELD).at("cluster_id"),
        c("patch missing security group", PATCH, format!("/v1/security-groups/{GHOST}"), Tenant, r#"{"description":"x"}"#, 404, NOT_FOUND),
        c("security group id not a uuid", GET, "/v1/security-groups/web", Tenant, "", 400, FIELD).at("id"),
        c("delete missing security group", DELETE, format!("/v1/security-groups/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("rule of a missing group", POST, rules.clone(), Tenant, rule(""), 404, NOT_FOUND),
        c("rules of a missing group", GET, rules.clone(), Tenant, "", 404, NOT_FOUND),
        c("rule port 0", POST, rules.clone(), Tenant, rule(r#","port_from":0"#), 400, FIELD).at("port_from"),
        c("rule port 65536", POST, rules.clone(), Tenant, rule(r#","port_from":1,"port_to":65536"#), 400, FIELD).at("port_to"),
        c("rule ports reversed", POST, rules.clone(), Tenant, rule(r#","port_from":443,"port_to":80"#), 400, FIELD).at("port_to"),
        c("rule port_to alone", POST, rules.clone(), Tenant, rule(r#","port_to":80"#), 400, FIELD).at("port_from"),
        c("rule port as text", POST, rules.clone(), Tenant, rule(r#","port_from":"22""#), 400, FIELD).at("port_from"),
        c("icmp rule with a port", POST, rules.clone(), Tenant, r#"{"direction":"ingress","protocol":"icmp","port_from":8,"remote_cidr":"0.0.0.0/0"}"#, 400, FIELD).at("port_from"),
        c("rule cidr host bits", POST, rules.clone(), Tenant, cidr("10.0.0.1/8"), 400, FIELD).at("remote_cidr"),
        c("rule cidr ipv6 /129", POST, rules.clone(), Tenant, cidr("2001:db8::/129"), 400, FIELD).at("remote_cidr"),
        c("rule cidr ipv4 /33", POST, rules.clone(), Tenant, cidr("10.0.0.0/33"), 400, FIELD).at("remote_cidr"),
        c("rule cidr garbage", POST, rules.clone(), Tenant, cidr("anywhere"), 400, FIELD).at("remote_cidr"),
        c("rule without cidr", POST, rules.clone(), Tenant, r#"{"direction":"ingress","protocol":"tcp"}"#, 400, FIELD).at("remote_cidr"),
        c("rule bad direction", POST, rules.clone(), Tenant, r#"{"direction":"in","protocol":"tcp","remote_cidr":"0.0.0.0/0"}"#, 400, FIELD).at("direction"),
        c("rule bad protocol", POST, rules.clone(), Tenant, r#"{"direction":"ingress","protocol":"sctp","remote_cidr":"0.0.0.0/0"}"#, 400, FIELD).at("protocol"),
        c("rule with a deny action", POST, rules.clone(), Tenant, rule(r#","action":"deny""#), 400, FIELD).at("action"),
        c("rule bidi description", POST, rules.clone(), Tenant, rule(r#","description":"a\u202eb""#), 400, FIELD).at("description"),
        c("delete rule bad id", DELETE, format!("/v1/security-groups/{GHOST}/rules/ssh"), Tenant, "", 400, FIELD).at("id"),
        c("delete rule of a missing group", DELETE, format!("/v1/security-groups/{GHOST}/rules/{GHOST}"), Tenant, "", 404, NOT_FOUND),
        c("attach group to a missing vm", POST, members.clone(), Tenant, format!(r#"{{"security_group_id":"{GHOST}"}}"#), 404, NOT_FOUND),
        c("attach without a group", POST, members.clone(), Tenant, "{}", 400, FIELD).at("security_group_id"),
        c("attach group id not a uuid", POST, members.clone(), Tenant, r#"{"security_group_id":"web"}"#, 400, FIELD).at("security_group_id"),
        c("groups of a missing vm", GET, members.clone(), Tenant, "", 404, NOT_FOUND),
        c("detach group bad id", DELETE, format!("{members}/web"), Tenant, "", 400, FIELD).at("id"),
        c("detach group of a missing vm", DELETE, format!("{members}/{GHOST}"), Tenant, "", 404, NOT_FOUND),
    ]
}

/// Webhooks: a public http(s) URL, 1–50 audit action patterns, a description;
/// deliveries of an existing webhook. (perm-h)
#[rustfmt::skip]
fn webhooks(_fx: &Fx) -> Vec<Case> {
    let hook = |url: &str, events: &str| format!(r#"{{"url":"{url}","events":{events}}}"#);
    let ok = r#"["vm.*"]"#;
    let w = format!("/v1/webhooks/{GHOST}");
    vec![
        c("webhook without url", POST, "/v1/webhooks", Tenant, r#"{"events":["vm.*"]}"#, 400, FIELD).at("url"),
        c("webhook without events", POST, "/v1/webhooks", Tenant, r#"{"url":"http://example.com/"}"#, 400, FIELD).at("events"),
        c("webhook url not a url", POST, "/v1/webhooks", Tenant, hook("example", ok), 400, FIELD).at("url"),
        c("webhook ftp url", POST, "/v1/webhooks", Tenant, hook("ftp://example.com/x", ok), 400, FIELD).at("url"),
        c("webhook file url", POST, "/v1/webhooks", Tenant, hook("file:///etc/passwd", ok), 400, FIELD).at("url"),
        c("webhook url of 2049", POST, "/v1/webhooks", Tenant, hook(&format!("http://example.com/{}", rep("a", 2030)), ok), 400, FIELD).at("url"),
        c("webhook url as number", POST, "/v1/webhooks", Tenant, r#"{"url":1,"events":["vm.*"]}"#, 400, FIELD).at("url"),
        c("webhook to loopback", POST, "/v1/webhooks", Tenant, hook("http://127.0.0.1:8080/hook", ok), 422, "url_not_allowed").at("url"),
        c("webhook to private", POST, "/v1/webhooks", Tenant, hook("http://10.0.0.1/hook", ok), 422, "url_not_allowed").at("url"),
        c("webhook to metadata", POST, "/v1/webhooks", Tenant, hook("http://169.254.169.254/latest/meta-data/", ok), 422, "url_not_allowed").at("url"),
        c("webhook to ipv6 loopback", POST, "/v1/webhooks", Tenant, hook("http://[::1]/hook", ok), 422, "url_not_allowed").at("url"),
        c("webhook to mapped loopback", POST, "/v1/webhooks", Tenant, hook("http://[::ffff:127.0.0.1]/hook", ok), 422, "url_not_allowed").at("url"),
        c("webhook to localhost", POST, "/v1/webhooks", Tenant, hook("http://localhost:9/hook", ok), 422, "url_not_allowed").at("url"),
        c("webhook to unspecified", POST, "/v1/webhooks", Tenant, hook("http://0.0.0.0/hook", ok), 422, "url_not_allowed").at("url"),
        c("webhook no events", POST, "/v1/webhooks", Tenant, hook("http://example.com/", "[]"), 400, FIELD).at("events"),
        c("webhook 51 events", POST, "/v1/webhooks", Tenant, hook("http://example.com/", &array_of("vm.*", 51)), 400, FIELD).at("events"),
        c("webhook pattern with inner star", POST, "/v1/webhooks", Tenant, hook("http://example.com/", r#"["vm*"]"#), 400, FIELD).at("events"),
        c("webhook pattern star first", POST, "/v1/webhooks", Tenant, hook("http://example.com/", r#"["*.create"]"#), 400, FIELD).at("events"),
        c("webhook pattern empty segment", POST, "/v1/webhooks", Tenant, hook("http://example.com/", r#"["vm..create"]"#), 400, FIELD).at("events"),
        c("webhook pattern upper case", POST, "/v1/webhooks", Tenant, hook("http://example.com/", r#"["VM.create"]"#), 400, FIELD).at("events"),
        c("webhook pattern blank", POST, "/v1/webhooks", Tenant, hook("http://example.com/", r#"[""]"#), 400, FIELD).at("events"),
        c("webhook events as string", POST, "/v1/webhooks", Tenant, hook("http://example.com/", r#""vm.*""#), 400, FIELD).at("events"),
        c("webhook bidi description", POST, "/v1/webhooks", Tenant, r#"{"url":"http://example.com/","events":["*"],"description":"a\u202eb"}"#, 400, FIELD).at("description"),
        c("webhook enabled as text", POST, "/v1/webhooks", Tenant, r#"{"url":"http://example.com/","events":["*"],"enabled":"yes"}"#, 400, FIELD).at("enabled"),
        c("webhook naming its secret", POST, "/v1/webhooks", Tenant, r#"{"url":"http://example.com/","events":["*"],"secret":"mine"}"#, 400, FIELD).at("secret"),
        c("webhook at system scope", POST, "/v1/webhooks", Admin, hook("http://example.com/", ok), 403, DENIED),
        c("webhooks limit 0", GET, "/v1/webhooks?limit=0", Tenant, "", 400, FIELD).at("limit"),
        c("webhook id not a uuid", GET, "/v1/webhooks/hook", Tenant, "", 400, FIELD).at("id"),
        c("missing webhook", GET, w.clone(), Tenant, "", 404, NOT_FOUND),
        c("patch webhook to metadata", PATCH, w.clone(), Tenant, r#"{"url":"http://169.254.169.254/"}"#, 422, "url_not_allowed").at("url"),
        c("patch webhook bad pattern", PATCH, w.clone(), Tenant, r#"{"events":["vm.*.create"]}"#, 400, FIELD).at("events"),
        c("patch missing webhook", PATCH, w.clone(), Tenant, r#"{"enabled":false}"#, 404, NOT_FOUND),
        c("delete missing webhook", DELETE, w.clone(), Tenant, "", 404, NOT_FOUND),
        c("rotate missing webhook", POST, format!("{w}/rotate-secret"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("test missing webhook", POST, format!("{w}/test"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("deliveries of missing webhook", GET, format!("{w}/deliveries"), Tenant, "", 404, NOT_FOUND),
        c("deliveries bad cursor", GET, format!("{w}/deliveries?cursor=zzz"), Tenant, "", 400, FIELD).at("cursor"),
        c("redeliver bad delivery id", POST, format!("{w}/deliveries/d1/redeliver"), Tenant, "", 400, FIELD).at("id").content_type(None),
        c("redeliver of missing webhook", POST, format!("{w}/deliveries/{GHOST}/redeliver"), Tenant, "", 404, NOT_FOUND).content_type(None),
        c("staff lists webhooks", GET, "/v1/webhooks", Admin, "", 403, DENIED),
    ]
}

/// Every family, in order.
fn corpus(fx: &Fx) -> Vec<(&'static str, Vec<Case>)> {
    vec![
        ("bodies, routes and methods", bodies(fx)),
        ("auth: credentials, login, switch-tenant", auth(fx)),
        ("tenants and region entitlements", tenants(fx)),
        ("users, tokens, permissions, audit", identities(fx)),
        ("roles, role bindings, authz/check", rbac(fx)),
        ("regions, clusters and hosts, quotas", capacity(fx)),
        ("templates", templates(fx)),
        ("vms, snapshots, operations, console", compute(fx)),
        ("invitations, tenant policy, service accounts, unlock, export", identity_depth(fx)),
        ("vm depth: updates, protection, metrics, rebuild, clone, placement groups", vm_depth(fx)),
        ("provider operations", provider_ops(fx)),
        ("networks, interfaces, volumes", networks_volumes(fx)),
        // Public IP pools and floating IPs (perm-g).
        ("ip pools, floating ips", floating_ips(fx)),
        // Snapshot schedules and maintenance windows (perm-e).
        ("snapshot schedules, maintenance windows", schedules_maintenance(fx)),
        // Security groups (perm-f).
        ("security groups, rules, memberships", security_groups(fx)),
        // webhooks (perm-h)
        ("webhooks and deliveries", webhooks(fx)),
    ]
}

#[tokio::test]
async fn the_bad_input_corpus_gets_clear_4xx_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, user, t) = app.tenant_with_user("alpha").await;
    let admin = app.admin_jwt().await;
    let tenant_token = t.token().unwrap().to_string();
    let builtin_role = basalt_server::authz::builtin_role_named("tenant-admin").unwrap().id.to_string();
    let fx = Fx { user: user.id.to_string(), tenant: tenant.id.to_string(), builtin_role };
    let families = corpus(&fx);
    let cases: Vec<&Case> = families.iter().flat_map(|(_, cases)| cases).collect();
    assert!(cases.len() >= 120, "the corpus has {} cases", cases.len());

    let mut conn = app.db.admin().await;
    let tables_but_audit =
        // Security bookkeeping is expected to grow (checked below): denials are
        // audited and failed logins are counted.
        |f: Vec<(String, i64, String)>| {
            f.into_iter().filter(|(t, _, _)| t != "audit_events" && t != "login_failures").collect::<Vec<_>>()
        };
    let before = tables_but_audit(common::db_fingerprint(&mut conn).await);
    let (audit_before,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_events WHERE outcome <> 'denied'")
        .fetch_one(&mut conn)
        .await
        .unwrap();

    let http = app.http();
    let mut failures = Vec::new();
    for c in &cases {
        let mut req = http.request(c.method.clone(), format!("{}{}", app.endpoint, c.path)).body(c.body.clone());
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        for (name, value) in &c.headers {
            req = req.header(*name, HeaderValue::from_bytes(value).expect(c.name));
        }
        req = match c.who {
            As::Nobody => req,
            As::Admin => req.bearer_auth(&admin),
            As::Tenant => req.bearer_auth(&tenant_token),
            As::Raw(h) => req.header(
                "authorization",
                if h.starts_with("Bearer") || h.starts_with("Basic") { h.to_string() } else { format!("Bearer {h}") },
            ),
        };
        let resp = req.send().await.expect(c.name);
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or("");
        let message = body["error"]["message"].as_str().unwrap_or("");
        let field = body["error"]["details"]["field"].as_str();
        if status != c.status || code != c.code || message.is_empty() || (c.field.is_some() && field != c.field) {
            let message: String = message.chars().take(300).collect();
            failures.push(format!(
                "{}: got {status} {code} {field:?} {message:?}, want {} {} {:?}",
                c.name, c.status, c.code, c.field
            ));
        }
    }
    let after = tables_but_audit(common::db_fingerprint(&mut conn).await);
    let (audit_after,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_events WHERE outcome <> 'denied'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let (failed_logins,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM login_failures").fetch_one(&mut conn).await.unwrap();
    let (denied,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_events WHERE outcome = 'denied'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    app.stop().await;
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_eq!(before, after, "bad input changed the database");
    assert_eq!(audit_before, audit_after, "bad input wrote audit events other than denials");
    let refusals = cases.iter().filter(|c| c.code == DENIED).count() as i64;
    assert_eq!(denied, refusals, "every permission refusal is audited");
    // The wrong password, and the unknown tenant: counted alike, so the login
    // throttle never tells an existing tenant from a missing one.
    assert_eq!(failed_logins, 2, "the wrong password and the unknown tenant are counted");
    let by_family: Vec<String> = families.iter().map(|(f, cases)| format!("{f}: {}", cases.len())).collect();
    println!(
        "bad input corpus: {} cases, every one a clear 4xx, nothing changed\n  {}",
        cases.len(),
        by_family.join("\n  ")
    );
}
