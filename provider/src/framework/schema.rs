//! Declarative schemas: attributes with their type and mode (required, optional,
//! computed), defaults, sensitivity, markdown descriptions, plan modifiers and
//! validators; single nested blocks of plain optional attributes (`timeouts`);
//! and their translation to the protocol's `Schema` message.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::proto::tfplugin6 as pb;
use crate::value::{Type, Value};

/// Who sets an attribute: the user, the provider, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Required,
    Optional,
    /// Set only by the provider.
    Computed,
    /// Set by the user, or by the provider (from a default or the API) when left out.
    OptionalComputed,
}

/// How planning treats an attribute beyond copying the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanModifier {
    /// A computed value that never changes once known: keep the prior state's
    /// value instead of showing "(known after apply)" on every update.
    UseStateForUnknown,
    /// A change to this attribute destroys and re-creates the object.
    RequiresReplace,
    /// The API does not answer this argument, so an import leaves it null: a
    /// configured value over a null prior is recorded by an update in place,
    /// never a replacement (even with [`PlanModifier::RequiresReplace`]).
    NotReadBack,
    /// Never null once known: while unknown it is planned as "not null"
    /// (a refinement Terraform 1.6+ understands), so expressions such as
    /// `count = var.x != null ? 1 : 0` are known at plan time.
    NeverNull,
}

/// Checks a known, non-null value; `Err` is the diagnostic's detail.
pub type Validator = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// One attribute of a schema.
#[derive(Clone)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: Type,
    pub mode: Mode,
    pub sensitive: bool,
    pub description: &'static str,
    /// Planned when the configuration leaves the attribute out (implies `OptionalComputed`).
    pub default: Option<Value>,
    pub modifiers: Vec<PlanModifier>,
    pub validators: Vec<Validator>,
}

impl Attribute {
    pub fn new(name: &'static str, ty: Type, mode: Mode) -> Self {
        Attribute {
            name,
            ty,
            mode,
            sensitive: false,
            description: "",
            default: None,
            modifiers: Vec::new(),
            validators: Vec::new(),
        }
    }

    pub fn string(name: &'static str, mode: Mode) -> Self {
        Attribute::new(name, Type::String, mode)
    }

    /// A set of strings (order does not matter; no duplicates).
    pub fn string_set(name: &'static str, mode: Mode) -> Self {
        Attribute::new(name, Type::Set(Box::new(Type::String)), mode)
    }

    /// A whole number (`Type::Number`; see [`validators::int_range`]).
    pub fn int(name: &'static str, mode: Mode) -> Self {
        Attribute::new(name, Type::Number, mode)
    }

    /// A list of strings (ordered).
    pub fn string_list(name: &'static str, mode: Mode) -> Self {
        Attribute::new(name, Type::List(Box::new(Type::String)), mode)
    }

    /// A list of objects with the given attribute types (for data sources' results).
    pub fn object_list(name: &'static str, mode: Mode, fields: &[(&str, Type)]) -> Self {
        let fields = fields.iter().map(|(k, t)| (k.to_string(), t.clone())).collect();
        Attribute::new(name, Type::List(Box::new(Type::Object(fields))), mode)
    }

    /// The conventional computed `id`, stable once known.
    pub fn id() -> Self {
        Attribute::string("id", Mode::Computed)
            .use_state_for_unknown()
            .never_null()
            .describe("The object's id (a UUID).")
    }

    /// A required string that identifies the object, checked by `check`: changing
    /// it replaces the object.
    pub fn identity(name: &'static str, check: Validator) -> Self {
        Attribute::string(name, Mode::Required).requires_replace().validate(check)
    }

    /// The `name` of a named object: a Basalt name ([`validators::basalt_name`]),
    /// required, and changing it replaces the object.
    pub fn name(markdown: &'static str) -> Self {
        Attribute::identity("name", validators::basalt_name()).describe(markdown)
    }

    /// A required reference to another object by id (`cluster_id`, `role_id`, ...):
    /// a UUID, and changing it replaces the object.
    pub fn reference(name: &'static str, markdown: &'static str) -> Self {
        Attribute::identity(name, validators::uuid()).describe(markdown)
    }

