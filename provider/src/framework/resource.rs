//! The traits a resource or data source implements, and the API handle they get.
//!
//! A resource only translates between its attributes ([`Obj`]) and the Basalt API;
//! the framework does decoding, validation, planning, idempotency keys, error
//! mapping and the protocol around it, so each resource stays short.

use async_trait::async_trait;
use basalt_client::{Client, RequestOptions};

use super::diag::{Diagnostics, Error};
use super::object::Obj;
use super::schema::Schema;
use crate::value::Value;

/// What a configured provider hands to resources: the API client and the default
/// tenant context from the provider block.
#[derive(Debug, Clone)]
pub struct Api {
    pub client: Client,
    /// The provider's `tenant` (id or name), if set.
    pub tenant: Option<String>,
}

/// A managed resource type.
#[async_trait]
pub trait Resource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Checks across attributes, beyond each attribute's validators. Values may be unknown.
    fn validate(&self, _config: &Obj, _diags: &mut Diagnostics) {}

    /// Creates the object from the plan (computed attributes unknown) and returns
    /// the full new state. `opts` carries the instance's `Idempotency-Key`.
    async fn create(&self, api: &Api, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error>;

    /// The object's current state; an `Err` that [`Error::is_not_found`] means it
    /// is gone, and the framework drops it from the state with a warning.
    async fn read(&self, api: &Api, state: &Obj) -> Result<Obj, Error>;

    async fn update(&self, api: &Api, prior: &Obj, plan: &Obj) -> Result<Obj, Error>;

    /// Deletes the object; an object already gone counts as deleted.
    async fn delete(&self, api: &Api, state: &Obj) -> Result<(), Error>;

    /// The state that `terraform import ID` starts from before a read: the id only.
    async fn import(&self, _api: &Api, id: &str) -> Result<Obj, Error> {
        if uuid::Uuid::try_parse(id).is_err() {
            return Err(Error::Invalid(format!("import id {id:?} is not a UUID; import by the object's id")));
        }
        let mut state = Obj::default();
        for a in self.schema().attributes {
            state.set(a.name, Value::Null);
        }
        state.set("id", Value::string(id));
        Ok(state)
    }
}

/// A data source type.
#[async_trait]
pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Looks the object up from the configuration and returns every attribute.
    async fn read(&self, api: &Api, config: &Obj) -> Result<Obj, Error>;
}
