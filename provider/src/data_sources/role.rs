//! Data source `basalt_role`: looks a role up by name among those visible in a
//! tenant (its custom roles and the built-in ones, e.g. `tenant-admin`).

use async_trait::async_trait;
use basalt_client::Role;

use crate::framework::rest::list_all;
use crate::framework::schema::validators::{basalt_name, uuid};
use crate::framework::{Api, Attribute, DataSource, Error, Mode, Obj, Schema};
use crate::resources::role::to_state;
use crate::value::Value;

pub struct RoleDataSource;

#[async_trait]
impl DataSource for RoleDataSource {
    fn type_name(&self) -> &'static str {
        "basalt_role"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Looks up a role by name: a built-in role (`tenant-admin`, `tenant-operator`, `tenant-viewer`, `auditor`, ...) or a custom role of the tenant.",
            vec![
                Attribute::string("name", Mode::Required).validate(basalt_name()).describe("The role's name."),
                Attribute::string("tenant_id", Mode::Optional)
                    .validate(uuid())
                    .describe("Search in this tenant's context (defaults to the provider's `tenant`, else the token's own context)."),
                Attribute::string("id", Mode::Computed).describe("The role's id."),
                Attribute::string("description", Mode::Computed).describe("What the role is for."),
                Attribute::string_set("permissions", Mode::Computed).describe("The role's permissions."),
                Attribute::new("builtin", crate::value::Type::Bool, Mode::Computed)
                    .describe("Whether the role ships with Basalt (read-only)."),
            ],
        )
    }

    async fn read(&self, api: &Api, config: &Obj) -> Result<Obj, Error> {
        let name = config.required_str("name")?;
        let client = api.for_tenant(config.str("tenant_id")).await?;
        let roles: Vec<Role> = list_all(&client, "/v1/roles").await?;
        let Some(role) = roles.iter().find(|r| r.name == name) else {
            return Err(Error::attr(
                "name",
                "Role not found",
                format!("no role named {name:?} is visible in this context"),
            ));
        };
        let mut state = to_state(role);
        state.set("builtin", Value::Bool(role.builtin)).set("tenant_id", config.get("tenant_id").clone());
        Ok(state)
    }
}