    /// The `tenant_id` every tenant-scoped resource has: optional (defaults to the
    /// provider's `tenant`, else the token's own context), filled in from the API,
    /// a UUID, and changing it replaces the object.
    pub fn tenant_id(markdown: &'static str) -> Self {
        Attribute::string("tenant_id", Mode::OptionalComputed)
            .requires_replace()
            .use_state_for_unknown()
            .validate(validators::uuid())
            .describe(markdown)
    }

    pub fn describe(mut self, markdown: &'static str) -> Self {
        self.description = markdown;
        self
    }

    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    pub fn default(mut self, v: Value) -> Self {
        self.mode = Mode::OptionalComputed;
        self.default = Some(v);
        self
    }

    pub fn requires_replace(mut self) -> Self {
        self.modifiers.push(PlanModifier::RequiresReplace);
        self
    }

    pub fn not_read_back(mut self) -> Self {
        self.modifiers.push(PlanModifier::NotReadBack);
        self
    }

    pub fn use_state_for_unknown(mut self) -> Self {
        self.modifiers.push(PlanModifier::UseStateForUnknown);
        self
    }

    pub fn never_null(mut self) -> Self {
        self.modifiers.push(PlanModifier::NeverNull);
        self
    }

    pub fn validate(mut self, v: Validator) -> Self {
        self.validators.push(v);
        self
    }

    pub fn has(&self, m: PlanModifier) -> bool {
        self.modifiers.contains(&m)
    }

    pub fn is_computed(&self) -> bool {
        matches!(self.mode, Mode::Computed | Mode::OptionalComputed)
    }

    fn to_proto(&self) -> pb::schema::Attribute {
        pb::schema::Attribute {
            name: self.name.to_string(),
            r#type: self.ty.to_json().to_string().into_bytes(),
            description: self.description.to_string(),
            description_kind: pb::StringKind::Markdown as i32,
            required: self.mode == Mode::Required,
            optional: matches!(self.mode, Mode::Optional | Mode::OptionalComputed),
            computed: self.is_computed(),
            sensitive: self.sensitive,
            ..Default::default()
        }
    }
}

/// A nested block written at most once (`timeouts { create = "20m" }`), null
/// when left out. Its attributes are the user's only (optional or required, never
/// computed): Terraform plans a block exactly as configured.
#[derive(Clone)]
pub struct Block {
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: Vec<Attribute>,
}

impl Block {
    pub fn new(name: &'static str, description: &'static str, attributes: Vec<Attribute>) -> Self {
        Block { name, description, attributes }
    }

    /// The object type of the block's value.
    pub fn object_type(&self) -> Type {
        object_type(&self.attributes)
    }

    fn to_proto(&self) -> pb::schema::NestedBlock {
        pb::schema::NestedBlock {
            type_name: self.name.to_string(),
            block: Some(block_proto(0, self.description, &self.attributes, &[])),
            nesting: pb::schema::nested_block::NestingMode::Single as i32,
            min_items: 0,
            max_items: 0,
        }
    }
}

/// The schema of a resource, data source or the provider itself.
#[derive(Clone)]
pub struct Schema {
    pub version: i64,
    pub description: &'static str,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<Block>,
}

fn object_type(attributes: &[Attribute]) -> Type {
    Type::Object(attributes.iter().map(|a| (a.name.to_string(), a.ty.clone())).collect::<BTreeMap<_, _>>())
}

fn block_proto(version: i64, description: &str, attributes: &[Attribute], blocks: &[Block]) -> pb::schema::Block {
    pb::schema::Block {
        version,
        attributes: attributes.iter().map(Attribute::to_proto).collect(),
        block_types: blocks.iter().map(Block::to_proto).collect(),
        description: description.to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
    }
}

impl Schema {
    pub fn new(description: &'static str, attributes: Vec<Attribute>) -> Self {
        Schema { version: 0, description, attributes, blocks: Vec::new() }
    }

    /// Adds a nested block.
    pub fn block(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }

