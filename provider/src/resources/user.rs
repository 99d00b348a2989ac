//! `basalt_user`: a person or pipeline identity inside a tenant (or at system
//! scope), over `/v1/users`. The password is write-only: sent on create and when
//! it changes, kept in the state as planned, never read back.

use async_trait::async_trait;
use basalt_client::{CreateUser, RequestOptions, UpdateUser, User};

use crate::framework::schema::validators::max_len;
use crate::framework::{Api, AttrPath, Attribute, Diagnostics, Error, Mode, Obj, Resource, Schema};
use crate::value::Value;

pub struct UserResource;

/// The state for `u`; the password is not an API field, so it comes from `password`.
fn to_state(u: &User, password: &Value) -> Obj {
    let mut o = Obj::default();
    o.set("id", Value::string(u.id.to_string()))
        .set("tenant_id", Value::opt_string(u.tenant_id.map(|t| t.to_string())))
        .set("username", Value::string(&u.username))
        .set("email", Value::opt_string(u.email.clone()))
        .set("password", password.clone());
    o
}

/// Username rule of the API: 1–64 of letters, digits, `.`, `_`, `-`, `@`, starting
/// with a letter or digit.
fn username_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_@".contains(c))
}

#[async_trait]
impl Resource for UserResource {
    fn type_name(&self) -> &'static str {
        "basalt_user"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A user: a person or pipeline identity inside one tenant. Grant it roles with `basalt_role_binding`.",
            vec![
                Attribute::id(),
                Attribute::tenant_id("The id of the tenant the user belongs to. Defaults to the provider's `tenant`, else the token's own context. Changing it replaces the user."),
                Attribute::identity("username", std::sync::Arc::new(|v: &Value| match v.as_str() {
                        Some(s) if !username_ok(s) => Err(format!(
                            "{s:?} is not a valid username: 1-64 letters, digits and '.', '_', '-', '@', starting with a letter or digit"
                        )),
                        _ => Ok(()),
                    }))
                    .describe("Login name, unique in the tenant. Changing it replaces the user."),
                Attribute::string("email", Mode::Optional).validate(max_len(254)).describe("Contact address."),
                Attribute::string("password", Mode::Optional)
                    .sensitive()
                    .validate(std::sync::Arc::new(|v: &Value| match v.as_str() {
                        Some(s) if !(12..=1024).contains(&s.chars().count()) => {
                            Err("must be 12 to 1024 characters".to_string())
                        }
                        _ => Ok(()),
                    }))
                    .describe("Login password (12-1024 characters). Write-only: Basalt stores a hash, so the provider keeps the configured value in the state and cannot detect a change made elsewhere."),
            ],
        )
    }

    async fn check_plan(&self, _api: &Api, prior: Option<&Obj>, planned: &Obj, diags: &mut Diagnostics) {
        let Some(prior) = prior else { return };
        for name in ["email", "password"] {
            if !prior.get(name).is_null() && planned.get(name).is_null() {
                diags.attr_error(
                    &AttrPath::attr(name),
                    format!("Cannot remove `{name}`"),
                    format!("Basalt cannot clear a user's {name} once set; set a new value instead."),
                );
            }
        }
    }

    async fn create(&self, api: &Api, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error> {
        let client = api.for_tenant(plan.str("tenant_id")).await?;
        let req = CreateUser {
            tenant_id: None,
            username: plan.required_str("username")?.to_string(),
            email: plan.str("email").map(String::from),
            password: plan.str("password").map(String::from),
        };
        Ok(to_state(&client.create_user(&req, opts).await?, plan.get("password")))
    }

    async fn read(&self, api: &Api, state: &Obj) -> Result<Obj, Error> {
        let client = api.for_tenant(state.str("tenant_id")).await?;
        Ok(to_state(&client.get_user(state.uuid("id")?).await?, state.get("password")))
    }

    async fn update(&self, api: &Api, prior: &Obj, plan: &Obj) -> Result<Obj, Error> {
        let client = api.for_tenant(prior.str("tenant_id")).await?;
        let changed = |n: &str| plan.get(n) != prior.get(n);
        let req = UpdateUser {
            email: plan.str("email").filter(|_| changed("email")).map(String::from),
            password: plan.str("password").filter(|_| changed("password")).map(String::from),
            disabled: None,
        };
        let user = client.update_user(prior.uuid("id")?, &req, &RequestOptions::default()).await?;
        Ok(to_state(&user, plan.get("password")))
    }

    async fn delete(&self, api: &Api, state: &Obj) -> Result<(), Error> {
        let client = api.for_tenant(state.str("tenant_id")).await?;
        Ok(client.delete_user(state.uuid("id")?).await?)
    }
}
