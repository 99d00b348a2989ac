//! Data source `basalt_permissions`: the permission catalog of the server,
//! optionally only the permissions grantable at one scope.

use async_trait::async_trait;

use crate::framework::schema::validators::one_of;
use crate::framework::{Api, Attribute, DataSource, Error, Mode, Obj, Schema};
use crate::value::{Type, Value};

pub struct PermissionsDataSource;

const SCOPES: &[&str] = &["system", "tenant", "cluster"];

#[async_trait]
impl DataSource for PermissionsDataSource {
    fn type_name(&self) -> &'static str {
        "basalt_permissions"
    }

    fn schema(&self) -> Schema {
        let list = Type::List(Box::new(Type::String));
        Schema::new(
            "The permission catalog: every `resource:action` name a role can hold.",
            vec![
                Attribute::string("scope", Mode::Optional)
                    .validate(one_of(SCOPES))
                    .describe("Only permissions grantable at this scope: `system`, `tenant` or `cluster`."),
                Attribute::string_list("names", Mode::Computed).describe("The permission names, in catalog order."),
                Attribute::object_list(
                    "permissions",
                    Mode::Computed,
                    &[("name", Type::String), ("description", Type::String), ("scopes", list)],
                )
                .describe("Each permission with its description and the scopes it can be granted at."),
            ],
        )
    }

    async fn read(&self, api: &Api, config: &Obj) -> Result<Obj, Error> {
        let scope = config.str("scope");
        if let Some(s) = scope.filter(|s| !SCOPES.contains(s)) {
            return Err(Error::attr("scope", "Invalid value for `scope`", format!("{s:?}: must be one of {SCOPES:?}")));
        }
        let selected: Vec<_> = api
            .permission_catalog()
            .await?
            .iter()
            .filter(|p| scope.is_none_or(|s| p.scopes.iter().any(|x| x == s)))
            .collect();
        let objects = selected
            .iter()
            .map(|p| {
                let mut o = Obj::default();
                o.set("name", Value::string(&p.name))
                    .set("description", Value::string(&p.description))
                    .set("scopes", Value::string_list(p.scopes.iter().cloned()));
                o.into_value()
            })
            .collect();
        let mut state = Obj::default();
        state
            .set("scope", Value::opt_string(scope))
            .set("names", Value::string_list(selected.iter().map(|p| p.name.clone())))
            .set("permissions", Value::List(objects));
        Ok(state)
    }
}
