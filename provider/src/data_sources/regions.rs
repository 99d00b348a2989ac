//! Data source `basalt_regions`: every region visible in the token's own context
//! (provider staff: all; a tenant: the ones it may use), with its health.

use async_trait::async_trait;
use basalt_client::Region;

use crate::framework::rest::list_all;
use crate::framework::{Api, Attribute, DataSource, Error, Mode, Obj, Schema};
use crate::value::{Type, Value};

pub struct RegionsDataSource;

#[async_trait]
impl DataSource for RegionsDataSource {
    fn type_name(&self) -> &'static str {
        "basalt_regions"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "The regions the provider's token can see, with their health.",
            vec![
                Attribute::string_list("names", Mode::Computed).describe("The regions' names."),
                Attribute::object_list(
                    "regions",
                    Mode::Computed,
                    &[("id", Type::String), ("name", Type::String), ("health", Type::String)],
                )
                .describe(
                    "Each region: its `id`, `name` and `health` (`healthy`, `degraded`, `unreachable` or `unknown`).",
                ),
            ],
        )
    }

    async fn read(&self, api: &Api, _config: &Obj) -> Result<Obj, Error> {
        let regions: Vec<Region> = list_all(&api.client, "/v1/regions").await?;
        let objects = regions
            .iter()
            .map(|r| {
                let mut o = Obj::default();
                o.set("id", Value::string(r.id.to_string()))
                    .set("name", Value::string(&r.name))
                    .set("health", Value::string(&r.health));
                o.into_value()
            })
            .collect();
        let mut state = Obj::default();
        state
            .set("names", Value::string_list(regions.iter().map(|r| r.name.clone())))
            .set("regions", Value::List(objects));
        Ok(state)
    }
}
