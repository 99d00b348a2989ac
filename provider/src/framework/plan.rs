//! Planning and validation rules, as pure functions over a schema: defaults,
//! unknown computed values, use-state-for-unknown, requires-replace, validators.
//!
//! Terraform's proposed new state already merges the configuration with the prior
//! state (computed attributes left out of the configuration keep their prior
//! value); these rules only say where the provider knows better.

use super::diag::{AttrPath, Diagnostics};
use super::object::Obj;
use super::schema::{Attribute, PlanModifier, Schema};
use crate::value::Value;

/// The planned state and the attributes whose change forces a replacement.
#[derive(Debug)]
pub struct Planned {
    pub state: Option<Obj>,
    pub requires_replace: Vec<AttrPath>,
}

/// Plans one resource instance. `proposed` is `None` on destroy.
pub fn plan(schema: &Schema, prior: Option<&Obj>, proposed: Option<Obj>, config: Option<&Obj>) -> Planned {
    let (Some(mut planned), Some(config)) = (proposed, config) else {
        return Planned { state: None, requires_replace: Vec::new() };
    };
    apply_defaults(schema, &mut planned, config);
    let Some(prior) = prior else {
        mark_unknown(schema, &mut planned, config, |_| true);
        return Planned { state: Some(planned), requires_replace: Vec::new() };
    };
    let requires_replace = replaced(schema, prior, &planned);
    if planned != *prior {
        // Something changes, so computed values the API derives may change too,
        // except those declared stable.
        mark_unknown(schema, &mut planned, config, |a| !a.has(PlanModifier::UseStateForUnknown));
    }
    Planned { state: Some(planned), requires_replace }
}

fn apply_defaults(schema: &Schema, planned: &mut Obj, config: &Obj) {
    for a in &schema.attributes {
        if let (Some(d), true) = (&a.default, config.get(a.name).is_null()) {
            planned.set(a.name, d.clone());
        }
    }
}

/// Marks computed attributes that the configuration leaves out (and that have no
/// default) as unknown, where `which` says so.
fn mark_unknown(schema: &Schema, planned: &mut Obj, config: &Obj, which: impl Fn(&Attribute) -> bool) {
    for a in &schema.attributes {
        if a.is_computed() && a.default.is_none() && config.get(a.name).is_null() && which(a) {
            planned.set(a.name, Value::Unknown);
        }
    }
}

fn replaced(schema: &Schema, prior: &Obj, planned: &Obj) -> Vec<AttrPath> {
    // A null prior of an argument the API does not answer is what an import
    // leaves: the configured value is recorded, not a change of the object.
    let imported = |a: &Attribute| a.has(PlanModifier::NotReadBack) && prior.get(a.name).is_null();
    schema
        .attributes
        .iter()
        .filter(|a| a.has(PlanModifier::RequiresReplace) && prior.get(a.name) != planned.get(a.name))
        .filter(|a| !imported(a))
        .map(|a| AttrPath::attr(a.name))
        .collect()
}

/// Runs every attribute's validators on its known, non-null value, including the
/// attributes of nested blocks.
pub fn validate(schema: &Schema, config: &Obj, diags: &mut Diagnostics) {
    validate_attributes(&schema.attributes, config, &[], diags);
    for b in &schema.blocks {
        if let Value::Object(fields) = config.get(b.name) {
            validate_attributes(&b.attributes, &Obj(fields.clone()), &[b.name], diags);
        }
    }
}

fn validate_attributes(attributes: &[Attribute], config: &Obj, parent: &[&str], diags: &mut Diagnostics) {
    for a in attributes {
        let v = config.get(a.name);
        if v.is_null() || !v.is_wholly_known() {
            continue;
        }
        let path: Vec<&str> = parent.iter().copied().chain([a.name]).collect();
        for check in &a.validators {
            if let Err(detail) = check(v) {
                diags.attr_error(&AttrPath::of(&path), format!("Invalid value for `{}`", path.join(".")), detail);
            }
        }
    }
}

