//! `basalt_region`: a region of the federation (a failure domain with its own
//! gateway), over `/v1/regions` at system scope. The endpoint changes in place;
//! a new name is a new region. A standalone server has one region, `local`.

use async_trait::async_trait;
use basalt_client::{CreateRegion, Region, UpdateRegion};

use crate::framework::schema::validators::http_url;
use crate::framework::{Attribute, Context, Error, Mode, Obj, RestResource, Schema};
use crate::value::Value;

pub struct RegionResource;

/// The region's attributes, as the `basalt_regions` data source lists them too.
pub fn to_state(r: &Region) -> Obj {
    let mut o = Obj::default();
    o.set("id", Value::string(r.id.to_string()))
        .set("name", Value::string(&r.name))
        .set("endpoint", Value::string(&r.endpoint))
        .set("health", Value::string(&r.health));
    o
}

#[async_trait]
impl RestResource for RegionResource {
    type Object = Region;
    type Create = CreateRegion;
    type Update = UpdateRegion;

    fn type_name(&self) -> &'static str {
        "basalt_region"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A region: a failure domain with its own gateway, where clusters live. Provider staff only (system scope).",
            vec![
                Attribute::id(),
                Attribute::name("Unique name: 1-63 lower-case letters, digits and `-`, starting with a letter. Changing it replaces the region."),
                Attribute::string("endpoint", Mode::Required)
                    .validate(http_url())
                    .describe("`http://` or `https://` URL of the region's gateway."),
                Attribute::string("health", Mode::Computed)
                    .describe("`healthy`, `degraded`, `unreachable`, or `unknown` until first checked."),
            ],
        )
    }

    fn context(&self) -> Context {
        Context::System
    }

    fn collection(&self, _obj: &Obj) -> Result<String, Error> {
        Ok("/v1/regions".into())
    }

    fn to_state(&self, region: &Region, _known: &Obj) -> Obj {
        to_state(region)
    }

    fn create_body(&self, plan: &Obj) -> Result<CreateRegion, Error> {
        Ok(CreateRegion {
            name: plan.required_str("name")?.to_string(),
            endpoint: plan.required_str("endpoint")?.to_string(),
        })
    }

    fn update_body(&self, prior: &Obj, plan: &Obj) -> Result<Option<UpdateRegion>, Error> {
        let changed = plan.changed(prior, "endpoint");
        Ok(changed.then(|| UpdateRegion { endpoint: plan.str("endpoint").map(String::from) }))
    }
}
