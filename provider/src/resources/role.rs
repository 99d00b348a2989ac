//! `basalt_role`: a custom role (a named set of permissions) in a tenant, over
//! `/v1/roles`. Permission names are checked at plan time against the live
//! catalog, with a suggestion for a typo.

use async_trait::async_trait;
use basalt_client::{CreateRole, RequestOptions, Role, UpdateRole};

use crate::framework::schema::validators::{max_len, min_items};
use crate::framework::{Api, AttrPath, Attribute, Diagnostics, Error, Mode, Obj, Resource, Schema};
use crate::value::Value;
use basalt_client::suggest::closest;

pub struct RoleResource;

/// The attributes shared with the `basalt_role` data source.
pub fn to_state(r: &Role) -> Obj {
    let mut o = Obj::default();
    o.set("id", Value::string(r.id.to_string()))
        .set("tenant_id", Value::opt_string(r.tenant_id.map(|t| t.to_string())))
        .set("name", Value::string(&r.name))
        .set("description", Value::string(&r.description))
        .set("permissions", Value::string_set(r.permissions.iter().cloned()));
    o
}

/// Checks `names` against the catalog: one diagnostic on `permissions` per
/// unknown name, suggesting the closest known one.
pub fn check_permission_names<'a>(names: impl IntoIterator<Item = &'a str>, catalog: &[&str], diags: &mut Diagnostics) {
    for name in names {
        if catalog.contains(&name) {
            continue;
        }
        let hint = match closest(name, catalog.iter().copied()) {
            Some(s) => format!(" Did you mean {s:?}?"),
            None => " See the `basalt_permissions` data source (or GET /v1/permissions) for the catalog.".to_string(),
        };
        diags.attr_error(
            &AttrPath::attr("permissions"),
            "Unknown permission",
            format!("{name:?} is not a permission of this Basalt server.{hint}"),
        );
    }
}

#[async_trait]
impl Resource for RoleResource {
    fn type_name(&self) -> &'static str {
        "basalt_role"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A custom role: a named set of permissions that `basalt_role_binding` grants to users. Nobody can put a permission in a role that they do not hold themselves.",
            vec![
                Attribute::id(),
                Attribute::tenant_id("The id of the tenant the role belongs to. Defaults to the provider's `tenant`, else the token's own context (none: a system role). Changing it replaces the role."),
                Attribute::name("Role name, unique in the tenant. Changing it replaces the role."),
                Attribute::string("description", Mode::Optional)
                    .default(Value::string(""))
                    .validate(max_len(1024))
                    .describe("What the role is for."),
                Attribute::string_set("permissions", Mode::Required)
                    .validate(min_items(1))
                    .describe("`resource:action` permission names from the catalog (`basalt_permissions`), at least one. Checked at plan time."),
            ],
        )
    }

    async fn check_plan(&self, api: &Api, _prior: Option<&Obj>, planned: &Obj, diags: &mut Diagnostics) {
        let Some(names) = planned.strings("permissions") else { return };
        match api.permission_catalog().await {
            Ok(catalog) => {
                let known: Vec<&str> = catalog.iter().map(|p| p.name.as_str()).collect();
                check_permission_names(names.iter().map(String::as_str), &known, diags);
            }
            Err(e) => diags.warning(
                "Permission names not checked",
                format!("The permission catalog could not be read ({e}); the server checks the names on apply."),
            ),
        }
    }

    async fn create(&self, api: &Api, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error> {
        let client = api.for_tenant(plan.str("tenant_id")).await?;
        let req = CreateRole {
            tenant_id: None,
            name: plan.required_str("name")?.to_string(),
            description: plan.str("description").map(String::from),
            permissions: plan.required_strings("permissions")?,
        };
        Ok(to_state(&client.create_role(&req, opts).await?))
    }

    async fn read(&self, api: &Api, state: &Obj) -> Result<Obj, Error> {
        let client = api.for_tenant(state.str("tenant_id")).await?;
        Ok(to_state(&client.get_role(state.uuid("id")?).await?))
    }

    async fn update(&self, api: &Api, prior: &Obj, plan: &Obj) -> Result<Obj, Error> {
        let client = api.for_tenant(prior.str("tenant_id")).await?;
        let changed = |n: &str| plan.get(n) != prior.get(n);
        let req = UpdateRole {
            description: plan.str("description").filter(|_| changed("description")).map(String::from),
            permissions: if changed("permissions") { Some(plan.required_strings("permissions")?) } else { None },
        };
        Ok(to_state(&client.update_role(prior.uuid("id")?, &req, &RequestOptions::default()).await?))
    }

    async fn delete(&self, api: &Api, state: &Obj) -> Result<(), Error> {
        let client = api.for_tenant(state.str("tenant_id")).await?;
        Ok(client.delete_role(state.uuid("id")?).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_gets_a_suggestion_on_the_attribute() {
        let mut diags = Diagnostics::default();
        check_permission_names(["user:read", "user:raed"], &["user:read", "user:list"], &mut diags);
        let v = diags.into_vec();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].attribute, Some(AttrPath::attr("permissions").to_proto()));
        assert!(v[0].detail.contains("Did you mean \"user:read\"?"), "{}", v[0].detail);
    }
}
