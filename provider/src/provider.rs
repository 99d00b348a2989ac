//! The Basalt provider itself: the provider block (`endpoint`, `token`, `tenant`
//! with `BASALT_*` environment fallbacks), turning it into an API client, and
//! the registry of every resource and data source.

use basalt_client::Client;

use crate::data_sources::cluster::ClusterDataSource;
use crate::data_sources::current_user::CurrentUserDataSource;
use crate::data_sources::permissions::PermissionsDataSource;
use crate::data_sources::regions::RegionsDataSource;
use crate::data_sources::role::RoleDataSource;
use crate::data_sources::template::TemplateDataSource;
use crate::data_sources::tenant::TenantDataSource;
use crate::framework::schema::validators::http_url;
use crate::framework::{Api, AttrPath, Attribute, Diagnostics, Mode, Obj, Registry, Rest, Schema};
use crate::resources::cluster::ClusterResource;
use crate::resources::group::GroupResource;
use crate::resources::region::RegionResource;
use crate::resources::role::RoleResource;
use crate::resources::role_binding::RoleBindingResource;
use crate::resources::template::TemplateResource;
use crate::resources::tenant::TenantResource;
use crate::resources::tenant_quota::TenantQuotaResource;
use crate::resources::user::UserResource;
use crate::resources::vm::VmResource;
use crate::resources::vm_snapshot::VmSnapshotResource;
use crate::value::Value;

/// Every resource and data source the provider serves.
pub fn registry() -> Registry {
    Registry::new(schema(), configure)
        .resource(TenantResource)
        .resource(UserResource)
        .resource(RoleResource)
        .resource(RoleBindingResource)
        .resource(Rest(GroupResource))
        .resource(Rest(RegionResource))
        .resource(Rest(ClusterResource))
        .resource(Rest(TenantQuotaResource))
        .resource(Rest(TemplateResource))
        .resource(Rest(VmResource))
        .resource(Rest(VmSnapshotResource))
        .data_source(TenantDataSource)
        .data_source(RoleDataSource)
        .data_source(PermissionsDataSource)
        .data_source(CurrentUserDataSource)
        .data_source(RegionsDataSource)
        .data_source(ClusterDataSource)
        .data_source(TemplateDataSource)
}

fn schema() -> Schema {
    Schema::new(
        "Manage a Basalt control plane: tenants, users, roles, regions, clusters, quotas, templates, VMs and snapshots.",
        vec![
            Attribute::string("endpoint", Mode::Optional)
                .validate(http_url())
                .describe("Base URL of the Basalt API, e.g. `http://127.0.0.1:8080`. Defaults to `BASALT_ENDPOINT`."),
            Attribute::string("token", Mode::Optional)
                .sensitive()
                .describe("API token or user token. Defaults to `BASALT_TOKEN`."),
            Attribute::string("tenant", Mode::Optional)
                .describe("Default tenant context (id or name) for resources whose `tenant_id` is left out. Defaults to `BASALT_TENANT`."),
        ],
    )
}

/// The attribute's value, else the environment variable's; `Err` when the value
/// is unknown (a provider block cannot depend on values known only after apply).
fn setting(config: &Obj, name: &str, env: &str, diags: &mut Diagnostics) -> Option<String> {
    match config.get(name) {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Unknown => {
            let detail = format!("`{name}` depends on a value known only after apply; set it from known values.");
            diags.attr_error(&AttrPath::attr(name), "Unknown provider setting", detail);
            None
        }
        _ => std::env::var(env).ok().filter(|s| !s.is_empty()),
    }
}

/// Each provider argument and the environment variable it falls back to (also
/// the table on the provider's documentation page).
pub const ENVIRONMENT: [(&str, &str); 3] =
    [("endpoint", "BASALT_ENDPOINT"), ("token", "BASALT_TOKEN"), ("tenant", "BASALT_TENANT")];

fn configure(config: &Obj, diags: &mut Diagnostics) -> Option<Api> {
    let [endpoint, token, tenant] = ENVIRONMENT.map(|(name, env)| setting(config, name, env, diags));
    if endpoint.is_none() {
        diags.attr_error(&AttrPath::attr("endpoint"), "Missing Basalt endpoint", "Set `endpoint` or BASALT_ENDPOINT.");
    }
    if token.is_none() {
        diags.attr_error(&AttrPath::attr("token"), "Missing Basalt token", "Set `token` or BASALT_TOKEN.");
    }
    if diags.has_errors() {
        return None;
    }
    Some(Api::new(Client::new(&endpoint?, token), tenant))
}
