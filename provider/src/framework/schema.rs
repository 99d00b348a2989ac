//! Declarative schemas: attributes with their type and mode (required, optional,
//! computed), defaults, sensitivity, markdown descriptions, plan modifiers and
//! validators; and their translation to the protocol's `Schema` message.

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
        Attribute::string("id", Mode::Computed).use_state_for_unknown().describe("The object's id (a UUID).")
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

    pub fn use_state_for_unknown(mut self) -> Self {
        self.modifiers.push(PlanModifier::UseStateForUnknown);
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

/// The schema of a resource, data source or the provider itself.
#[derive(Clone)]
pub struct Schema {
    pub version: i64,
    pub description: &'static str,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    pub fn new(description: &'static str, attributes: Vec<Attribute>) -> Self {
        Schema { version: 0, description, attributes }
    }

    /// The object type of a whole value of this schema.
    pub fn object_type(&self) -> Type {
        Type::Object(self.attributes.iter().map(|a| (a.name.to_string(), a.ty.clone())).collect::<BTreeMap<_, _>>())
    }

    pub fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(pb::schema::Block {
                version: self.version,
                attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
                description: self.description.to_string(),
                description_kind: pb::StringKind::Markdown as i32,
                ..Default::default()
            }),
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

    /// A Basalt name: 1–63 of `a-z 0-9 -`, starting with a letter (the API's rule,
    /// checked at plan time so the error points at the attribute before any change).
    pub fn basalt_name() -> Validator {
        Arc::new(|v: &Value| {
            let s = v.as_str().unwrap_or_default();
            let ok = (1..=63).contains(&s.len())
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{s:?} is not a valid name: use 1-63 lower-case letters, digits and '-', starting with a letter"
                ))
            }
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
