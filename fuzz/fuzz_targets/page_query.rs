//! Query strings (`extract::decode_query`, strict: unknown parameters refused)
//! for the list queries, and list cursors (`PageQuery::params`). Never panics;
//! every refusal is a 400 `invalid_query`, or `invalid_field` naming `limit`,
//! `cursor` or a filter; an accepted page asks for 1 to 500 items; a cursor the
//! server made decodes to the id it was made from.
#![no_main]

use basalt_server::api::extract::{decode_query, encode_cursor, PageQuery, MAX_LIMIT};
use basalt_server::error::ApiError;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

fn refusal_is_clear(e: &ApiError) {
    assert_eq!(e.status().as_u16(), 400, "{e:?}");
    let body = e.body();
    match body.error.code.as_str() {
        "invalid_query" => {}
        "invalid_field" => assert!(body.error.details["field"].is_string(), "{e:?}"),
        other => panic!("unexpected code {other}: {e:?}"),
    }
}

fn query<T: DeserializeOwned>(q: &str) -> Option<T> {
    decode_query::<T>(q).inspect_err(refusal_is_clear).ok()
}

fn page(limit: Option<i64>, cursor: Option<String>) {
    match (PageQuery { limit, cursor }).params() {
        Ok(p) => assert!((1..=MAX_LIMIT).contains(&p.limit)),
        Err(e) => refusal_is_clear(&e),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 8 {
        // A cursor of any bytes (as a query parameter would decode them).
        0 => page(None, Some(String::from_utf8_lossy(rest).into_owned())),
        // A cursor made by the server, from any id, decodes to that id.
        1 => {
            let Ok(bytes) = <[u8; 16]>::try_from(rest) else { return };
            let id = uuid::Uuid::from_bytes(bytes);
            let p = (PageQuery { limit: None, cursor: Some(encode_cursor(id)) }).params().expect("own cursor");
            assert_eq!(p.after, Some(id));
        }
        _ => {
            let Ok(q) = std::str::from_utf8(rest) else { return };
            match which % 8 {
                2 => {
                    if let Some(q) = query::<PageQuery>(q) {
                        page(q.limit, q.cursor);
                    }
                }
                3 => {
                    if let Some(q) = query::<basalt_server::api::tenants::TenantQuery>(q) {
                        page(q.limit, q.cursor);
                    }
                }
                4 => {
                    if let Some(q) = query::<basalt_server::api::quotas::QuotaQuery>(q) {
                        page(q.limit, q.cursor);
                    }
                }
                5 => drop(query::<basalt_server::api::permissions::PermissionQuery>(q)),
                6 => drop(query::<basalt_server::api::regions::DeregisterQuery>(q)),
                _ => drop(query::<basalt_server::api::console::TicketQuery>(q)),
            }
        }
    }
});
