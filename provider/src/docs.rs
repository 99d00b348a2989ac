//! Registry documentation, generated from the provider itself: the same
//! [`Schema`]s that `GetProviderSchema` serves (descriptions, attribute modes,
//! types, sensitivity, defaults, replacement, nested blocks) plus the examples
//! under `examples/`, in the Terraform registry's layout and tfplugindocs'
//! conventions:
//!
//! ```text
//! docs/index.md                      provider: examples/provider/provider.tf
//! docs/resources/<name>.md           examples/resources/<type>/resource.tf, import.sh
//! docs/data-sources/<name>.md        examples/data-sources/<type>/data-source.tf
//! ```
//!
//! `<name>` is the type without the `basalt_` prefix. Rendering is pure and
//! deterministic (types and attributes in name order), so a test can compare
//! the committed pages with a fresh rendering ([`differences`]).
//! `terraform-provider-basalt docs` ([`REGENERATE`]) writes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::framework::schema::{Attribute, Block, Mode, PlanModifier, Schema};
use crate::framework::Registry;
use crate::provider;
use crate::value::{Number, Type, Value};

/// The command that regenerates the committed pages.
pub const REGENERATE: &str = "cargo run -p terraform-provider-basalt -- docs";

/// The provider's local name, the prefix of every type name.
const PROVIDER: &str = "basalt";

/// The crate's `docs/` directory (where the registry looks for them), as built.
pub fn default_out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

/// The repository's `examples/` directory, as built.
pub fn default_examples_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).join("examples")
}

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("missing example {0}: every resource needs resource.tf and import.sh, every data source data-source.tf, the provider provider.tf")]
    MissingExample(PathBuf),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DocsError + '_ {
    move |err| DocsError::Io { path: path.to_path_buf(), err }
}

/// What a page documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Resource,
    DataSource,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Resource => "Resource",
            Kind::DataSource => "Data Source",
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Kind::Resource => "resources",
            Kind::DataSource => "data-sources",
        }
    }
}

/// The example files a type's page embeds, relative to the examples directory,
/// each with whether the page needs it. Every resource is importable (the
/// framework's `import`), so it needs `import.sh` too.
pub fn example_files(kind: Kind, type_name: &str) -> Vec<PathBuf> {
    let dir = Path::new(kind.dir()).join(type_name);
    match kind {
        Kind::Resource => vec![dir.join("resource.tf"), dir.join("import.sh")],
        Kind::DataSource => vec![dir.join("data-source.tf")],
    }
}

/// The provider page's example, relative to the examples directory.
pub fn provider_example() -> PathBuf {
    Path::new("provider").join("provider.tf")
}

/// Every example file the registry's pages need that `examples` lacks, as
/// paths relative to it (provider first, then resources and data sources by name).
pub fn missing_examples(registry: &Registry, examples: &Path) -> Vec<PathBuf> {
    let needed = std::iter::once(provider_example())
        .chain(registry.resources.keys().flat_map(|n| example_files(Kind::Resource, n)))
        .chain(registry.data_sources.keys().flat_map(|n| example_files(Kind::DataSource, n)));
    needed.filter(|p| !examples.join(p).is_file()).collect()
}

/// The page path (relative to the docs directory, `/`-separated) for a type.
pub fn page_path(kind: Kind, type_name: &str) -> String {
    let short = type_name.strip_prefix(&format!("{PROVIDER}_")).unwrap_or(type_name);
    format!("{}/{short}.md", kind.dir())
}

/// The registry's navigation groups.
fn subcategory(type_name: &str) -> &'static str {
    match type_name {
        "basalt_tenant"
        | "basalt_user"
        | "basalt_role"
        | "basalt_role_binding"
        | "basalt_current_user"
        | "basalt_permissions" => "Tenants and Access",
        "basalt_region" | "basalt_regions" | "basalt_cluster" | "basalt_tenant_quota" => "Infrastructure",
        "basalt_template" | "basalt_vm" | "basalt_vm_snapshot" => "Compute",
        _ => "",
    }
}

