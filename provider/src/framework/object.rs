//! `Obj`: one resource's attributes by name, with the typed getters resources use
//! to turn a plan into an API request and an API answer back into state.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::diag::Error;
use crate::value::Value;

/// The attributes of one resource instance, data source or provider configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obj(pub BTreeMap<String, Value>);

static NULL: Value = Value::Null;

impl Obj {
    /// `Some` for an object, `None` for null (no object: create or destroy).
    pub fn from_value(v: Value) -> Result<Option<Obj>, Error> {
        match v {
            Value::Object(m) => Ok(Some(Obj(m))),
            Value::Null => Ok(None),
            other => Err(Error::Invalid(format!("expected an object, got {other:?}"))),
        }
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }

    pub fn get(&self, name: &str) -> &Value {
        self.0.get(name).unwrap_or(&NULL)
    }

    pub fn set(&mut self, name: &str, v: Value) -> &mut Self {
        self.0.insert(name.to_string(), v);
        self
    }

    /// The attribute as a known string; `None` when null or unknown.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).as_str()
    }

    /// The attribute as a known string, or an error pointing at it.
    pub fn required_str(&self, name: &str) -> Result<&str, Error> {
        self.str(name).ok_or_else(|| Error::attr(name, "Missing value", format!("`{name}` must be set and known")))
    }

    /// The attribute as a UUID, or an error pointing at it.
    pub fn uuid(&self, name: &str) -> Result<Uuid, Error> {
        let s = self.required_str(name)?;
        Uuid::try_parse(s).map_err(|_| Error::attr(name, "Invalid id", format!("{s:?} is not a UUID")))
    }

    /// The attribute as an optional UUID: `None` when null or unknown.
    pub fn opt_uuid(&self, name: &str) -> Result<Option<Uuid>, Error> {
        match self.str(name) {
            None => Ok(None),
            Some(_) => self.uuid(name).map(Some),
        }
    }

    /// The attribute as a known whole number; `None` when null, unknown or fractional.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The attribute as a known whole number of type `T`, or an error pointing at it.
    pub fn required_int<T: TryFrom<i64>>(&self, name: &str) -> Result<T, Error> {
        self.opt_int(name)?
            .ok_or_else(|| Error::attr(name, "Missing value", format!("`{name}` must be set to a known whole number")))
    }

    /// The attribute as a whole number of type `T`: `None` when null or unknown, an
    /// error pointing at it when it does not fit.
    pub fn opt_int<T: TryFrom<i64>>(&self, name: &str) -> Result<Option<T>, Error> {
        match self.get(name) {
            Value::Null | Value::Unknown => Ok(None),
            _ => self
                .int(name)
                .and_then(|i| T::try_from(i).ok())
                .map(Some)
                .ok_or_else(|| Error::attr(name, "Invalid number", format!("`{name}` is out of range"))),
        }
    }

    /// Whether attribute `name` differs between `self` (a plan) and `prior`.
    pub fn changed(&self, prior: &Obj, name: &str) -> bool {
        self.get(name) != prior.get(name)
    }

    /// The whole number `name` of this plan when it differs from `prior`'s (what a
    /// partial update sends), else `None`.
    pub fn changed_int<T: TryFrom<i64>>(&self, prior: &Obj, name: &str) -> Result<Option<T>, Error> {
        if self.changed(prior, name) {
            self.opt_int(name)
        } else {
            Ok(None)
        }
    }

    /// The known string elements of a set or list attribute (`None` when null or unknown).
    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        let items = self.get(name).elements()?;
        Some(items.iter().filter_map(|v| v.as_str().map(String::from)).collect())
    }

    /// The string elements of a set or list attribute, or an error pointing at it.
    pub fn required_strings(&self, name: &str) -> Result<Vec<String>, Error> {
        match self.get(name).elements() {
            Some(items) if items.iter().all(|v| v.as_str().is_some()) => Ok(self.strings(name).unwrap_or_default()),
            _ => Err(Error::attr(name, "Missing value", format!("`{name}` must be set and wholly known"))),
        }
    }
}
