//! Data source `basalt_template`: one template by id, or by name among those
//! visible in a context (the tenant's own first, then the public ones).

use async_trait::async_trait;
use basalt_client::Template;

use crate::framework::plan::require_one_of;
use crate::framework::rest::{lookup, lookup_attributes};
use crate::framework::{Api, Attribute, DataSource, Diagnostics, Error, Mode, Obj, Schema};
use crate::resources::template::to_state;
use crate::value::{Type, Value};

pub struct TemplateDataSource;

#[async_trait]
impl DataSource for TemplateDataSource {
    fn type_name(&self) -> &'static str {
        "basalt_template"
    }

    fn schema(&self) -> Schema {
        let mut attributes = lookup_attributes();
        attributes.extend([
            Attribute::new("public", Type::Bool, Mode::Computed)
                .describe("Whether it is a public template (the provider's, readable by every tenant)."),
            Attribute::int("vcpus", Mode::Computed).describe("Default vCPUs of VMs made from it."),
            Attribute::int("memory_mib", Mode::Computed).describe("Default memory in MiB of VMs made from it."),
            Attribute::int("disk_gib", Mode::Computed).describe("Disk size in GiB of VMs made from it."),
            Attribute::string("image", Mode::Computed).describe("Base image path on the hosts (empty: diskless)."),
            Attribute::string("kernel", Mode::Computed).describe("Kernel path for direct kernel boot (empty: none)."),
            Attribute::string("initrd", Mode::Computed).describe("Initrd path for direct kernel boot (empty: none)."),
            Attribute::string("cmdline", Mode::Computed).describe("Kernel command line (empty: none)."),
        ]);
        Schema::new(
            "Looks up a VM template by `id`, or by `name`: the tenant's own template of that name if there is one, else the public one.",
            attributes,
        )
    }

    fn validate(&self, config: &Obj, diags: &mut Diagnostics) {
        require_one_of(config, &["id", "name"], diags);
    }

    async fn read(&self, api: &Api, config: &Obj) -> Result<Obj, Error> {
        let pick = |all: Vec<Template>, name: &str| {
            // The context's own template (tenant_id set) before the public one.
            all.into_iter().filter(|t| t.name == name).min_by_key(|t| t.tenant_id.is_none())
        };
        let template = lookup(api, config, "/v1/templates", "template", pick).await?;
        let mut state = to_state(&template);
        state
            .set("public", Value::Bool(template.tenant_id.is_none()))
            .set("tenant_id", config.get("tenant_id").clone());
        Ok(state)
    }
}
