//! `basalt_tenant`: a customer of the MSP, over `/v1/tenants` (create, read,
//! update of the display name, suspend/resume for `state`, soft delete).

use async_trait::async_trait;
use basalt_client::{CreateTenant, RequestOptions, Tenant, TenantState, UpdateTenant};
use chrono::SecondsFormat;

use crate::framework::schema::validators::{max_len, one_of};
use crate::framework::{Api, Attribute, Error, Mode, Obj, Resource, Schema};
use crate::value::Value;

pub const STATES: &[&str] = &["active", "suspended"];

pub struct TenantResource;

/// The attributes shared with the `basalt_tenant` data source, as this resource declares them.
pub fn to_state(t: &Tenant) -> Obj {
    let mut o = Obj::default();
    o.set("id", Value::string(t.id.to_string()))
        .set("name", Value::string(&t.name))
        .set("display_name", Value::string(&t.display_name))
        .set("state", Value::string(t.state.as_str()))
        .set("created_at", Value::string(t.created_at.to_rfc3339_opts(SecondsFormat::Micros, true)));
    o
}

fn wanted_state(plan: &Obj) -> Result<TenantState, Error> {
    let s = plan.str("state").unwrap_or("active");
    TenantState::parse(s)
        .filter(|t| *t != TenantState::Deleted)
        .ok_or_else(|| Error::attr("state", "Invalid value for `state`", "must be active or suspended"))
}

#[async_trait]
impl Resource for TenantResource {
    fn type_name(&self) -> &'static str {
        "basalt_tenant"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A customer tenant. Everything a customer owns lives inside one tenant, isolated from every other.",
            vec![
                Attribute::id(),
                Attribute::name("Unique name: 1-63 lower-case letters, digits and `-`, starting with a letter. Changing it replaces the tenant."),
                Attribute::string("display_name", Mode::Optional)
                    .default(Value::string(""))
                    .validate(max_len(128))
                    .describe("Human-readable name shown in UIs (at most 128 characters)."),
                Attribute::string("state", Mode::Optional)
                    .default(Value::string("active"))
                    .validate(one_of(STATES))
                    .describe("`active` (default) or `suspended`: a suspended tenant can read but every change inside it is refused."),
                Attribute::string("created_at", Mode::Computed)
                    .use_state_for_unknown()
                    .describe("When the tenant was created (RFC 3339)."),
            ],
        )
    }

    async fn create(&self, api: &Api, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error> {
        let req = CreateTenant {
            name: plan.required_str("name")?.to_string(),
            display_name: plan.str("display_name").map(String::from),
            state: Some(wanted_state(plan)?),
            suspend_action: None,
        };
        Ok(to_state(&api.client.create_tenant(&req, opts).await?))
    }

    async fn read(&self, api: &Api, state: &Obj) -> Result<Obj, Error> {
        Ok(to_state(&api.client.get_tenant(state.uuid("id")?).await?))
    }

    async fn update(&self, api: &Api, prior: &Obj, plan: &Obj) -> Result<Obj, Error> {
        let id = prior.uuid("id")?;
        let want = wanted_state(plan)?;
        let was = prior.str("state");
        // Resume before and suspend after the other changes: a suspended tenant refuses changes.
        if want == TenantState::Active && was != Some("active") {
            api.client.resume_tenant(id).await?;
        }
        if plan.get("display_name") != prior.get("display_name") {
            let req = UpdateTenant { display_name: plan.str("display_name").map(String::from), ..Default::default() };
            api.client.update_tenant(id, &req, &RequestOptions::default()).await?;
        }
        if want == TenantState::Suspended && was != Some("suspended") {
            api.client.suspend_tenant(id).await?;
        }
        self.read(api, prior).await
    }

    async fn delete(&self, api: &Api, state: &Obj) -> Result<(), Error> {
        Ok(api.client.delete_tenant(state.uuid("id")?).await?)
    }
}