/// Every page: relative path (`index.md`, `resources/role.md`, ...) to its text.
pub fn render(registry: &Registry, examples: &Path) -> Result<BTreeMap<String, String>, DocsError> {
    let read = |rel: &Path| {
        let path = examples.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DocsError::MissingExample(path)),
            Err(err) => Err(DocsError::Io { path, err }),
        }
    };
    let mut pages = BTreeMap::new();
    pages.insert("index.md".to_string(), index_page(&registry.provider_schema, &read(&provider_example())?));
    for (name, res) in &registry.resources {
        let files = example_files(Kind::Resource, name);
        let (example, import) = (read(&files[0])?, read(&files[1])?);
        let page = type_page(Kind::Resource, name, &res.schema(), &example, Some(&import));
        pages.insert(page_path(Kind::Resource, name), page);
    }
    for (name, ds) in &registry.data_sources {
        let example = read(&example_files(Kind::DataSource, name)[0])?;
        pages
            .insert(page_path(Kind::DataSource, name), type_page(Kind::DataSource, name, &ds.schema(), &example, None));
    }
    Ok(pages)
}

/// Writes `pages` under `out` and removes pages of types that no longer exist
/// (other `.md` files in `resources/` and `data-sources/`). Returns the removed
/// paths, relative to `out`.
pub fn write(pages: &BTreeMap<String, String>, out: &Path) -> Result<Vec<String>, DocsError> {
    for (rel, text) in pages {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        std::fs::write(&path, text).map_err(io_error(&path))?;
    }
    let stale: Vec<String> = existing_pages(out)?.into_iter().filter(|rel| !pages.contains_key(rel)).collect();
    for rel in &stale {
        let path = out.join(rel);
        std::fs::remove_file(&path).map_err(io_error(&path))?;
    }
    Ok(stale)
}

