//! The traits a resource or data source implements, and the API handle they get.
//!
//! A resource only translates between its attributes ([`Obj`]) and the Basalt API;
//! the framework does decoding, validation, planning, idempotency keys, error
//! mapping and the protocol around it, so each resource stays short.

use async_trait::async_trait;
use basalt_client::RequestOptions;

pub use super::api::Api;
use super::diag::{Diagnostics, Error};
use super::object::Obj;
use super::schema::Schema;
use crate::value::Value;

/// A managed resource type.
#[async_trait]
pub trait Resource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Checks across attributes, beyond each attribute's validators. Values may be unknown.
    fn validate(&self, _config: &Obj, _diags: &mut Diagnostics) {}

    /// Checks of a planned create or update that need the API (e.g. names against
    /// a live catalog) or the prior state; runs at plan time, after the framework's
    /// planning rules. Values may be unknown. Errors should point at attributes.
    async fn check_plan(&self, _api: &Api, _prior: Option<&Obj>, _planned: &Obj, _diags: &mut Diagnostics) {}

    /// Creates the object from the plan (computed attributes unknown) and returns
    /// the full new state. `opts` carries the instance's `Idempotency-Key`.
    async fn create(&self, api: &Api, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error>;

    /// The object's current state; an `Err` that [`Error::is_not_found`] means it
    /// is gone, and the framework drops it from the state with a warning.
    async fn read(&self, api: &Api, state: &Obj) -> Result<Obj, Error>;

    async fn update(&self, api: &Api, prior: &Obj, plan: &Obj) -> Result<Obj, Error>;

    /// Deletes the object; an object already gone counts as deleted.
    async fn delete(&self, api: &Api, state: &Obj) -> Result<(), Error>;

    /// The state that `terraform import ID` starts from before a read: the id, and
    /// for types with a `tenant_id`, the tenant from an id of the form
    /// `TENANT/ID` (tenant id or name; without it, the provider's `tenant` or the
    /// token's own context is searched).
    async fn import(&self, _api: &Api, id: &str) -> Result<Obj, Error> {
        let schema = self.schema();
        let has_tenant = schema.attributes.iter().any(|a| a.name == "tenant_id");
        import_state(&schema, id, has_tenant)
    }
}

/// The state `terraform import` starts from: every attribute null but the id, and
/// with `tenant_prefix`, the tenant from an id of the form `TENANT/ID`.
pub fn import_state(schema: &Schema, id: &str, tenant_prefix: bool) -> Result<Obj, Error> {
    let (tenant, id) = match id.split_once('/') {
        Some((t, i)) if tenant_prefix && !t.is_empty() => (Some(t), i),
        _ => (None, id),
    };
    if uuid::Uuid::try_parse(id).is_err() {
        let form = if tenant_prefix { " (or TENANT/ID)" } else { "" };
        return Err(Error::Invalid(format!("import id {id:?} is not a UUID; import by the object's id{form}")));
    }
    let mut state = Obj::default();
    for a in &schema.attributes {
        state.set(a.name, Value::Null);
    }
    state.set("id", Value::string(id));
    if let Some(t) = tenant {
        state.set("tenant_id", Value::string(t));
    }
    Ok(state)
}

/// A data source type.
#[async_trait]
pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Checks across attributes, beyond each attribute's validators. Values may be unknown.
    fn validate(&self, _config: &Obj, _diags: &mut Diagnostics) {}

    /// Looks the object up from the configuration and returns every attribute.
    async fn read(&self, api: &Api, config: &Obj) -> Result<Obj, Error>;
}
