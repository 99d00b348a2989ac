//! Terraform's value model as the provider sees it: cty types (in their JSON
//! wire form, as schemas carry them) and values that may be null or unknown.
//!
//! Refinements of unknown values (Terraform 1.6+) are accepted on the wire and
//! dropped here: a refined unknown is still unknown, which is all planning needs.

use std::collections::BTreeMap;

use serde_json::json;

/// A cty type. `Dynamic` is not supported: no Basalt attribute needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Bool,
    Number,
    String,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
}

impl Type {
    /// The JSON form used in `Schema.Attribute.type`, e.g. `"string"` or `["set","string"]`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Type::Bool => json!("bool"),
            Type::Number => json!("number"),
            Type::String => json!("string"),
            Type::List(t) => json!(["list", t.to_json()]),
            Type::Set(t) => json!(["set", t.to_json()]),
            Type::Map(t) => json!(["map", t.to_json()]),
            Type::Object(attrs) => {
                let fields: serde_json::Map<String, serde_json::Value> =
                    attrs.iter().map(|(k, t)| (k.clone(), t.to_json())).collect();
                json!(["object", fields])
            }
        }
    }
}

/// A number: integers stay exact, anything else is a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(i),
            Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            Number::Float(_) => None,
        }
    }
}

/// A value of some [`Type`]; `Unknown` is only ever seen during validation and planning.
///
/// Equality treats sets as sets: the same elements in another order are equal
/// (Terraform and the API may order them differently; that is no change).
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) | (Unknown, Unknown) => true,
            (Bool(a), Bool(b)) => a == b,
            (Number(a), Number(b)) => a == b,
            (String(a), String(b)) => a == b,
            (List(a), List(b)) => a == b,
            (Set(a), Set(b)) => {
                a.len() == b.len() && a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
            }
            (Map(a), Map(b)) | (Object(a), Object(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// Known all the way down (no unknown anywhere inside).
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(v) | Value::Set(v) => v.iter().all(Value::is_wholly_known),
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A whole number.
    pub fn int(i: impl Into<i64>) -> Value {
        Value::Number(Number::Int(i.into()))
    }

    /// A set of strings, sorted and without duplicates (the order cty uses).
    pub fn string_set<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
        let set: std::collections::BTreeSet<String> = items.into_iter().map(Into::into).collect();
        Value::Set(set.into_iter().map(Value::String).collect())
    }

    /// A list of strings, in the given order.
    pub fn string_list<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
        Value::List(items.into_iter().map(|s| Value::String(s.into())).collect())
    }

    /// The elements of a list or set, `None` for anything else (null, unknown).
    pub fn elements(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) => Some(v),
            _ => None,
        }
    }

    /// `Some(s)` as a string, `None` as null.
    pub fn opt_string(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, |s| Value::String(s.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_compare_without_order_lists_with_order() {
        let a = Value::Set(vec![Value::string("a"), Value::string("b")]);
        let b = Value::Set(vec![Value::string("b"), Value::string("a")]);
        assert_eq!(a, b);
        assert_ne!(a, Value::Set(vec![Value::string("a")]));
        assert_ne!(Value::string_list(["a", "b"]), Value::string_list(["b", "a"]));
        assert_eq!(Value::string_set(["b", "a", "b"]), Value::Set(vec![Value::string("a"), Value::string("b")]));
    }
}
