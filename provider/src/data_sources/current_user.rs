//! Data source `basalt_current_user`: who the provider's token acts as (`GET /v1/me`),
//! in its own context, with its effective permissions there.

use async_trait::async_trait;
use basalt_client::Scope;

use crate::framework::{Api, Attribute, DataSource, Error, Mode, Obj, Schema};
use crate::value::Value;

pub struct CurrentUserDataSource;

#[async_trait]
impl DataSource for CurrentUserDataSource {
    fn type_name(&self) -> &'static str {
        "basalt_current_user"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "The user the provider's token belongs to, its current context and effective permissions.",
            vec![
                Attribute::string("id", Mode::Computed).describe("The user's id."),
                Attribute::string("username", Mode::Computed).describe("The user's login name."),
                Attribute::string("tenant_id", Mode::Computed)
                    .describe("The tenant the token acts in; null at system scope."),
                Attribute::string("tenant_name", Mode::Computed).describe("That tenant's name; null at system scope."),
                Attribute::string("scope", Mode::Computed).describe("`system` or `tenant`."),
                Attribute::string_set("permissions", Mode::Computed)
                    .describe("The permissions the token holds in its context."),
            ],
        )
    }

    async fn read(&self, api: &Api, _config: &Obj) -> Result<Obj, Error> {
        let me = api.me().await?;
        let scope = match me.scope {
            Scope::System => "system",
            Scope::Tenant => "tenant",
        };
        let mut o = Obj::default();
        o.set("id", Value::string(me.user.id.to_string()))
            .set("username", Value::string(&me.user.username))
            .set("tenant_id", Value::opt_string(me.tenant_id.map(|t| t.to_string())))
            .set("tenant_name", Value::opt_string(me.tenant_name.clone()))
            .set("scope", Value::string(scope))
            .set("permissions", Value::string_set(me.permissions.iter().cloned()));
        Ok(o)
    }
}
