//! The JSON form of a `DynamicValue` (state upgrade, `codec::decode_json`)
//! against the same schemas as `tf_msgpack`. Never panics; what decodes
//! encodes as msgpack, stably.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "tf_common.rs"]
mod tf_common;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    let schemas = tf_common::schemas();
    let (ty, attributes) = &schemas[usize::from(which) % schemas.len()];
    if let Ok(v) = terraform_provider_basalt::codec::decode_json(bytes, ty) {
        tf_common::accept(v, ty, attributes);
    }
});
