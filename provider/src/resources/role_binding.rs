//! `basalt_role_binding`: one role granted to one user or one group at one
//! scope object (the system, a tenant, or a cluster of a tenant), over
//! `/v1/role-bindings`. Bindings cannot change: every argument replaces the
//! binding.

use async_trait::async_trait;
use basalt_client::{CreateRoleBinding, RequestOptions, RoleBinding};

use crate::framework::schema::validators::uuid;
use crate::framework::{Api, AttrPath, Attribute, Diagnostics, Error, Mode, Obj, Resource, Schema};
use crate::value::Value;

pub struct RoleBindingResource;

/// `user_id` or `group_id`: optional, a UUID, and changing it replaces the binding.
fn holder(name: &'static str, markdown: &'static str) -> Attribute {
    Attribute::string(name, Mode::Optional).requires_replace().validate(uuid()).describe(markdown)
}

fn to_state(b: &RoleBinding) -> Obj {
    let mut o = Obj::default();
    o.set("id", Value::string(b.id.to_string()))
        .set("role_id", Value::string(b.role_id.to_string()))
        .set("user_id", Value::opt_string(b.user_id.map(|u| u.to_string())))
        .set("group_id", Value::opt_string(b.group_id.map(|g| g.to_string())))
        .set("tenant_id", Value::opt_string(b.tenant_id.map(|t| t.to_string())))
        .set("cluster_id", Value::opt_string(b.cluster_id.map(|c| c.to_string())))
        .set("scope", Value::string(&b.scope));
    o
}

#[async_trait]
impl Resource for RoleBindingResource {
    fn type_name(&self) -> &'static str {
        "basalt_role_binding"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Grants a role to a user, or to every member of a group, in a tenant (or, with `cluster_id`, on one cluster of it). Nobody can grant a role holding more than they hold themselves.",
            vec![
                Attribute::id(),
                Attribute::reference("role_id", "The role to grant: a custom `basalt_role` or a built-in role (see the `basalt_role` data source)."),
                holder("user_id", "The user who receives the role. Exactly one of `user_id` and `group_id`."),
                holder("group_id", "The group (`basalt_group`) whose members receive the role. Exactly one of `user_id` and `group_id`."),
                Attribute::tenant_id("The id of the tenant the binding applies in. Defaults to the provider's `tenant`, else the token's own context (none: a system binding)."),
                Attribute::string("cluster_id", Mode::Optional)
                    .requires_replace()
                    .validate(uuid())
                    .describe("Set to grant the role on this one cluster only (cluster scope)."),
                Attribute::string("scope", Mode::Computed)
                    .use_state_for_unknown()
                    .describe("`system`, `tenant` or `cluster`."),
            ],
        )
    }

    fn validate(&self, config: &Obj, diags: &mut Diagnostics) {
        let (user, group) = (config.get("user_id"), config.get("group_id"));
        if user.is_unknown() || group.is_unknown() {
            return;
        }
        match (user.is_null(), group.is_null()) {
            (true, true) => diags.attr_error(
                &AttrPath::attr("user_id"),
                "Missing role holder",
                "Set `user_id` (a user) or `group_id` (a group) to say who receives the role.",
            ),
            (false, false) => diags.attr_error(
                &AttrPath::attr("group_id"),
                "Conflicting role holders",
                "A binding grants its role to one user or to one group: set only one of `user_id` and `group_id`.",
            ),
            _ => {}
        }
    }

    async fn create(&self, api: &Api, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error> {
        let client = api.for_tenant(plan.str("tenant_id")).await?;
        let req = CreateRoleBinding {
            role_id: plan.uuid("role_id")?,
            user_id: plan.opt_uuid("user_id")?,
            group_id: plan.opt_uuid("group_id")?,
            tenant_id: None,
            cluster_id: plan.opt_uuid("cluster_id")?,
        };
        Ok(to_state(&client.create_role_binding(&req, opts).await?))
    }

    async fn read(&self, api: &Api, state: &Obj) -> Result<Obj, Error> {
        let client = api.for_tenant(state.str("tenant_id")).await?;
        Ok(to_state(&client.get_role_binding(state.uuid("id")?).await?))
    }

    async fn update(&self, api: &Api, prior: &Obj, _plan: &Obj) -> Result<Obj, Error> {
        // Every argument requires replacement, so Terraform never plans an update;
        // should it, the binding is what it was.
        self.read(api, prior).await
    }

    async fn delete(&self, api: &Api, state: &Obj) -> Result<(), Error> {
        let client = api.for_tenant(state.str("tenant_id")).await?;
        Ok(client.delete_role_binding(state.uuid("id")?).await?)
    }
}
