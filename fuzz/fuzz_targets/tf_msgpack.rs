//! The tfplugin6 `DynamicValue` decoder (msgpack, `codec::decode`) against the
//! schemas of every resource, data source and the provider block: the first
//! byte picks the schema, the rest is the value. Never panics; what decodes
//! encodes again, stably.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "tf_common.rs"]
mod tf_common;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    let schemas = tf_common::schemas();
    let (ty, attributes) = &schemas[usize::from(which) % schemas.len()];
    if let Ok(v) = terraform_provider_basalt::codec::decode(bytes, ty) {
        tf_common::accept(v, ty, attributes);
    }
});
