//! Data source `basalt_cluster`: one cluster by id or by name. Provider staff
//! see its name, region, alias and hosts; in a tenant's context a cluster goes by
//! its alias (the tenant sees only clusters it holds a quota on), without hosts.

use async_trait::async_trait;
use basalt_client::Cluster;

use crate::framework::plan::require_one_of;
use crate::framework::rest::{lookup, lookup_attributes};
use crate::framework::{Api, Attribute, DataSource, Diagnostics, Error, Mode, Obj, Schema};
use crate::resources::cluster::to_state;

pub struct ClusterDataSource;

#[async_trait]
impl DataSource for ClusterDataSource {
    fn type_name(&self) -> &'static str {
        "basalt_cluster"
    }

    fn schema(&self) -> Schema {
        let mut attributes = lookup_attributes();
        attributes.extend([
            Attribute::string("region", Mode::Computed).describe("The region's name."),
            Attribute::string("alias", Mode::Computed).describe("The name tenants see."),
            Attribute::string_list("hosts", Mode::Computed)
                .describe("libvirt URIs of the hosts (provider staff only; null in a tenant's context)."),
        ]);
        Schema::new(
            "Looks up a cluster by `id` or by `name`. In a tenant's context a cluster's name is its alias, and only clusters the tenant holds a quota on are visible.",
            attributes,
        )
    }

    fn validate(&self, config: &Obj, diags: &mut Diagnostics) {
        require_one_of(config, &["id", "name"], diags);
    }

    async fn read(&self, api: &Api, config: &Obj) -> Result<Obj, Error> {
        let pick = |all: Vec<Cluster>, name: &str| all.into_iter().find(|c| c.name == name);
        let cluster = lookup(api, config, "/v1/clusters", "cluster", pick).await?;
        let mut state = to_state(&cluster);
        state.set("tenant_id", config.get("tenant_id").clone());
        Ok(state)
    }
}