/// Exactly one of `names` must be set (an unknown value counts as set); the error
/// points at the first of them.
pub fn require_one_of(config: &Obj, names: &[&str], diags: &mut Diagnostics) {
    let set: Vec<&str> = names.iter().copied().filter(|n| !config.get(n).is_null()).collect();
    if set.len() != 1 {
        let listed = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" or ");
        let detail = match set.len() {
            0 => format!("Set {listed}."),
            _ => format!("Set only one of {listed}, not several."),
        };
        diags.attr_error(&AttrPath::attr(names[0]), format!("Exactly one of {listed} is required"), detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::Mode;

    fn schema() -> Schema {
        Schema::new(
            "test",
            vec![
                Attribute::id(),
                Attribute::string("name", Mode::Required).requires_replace(),
                Attribute::string("state", Mode::Optional).default(Value::string("active")),
                Attribute::string("updated_at", Mode::Computed),
            ],
        )
    }

    fn obj(pairs: &[(&str, Value)]) -> Obj {
        let mut o = Obj::default();
        for (k, v) in pairs {
            o.set(k, v.clone());
        }
        o
    }

    #[test]
    fn create_makes_computed_unknown_and_applies_defaults() {
        let config = obj(&[("name", Value::string("a"))]);
        let p = plan(&schema(), None, Some(config.clone()), Some(&config));
        let s = p.state.expect("planned");
        assert_eq!(s.get("id"), &Value::Unknown);
        assert_eq!(s.get("updated_at"), &Value::Unknown);
        assert_eq!(s.get("state"), &Value::string("active"));
    }

    #[test]
    fn no_change_keeps_prior_values() {
        let prior = obj(&[
            ("id", Value::string("x")),
            ("name", Value::string("a")),
            ("state", Value::string("active")),
            ("updated_at", Value::string("t")),
        ]);
        let config = obj(&[("name", Value::string("a"))]);
        let mut proposed = prior.clone();
        proposed.set("state", Value::string("active"));
        let p = plan(&schema(), Some(&prior), Some(proposed), Some(&config));
        assert_eq!(p.state.as_ref(), Some(&prior));
        assert!(p.requires_replace.is_empty());
    }

    #[test]
    fn change_keeps_stable_ids_and_flags_replacement() {
        let prior = obj(&[
            ("id", Value::string("x")),
            ("name", Value::string("a")),
            ("state", Value::string("active")),
            ("updated_at", Value::string("t")),
        ]);
        let config = obj(&[("name", Value::string("b"))]);
        let mut proposed = prior.clone();
        proposed.set("name", Value::string("b"));
        let p = plan(&schema(), Some(&prior), Some(proposed), Some(&config));
        let s = p.state.expect("planned");
        assert_eq!(s.get("id"), &Value::string("x"));
        assert_eq!(s.get("updated_at"), &Value::Unknown);
        assert_eq!(p.requires_replace, vec![AttrPath::attr("name")]);
    }

    #[test]
    fn an_argument_not_read_back_is_recorded_after_an_import_not_replaced() {
        let schema = Schema::new(
            "test",
            vec![Attribute::id(), Attribute::string("region", Mode::Optional).requires_replace().not_read_back()],
        );
        let imported = obj(&[("id", Value::string("x")), ("region", Value::Null)]);
        let config = obj(&[("region", Value::string("eu"))]);
        let mut proposed = imported.clone();
        proposed.set("region", Value::string("eu"));
        let p = plan(&schema, Some(&imported), Some(proposed.clone()), Some(&config));
        assert!(p.requires_replace.is_empty(), "an update in place: {:?}", p.requires_replace);
        assert_eq!(p.state.expect("planned").get("region"), &Value::string("eu"));
        // Once known, a change still replaces the object.
        let other = obj(&[("region", Value::string("us"))]);
        let mut changed = proposed.clone();
        changed.set("region", Value::string("us"));
        let p = plan(&schema, Some(&proposed), Some(changed), Some(&other));
        assert_eq!(p.requires_replace, vec![AttrPath::attr("region")]);
    }

    #[test]
    fn block_attributes_are_validated_on_their_path() {
        let schema = schema().block(crate::framework::timeouts::block(&["create"]));
        let mut config = obj(&[("name", Value::string("a"))]);
        config.set("timeouts", Value::Object([("create".to_string(), Value::string("ten"))].into_iter().collect()));
        let mut diags = Diagnostics::default();
        validate(&schema, &config, &mut diags);
        let v = diags.into_vec();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].attribute, Some(AttrPath::of(&["timeouts", "create"]).to_proto()));
        assert_eq!(v[0].summary, "Invalid value for `timeouts.create`");
    }

    #[test]
    fn exactly_one_of_id_or_name() {
        let check = |pairs: &[(&str, Value)]| {
            let mut diags = Diagnostics::default();
            require_one_of(&obj(pairs), &["id", "name"], &mut diags);
            diags.into_vec().len()
        };
        assert_eq!(check(&[("name", Value::string("a"))]), 0);
        assert_eq!(check(&[("id", Value::Unknown)]), 0, "an unknown value counts as set");
        assert_eq!(check(&[]), 1);
        assert_eq!(check(&[("id", Value::string("x")), ("name", Value::string("a"))]), 1);
    }

    #[test]
    fn destroy_plans_null() {
        let prior = obj(&[("id", Value::string("x"))]);
        assert!(plan(&schema(), Some(&prior), None, None).state.is_none());
    }
}