    /// The object type of a whole value of this schema: its attributes and blocks.
    pub fn object_type(&self) -> Type {
        let mut fields = match object_type(&self.attributes) {
            Type::Object(f) => f,
            _ => BTreeMap::new(),
        };
        fields.extend(self.blocks.iter().map(|b| (b.name.to_string(), b.object_type())));
        Type::Object(fields)
    }

    pub fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(block_proto(self.version, self.description, &self.attributes, &self.blocks)),
        }
    }
}

/// Validators shared by resources.
pub mod validators {
    use super::Validator;
    use crate::value::Value;
    use std::sync::Arc;

    /// One of a fixed set of strings.
    pub fn one_of(allowed: &'static [&'static str]) -> Validator {
        Arc::new(move |v: &Value| match v.as_str() {
            Some(s) if allowed.contains(&s) => Ok(()),
            _ => Err(format!("must be one of: {}", allowed.join(", "))),
        })
    }

    /// A name of 1–63 characters whose first character passes `first` and every
    /// character `rest`; `rule` says so in words for the error.
    pub fn name_of(first: fn(char) -> bool, rest: fn(char) -> bool, rule: &'static str) -> Validator {
        Arc::new(move |v: &Value| {
            let s = v.as_str().unwrap_or_default();
            let ok = (1..=63).contains(&s.len()) && s.starts_with(first) && s.chars().all(rest);
            if ok {
                Ok(())
            } else {
                Err(format!("{s:?} is not a valid name: use 1-63 {rule}"))
            }
        })
    }

    /// A Basalt name: 1–63 of `a-z 0-9 -`, starting with a letter (the API's rule,
    /// checked at plan time so the error points at the attribute before any change).
    pub fn basalt_name() -> Validator {
        name_of(
            |c| c.is_ascii_lowercase(),
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            "lower-case letters, digits and '-', starting with a letter",
        )
    }

    /// A whole number from `min` to `max`.
    pub fn int_range(min: i64, max: i64) -> Validator {
        Arc::new(move |v: &Value| match v {
            Value::Number(n) if n.as_i64().is_some_and(|i| (min..=max).contains(&i)) => Ok(()),
            _ => Err(format!("must be a whole number from {min} to {max}")),
        })
    }

    /// An `http://` or `https://` URL.
    pub fn http_url() -> Validator {
        Arc::new(|v: &Value| match v.as_str() {
            Some(s) if (s.starts_with("http://") || s.starts_with("https://")) && !s.contains(char::is_whitespace) => {
                Ok(())
            }
            _ => Err("must be an http:// or https:// URL, e.g. http://127.0.0.1:8080".into()),
        })
    }

    /// Applies `each` to every element of a list or set; the error names the element.
    pub fn each(each: Validator) -> Validator {
        Arc::new(move |v: &Value| {
            for (i, item) in v.elements().unwrap_or_default().iter().enumerate() {
                if item.is_wholly_known() && !item.is_null() {
                    each(item).map_err(|e| format!("element {i}: {e}"))?;
                }
            }
            Ok(())
        })
    }

    /// A UUID in its canonical form (lower-case, hyphenated), as the API writes ids,
    /// so that the state always equals the configuration.
    pub fn uuid() -> Validator {
        Arc::new(|v: &Value| match v.as_str() {
            Some(s) if uuid::Uuid::try_parse(s).is_ok_and(|u| u.to_string() == s) => Ok(()),
            Some(s) => Err(format!("{s:?} is not a UUID in canonical form; reference the object's `id`")),
            None => Ok(()),
        })
    }

    /// Every element of a set or list is non-empty and at least `min` elements are given.
    pub fn min_items(min: usize) -> Validator {
        Arc::new(move |v: &Value| match v.elements() {
            Some(items) if items.len() < min => Err(format!("must hold at least {min} element(s)")),
            _ => Ok(()),
        })
    }

    /// A string of at most `max` characters.
    pub fn max_len(max: usize) -> Validator {
        Arc::new(move |v: &Value| match v.as_str() {
            Some(s) if s.chars().count() > max => Err(format!("must be at most {max} characters")),
            _ => Ok(()),
        })
    }
}