/// The generated-looking pages under `out`: `index.md` and the `.md` files of
/// `resources/` and `data-sources/`, relative and `/`-separated, sorted.
fn existing_pages(out: &Path) -> Result<Vec<String>, DocsError> {
    let mut found = Vec::new();
    if out.join("index.md").is_file() {
        found.push("index.md".to_string());
    }
    for kind in [Kind::Resource, Kind::DataSource] {
        let dir = out.join(kind.dir());
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(DocsError::Io { path: dir, err }),
        };
        for entry in entries {
            let name = entry.map_err(io_error(&dir))?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".md") {
                found.push(format!("{}/{name}", kind.dir()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// How the pages under `out` differ from `pages`: one line per page that is
/// missing, different or left over. Empty when they are up to date.
pub fn differences(pages: &BTreeMap<String, String>, out: &Path) -> Result<Vec<String>, DocsError> {
    let mut diffs = Vec::new();
    for (rel, text) in pages {
        let path = out.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(on_disk) if on_disk == *text => {}
            Ok(on_disk) => diffs.push(format!("{rel}: differs{}", first_difference(&on_disk, text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => diffs.push(format!("{rel}: missing")),
            Err(err) => return Err(DocsError::Io { path, err }),
        }
    }
    for rel in existing_pages(out)? {
        if !pages.contains_key(&rel) {
            diffs.push(format!("{rel}: no such resource or data source any more"));
        }
    }
    Ok(diffs)
}

fn first_difference(old: &str, new: &str) -> String {
    let mut old_lines = old.lines();
    for (i, line) in new.lines().enumerate() {
        match old_lines.next() {
            Some(o) if o == line => continue,
            Some(o) => return format!(" at line {}:\n    committed: {o}\n    generated: {line}", i + 1),
            None => return format!(" at line {}: the committed page ends early", i + 1),
        }
    }
    " (the committed page has extra lines at the end)".to_string()
}

// ---- pages ----

/// YAML front matter; `description` as a block scalar (descriptions hold
/// backticks and colons).
fn front_matter(page_title: &str, subcategory: &str, description: &str) -> String {
    let mut s = String::from("---\n");
    let _ = writeln!(s, "# generated by `{REGENERATE}` from the provider's schema and examples/; do not edit");
    let _ = writeln!(s, "page_title: {page_title:?}");
    let _ = writeln!(s, "subcategory: {subcategory:?}");
    s.push_str("description: |-\n");
    for line in description.lines() {
        let _ = writeln!(s, "  {line}");
    }
    s.push_str("---\n\n");
    s
}

fn code_block(lang: &str, text: &str) -> String {
    format!("```{lang}\n{}\n```\n", text.trim_end())
}

fn index_page(schema: &Schema, example: &str) -> String {
    let mut s = front_matter(&format!("{PROVIDER} Provider"), "", schema.description);
    let _ = writeln!(s, "# {PROVIDER} Provider\n");
    let _ = writeln!(s, "{}\n", schema.description);
    s.push_str("## Example Usage\n\n");
    s.push_str(&code_block("terraform", example));
    s.push_str("\n## Environment Variables\n\n");
    s.push_str(
        "Each argument may be left out of the provider block and set in the environment instead; \
         a value in the block wins, and an empty one counts as unset.\n\n",
    );
    s.push_str("| Argument | Environment variable |\n|---|---|\n");
    for (attr, env) in provider::ENVIRONMENT {
        let _ = writeln!(s, "| `{attr}` | `{env}` |");
    }
    s.push('\n');
    s.push_str(&schema_section(schema));
    s
}

fn type_page(kind: Kind, name: &str, schema: &Schema, example: &str, import: Option<&str>) -> String {
    let title = format!("{name} {} - terraform-provider-{PROVIDER}", kind.title());
    let mut s = front_matter(&title, subcategory(name), schema.description);
    let _ = writeln!(s, "# {name} ({})\n", kind.title());
    let _ = writeln!(s, "{}\n", schema.description);
    s.push_str("## Example Usage\n\n");
    s.push_str(&code_block("terraform", example));
    s.push('\n');
    s.push_str(&schema_section(schema));
    if let Some(import) = import {
        s.push_str("\n## Import\n\nImport is supported using the following syntax:\n\n");
        s.push_str(&code_block("shell", import));
    }
    s
}

// ---- the schema section ----

/// The registry's groups, in order: what the user must set, may set, and only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Required,
    Optional,
    ReadOnly,
}

impl Group {
    fn of(mode: Mode) -> Group {
        match mode {
            Mode::Required => Group::Required,
            Mode::Optional | Mode::OptionalComputed => Group::Optional,
            Mode::Computed => Group::ReadOnly,
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Group::Required => "Required",
            Group::Optional => "Optional",
            Group::ReadOnly => "Read-Only",
        }
    }
}

/// One line of a schema list and the nested schemas it links to.
struct Entry {
    name: String,
    group: Group,
    line: String,
}

/// A nested schema rendered below the top-level lists (`### Nested Schema for ...`).
struct Nested {
    anchor: String,
    title: String,
    entries: Vec<Entry>,
}

fn schema_section(schema: &Schema) -> String {
    let mut nested = Vec::new();
    let mut entries: Vec<Entry> = schema.attributes.iter().map(|a| attribute_entry(a, "", &mut nested)).collect();
    entries.extend(schema.blocks.iter().map(|b| block_entry(b, &mut nested)));
    let mut s = String::from("## Schema\n");
    for (group, lines) in grouped(entries) {
        let _ = write!(s, "\n### {}\n\n{lines}", group.heading());
    }
    for n in nested {
        let _ = write!(s, "\n<a id=\"{}\"></a>\n### Nested Schema for `{}`\n", n.anchor, n.title);
        for (group, lines) in grouped(n.entries) {
            let _ = write!(s, "\n{}:\n\n{lines}", group.heading());
        }
    }
    s
}

/// Entries by group, each group's lines sorted by name.
fn grouped(mut entries: Vec<Entry>) -> Vec<(Group, String)> {
    entries.sort_by(|a, b| (a.group, &a.name).cmp(&(b.group, &b.name)));
    let mut out: Vec<(Group, String)> = Vec::new();
    for e in entries {
        match out.last_mut() {
            Some((g, lines)) if *g == e.group => lines.push_str(&e.line),
            _ => out.push((e.group, e.line)),
        }
    }
    out
}

fn attribute_entry(a: &Attribute, parent: &str, nested: &mut Vec<Nested>) -> Entry {
    let mut text = a.description.to_string();
    if let Some(d) = &a.default {
        sentence(&mut text, &format!("Defaults to `{}`.", hcl(d)));
    }
    if a.has(PlanModifier::RequiresReplace) && !a.description.contains("replaces") {
        sentence(&mut text, "Changing it replaces the resource.");
    }
    entry(a.name, &a.ty, Group::of(a.mode), a.sensitive, text, parent, nested)
}

/// The line for attribute `name` under `parent` (a dotted path, empty at the
/// top), and the nested schema of its objects, if any.
fn entry(
    name: &str,
    ty: &Type,
    group: Group,
    sensitive: bool,
    mut text: String,
    parent: &str,
    nested: &mut Vec<Nested>,
) -> Entry {
    let path = if parent.is_empty() { name.to_string() } else { format!("{parent}.{name}") };
    let mut tags = type_label(ty);
    if sensitive {
        tags.push_str(", Sensitive");
    }
    if let Some(fields) = object_fields(ty) {
        let anchor = format!("nestedatt--{}", path.replace('.', "--"));
        sentence(&mut text, &format!("(see [below for nested schema](#{anchor}))"));
        // An object's attributes are set (or only read) as the whole object is.
        let mut inner = Vec::new();
        let entries = fields.iter().map(|(f, t)| entry(f, t, group, false, String::new(), &path, &mut inner)).collect();
        nested.push(Nested { anchor, title: path, entries });
        nested.extend(inner);
    }
    Entry { name: name.to_string(), group, line: item(name, &tags, &text) }
}

fn block_entry(b: &Block, nested: &mut Vec<Nested>) -> Entry {
    let anchor = format!("nestedblock--{}", b.name);
    let mut text = b.description.to_string();
    sentence(&mut text, &format!("(see [below for nested schema](#{anchor}))"));
    let mut inner = Vec::new();
    let entries = b.attributes.iter().map(|a| attribute_entry(a, b.name, &mut inner)).collect();
    nested.push(Nested { anchor, title: b.name.to_string(), entries });
    nested.extend(inner);
    // A single nested block may be left out: optional.
    Entry { name: b.name.to_string(), group: Group::Optional, line: item(b.name, "Block, Optional", &text) }
}

fn item(name: &str, tags: &str, text: &str) -> String {
    if text.is_empty() {
        format!("- `{name}` ({tags})\n")
    } else {
        format!("- `{name}` ({tags}) {text}\n")
    }
}

fn sentence(text: &mut String, more: &str) {
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(more);
}

/// The fields of an object type, or of the objects a collection holds.
fn object_fields(ty: &Type) -> Option<&BTreeMap<String, Type>> {
    match ty {
        Type::Object(fields) => Some(fields),
        Type::List(t) | Type::Set(t) | Type::Map(t) => object_fields(t),
        _ => None,
    }
}

/// tfplugindocs' names for types: `String`, `Number`, `Boolean`, `List of String`, `Set of Object`, ...
fn type_label(ty: &Type) -> String {
    match ty {
        Type::Bool => "Boolean".into(),
        Type::Number => "Number".into(),
        Type::String => "String".into(),
        Type::List(t) => format!("List of {}", type_label(t)),
        Type::Set(t) => format!("Set of {}", type_label(t)),
        Type::Map(t) => format!("Map of {}", type_label(t)),
        Type::Object(_) => "Object".into(),
    }
}

/// A value as it would be written in HCL.
fn hcl(v: &Value) -> String {
    match v {
        Value::Null | Value::Unknown => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(Number::Int(i)) => i.to_string(),
        Value::Number(Number::Float(f)) => f.to_string(),
        Value::String(s) => serde_json::Value::String(s.clone()).to_string(),
        Value::List(items) | Value::Set(items) => {
            format!("[{}]", items.iter().map(hcl).collect::<Vec<_>>().join(", "))
        }
        Value::Map(m) | Value::Object(m) => {
            let fields: Vec<String> = m.iter().map(|(k, v)| format!("{k} = {}", hcl(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::timeouts;

    fn schema() -> Schema {
        Schema::new(
            "A thing.",
            vec![
                Attribute::id(),
                Attribute::name("Its name."),
                Attribute::string("secret", Mode::Optional).sensitive().describe("Shh."),
                Attribute::string("state", Mode::Optional).default(Value::string("on")).describe("On or off."),
                Attribute::int("size", Mode::Required).requires_replace().describe("How big."),
                Attribute::object_list("items", Mode::Computed, &[("b", Type::String), ("a", Type::Number)]),
            ],
        )
        .block(timeouts::block(&["create"]))
    }

    #[test]
    fn groups_types_and_notes_like_tfplugindocs() {
        let page = type_page(Kind::Resource, "basalt_thing", &schema(), "resource \"basalt_thing\" \"x\" {}\n", None);
        let expected_schema = "\
## Schema

### Required

- `name` (String) Its name. Changing it replaces the resource.
- `size` (Number) How big. Changing it replaces the resource.

### Optional

- `secret` (String, Sensitive) Shh.
- `state` (String) On or off. Defaults to `\"on\"`.
- `timeouts` (Block, Optional) How long to wait for the operations this resource starts. When the time runs out Terraform reports an error naming the operation, which goes on on the server. (see [below for nested schema](#nestedblock--timeouts))

### Read-Only

- `id` (String) The object's id (a UUID).
- `items` (List of Object) (see [below for nested schema](#nestedatt--items))

<a id=\"nestedatt--items\"></a>
### Nested Schema for `items`

Read-Only:

- `a` (Number)
- `b` (String)

<a id=\"nestedblock--timeouts\"></a>
### Nested Schema for `timeouts`

Optional:

- `create` (String) How long to wait for this operation to finish: a duration such as `30s`, `10m` or `1h30m` (default `10m`).
";
        assert!(page.contains(expected_schema), "{page}");
        assert!(page.starts_with("---\n# generated by"), "{page}");
        assert!(page.contains("page_title: \"basalt_thing Resource - terraform-provider-basalt\"\n"), "{page}");
        assert!(page.contains("description: |-\n  A thing.\n---\n\n# basalt_thing (Resource)\n\nA thing.\n"), "{page}");
        assert!(page.contains("## Example Usage\n\n```terraform\nresource \"basalt_thing\" \"x\" {}\n```\n"));
        assert!(!page.contains("## Import"));
    }

    #[test]
    fn page_paths_drop_the_provider_prefix() {
        assert_eq!(page_path(Kind::Resource, "basalt_vm_snapshot"), "resources/vm_snapshot.md");
        assert_eq!(page_path(Kind::DataSource, "basalt_regions"), "data-sources/regions.md");
    }

    /// Every attribute whose change replaces the object says so on its page.
    #[test]
    fn every_replacing_attribute_says_so() {
        let registry = provider::registry();
        for (name, res) in &registry.resources {
            let schema = res.schema();
            let mut nested = Vec::new();
            for a in schema.attributes.iter().filter(|a| a.has(PlanModifier::RequiresReplace)) {
                let line = attribute_entry(a, "", &mut nested).line;
                assert!(line.contains("replaces"), "{name}.{}: {line}", a.name);
            }
        }
    }

    #[test]
    fn defaults_are_written_as_hcl() {
        assert_eq!(hcl(&Value::string("a\"b")), "\"a\\\"b\"");
        assert_eq!(hcl(&Value::int(5)), "5");
        assert_eq!(hcl(&Value::Bool(true)), "true");
        assert_eq!(hcl(&Value::string_list(["x".to_string()])), "[\"x\"]");
    }
}
