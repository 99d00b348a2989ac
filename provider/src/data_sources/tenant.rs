//! Data source `basalt_tenant`: looks a live tenant up by name.

use async_trait::async_trait;

use crate::framework::schema::validators::basalt_name;
use crate::framework::{Api, Attribute, DataSource, Error, Mode, Obj, Schema};
use crate::resources::tenant::to_state;

pub struct TenantDataSource;

#[async_trait]
impl DataSource for TenantDataSource {
    fn type_name(&self) -> &'static str {
        "basalt_tenant"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Looks up an existing tenant by name.",
            vec![
                Attribute::string("name", Mode::Required).validate(basalt_name()).describe("The tenant's name."),
                Attribute::string("id", Mode::Computed).describe("The tenant's id."),
                Attribute::string("display_name", Mode::Computed).describe("Human-readable name."),
                Attribute::string("state", Mode::Computed).describe("`active` or `suspended`."),
                Attribute::string("created_at", Mode::Computed).describe("When the tenant was created (RFC 3339)."),
            ],
        )
    }

    async fn read(&self, api: &Api, config: &Obj) -> Result<Obj, Error> {
        let name = config.required_str("name")?;
        // The validator already limits names to [a-z0-9-], so the query needs no escaping;
        // re-check here because a value unknown at validation time skips validators.
        if let Err(detail) = basalt_name()(config.get("name")) {
            return Err(Error::attr("name", "Invalid value for `name`", detail));
        }
        let page = api.client.list_tenants(&format!("name={name}")).await?;
        let tenant = page.items.first().ok_or_else(|| {
            Error::attr("name", "Tenant not found", format!("no live tenant named {name:?} is visible to this token"))
        })?;
        Ok(to_state(tenant))
    }
}
