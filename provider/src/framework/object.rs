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
