//! Shared by the two provider targets: the schemas of every resource, data
//! source and the provider block, and the checks a decoded value must pass.

use std::sync::OnceLock;

use terraform_provider_basalt::codec;
use terraform_provider_basalt::framework::Obj;
use terraform_provider_basalt::value::{Type, Value};

/// Each schema's object type and the names of its attributes.
pub fn schemas() -> &'static [(Type, Vec<&'static str>)] {
    static SCHEMAS: OnceLock<Vec<(Type, Vec<&'static str>)>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let registry = terraform_provider_basalt::provider::registry();
        let mut all = vec![registry.provider_schema.clone()];
        all.extend(registry.resources.values().map(|r| r.schema()));
        all.extend(registry.data_sources.values().map(|d| d.schema()));
        all.iter().map(|s| (s.object_type(), s.attributes.iter().map(|a| a.name).collect())).collect()
    })
}

/// A decoded value is what the provider then works with: it is an object (or
/// null), it encodes again (plain and with refined unknowns), and its encoding
/// is stable (decoding and encoding it again gives the same bytes).
pub fn accept(v: Value, ty: &Type, attributes: &[&str]) {
    let encoded = codec::encode(&v, ty).expect("a decoded value encodes");
    codec::encode_refined(&v, ty, attributes).expect("a decoded value encodes with refinements");
    let again = codec::decode(&encoded, ty).expect("an encoded value decodes");
    assert_eq!(codec::encode(&again, ty).expect("encodes"), encoded, "the encoding is not stable");
    let _ = Obj::from_value(v);
}
