//! The committed registry documentation (`provider/docs`) is what the provider's
//! schemas and `examples/` produce today, and every type has its examples.

use std::path::Path;

use terraform_provider_basalt::docs;
use terraform_provider_basalt::provider::registry;

#[test]
fn every_resource_and_data_source_has_its_examples() {
    let examples = docs::default_examples_dir();
    let missing = docs::missing_examples(&registry(), &examples);
    assert!(
        missing.is_empty(),
        "missing example files under {}:\n  {}\n(a resource needs resources/<type>/resource.tf and import.sh, \
         a data source data-sources/<type>/data-source.tf)",
        examples.display(),
        missing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn committed_docs_are_up_to_date() {
    let pages = docs::render(&registry(), &docs::default_examples_dir()).unwrap_or_else(|e| panic!("{e}"));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let diffs = docs::differences(&pages, &out).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        diffs.is_empty(),
        "provider/docs is out of date with the schemas and examples/; regenerate it with `{}`:\n  {}",
        docs::REGENERATE,
        diffs.join("\n  ")
    );
}

#[test]
fn rendering_is_deterministic() {
    let examples = docs::default_examples_dir();
    let render = || docs::render(&registry(), &examples).unwrap_or_else(|e| panic!("{e}"));
    let (first, second) = (render(), render());
    assert_eq!(first, second);
    // One page per type, plus the index.
    let r = registry();
    assert_eq!(first.len(), 1 + r.resources.len() + r.data_sources.len());
}
