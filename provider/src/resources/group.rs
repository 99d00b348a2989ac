//! `basalt_group`: a group of a tenant's users, over `/v1/groups`. Its members
//! (`member_ids`) are kept in step through `/v1/groups/{id}/members`: the set is
//! authoritative, so members added elsewhere are removed on the next apply. A
//! `basalt_role_binding` with `group_id` grants its role to every member.

use std::collections::BTreeSet;

use async_trait::async_trait;
use basalt_client::{Client, CreateGroup, Group, GroupMember, RequestOptions, UpdateGroup};

use crate::framework::schema::validators::{each, max_len, uuid};
use crate::framework::{Attribute, Context, Error, Mode, Obj, RestResource, Schema};
use crate::value::Value;

pub struct GroupResource;

/// The members the plan (or state) names.
fn wanted(obj: &Obj) -> BTreeSet<String> {
    obj.strings("member_ids").unwrap_or_default().into_iter().collect()
}

async fn members(client: &Client, group: &str) -> Result<BTreeSet<String>, Error> {
    let members: Vec<GroupMember> = client.get_at(&format!("{group}/members")).await?;
    Ok(members.into_iter().map(|m| m.user_id.to_string()).collect())
}

/// Adds and removes members until the group holds exactly `want`.
async fn sync_members(client: &Client, group: &str, want: &BTreeSet<String>) -> Result<(), Error> {
    let have = members(client, group).await?;
    for user in want.difference(&have) {
        client.put_at(&format!("{group}/members/{user}")).await?;
    }
    for user in have.difference(want) {
        client.delete_at(&format!("{group}/members/{user}")).await?;
    }
    Ok(())
}

impl GroupResource {
    async fn state_with_members(&self, client: &Client, group: &Group, known: &Obj) -> Result<Obj, Error> {
        let mut state = self.to_state(group, known);
        let path = format!("/v1/groups/{}", group.id);
        state.set("member_ids", Value::string_set(members(client, &path).await?));
        Ok(state)
    }
}

#[async_trait]
impl RestResource for GroupResource {
    type Object = Group;
    type Create = CreateGroup;
    type Update = UpdateGroup;

    fn type_name(&self) -> &'static str {
        "basalt_group"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A group of a tenant's users. A `basalt_role_binding` with `group_id` grants its role to every member, and taking a user out of the group takes the role away.",
            vec![
                Attribute::id(),
                Attribute::tenant_id("The id of the tenant the group belongs to. Defaults to the provider's `tenant`, else the token's own context. Changing it replaces the group."),
                Attribute::name("Group name, unique in the tenant. Changing it replaces the group."),
                Attribute::string("description", Mode::Optional)
                    .default(Value::string(""))
                    .validate(max_len(1024))
                    .describe("What the group is for."),
                Attribute::string_set("member_ids", Mode::Optional)
                    .default(Value::string_set(Vec::<String>::new()))
                    .validate(each(uuid()))
                    .describe("Ids of the users in the group (users of the same tenant). Authoritative: members added outside Terraform are removed on the next apply."),
            ],
        )
    }

    fn context(&self) -> Context {
        Context::InsideTenant
    }

    fn collection(&self, _obj: &Obj) -> Result<String, Error> {
        Ok("/v1/groups".into())
    }

    fn to_state(&self, g: &Group, known: &Obj) -> Obj {
        let mut o = Obj::default();
        o.set("id", Value::string(g.id.to_string()))
            .set("tenant_id", Value::string(g.tenant_id.to_string()))
            .set("name", Value::string(&g.name))
            .set("description", Value::string(&g.description))
            .set("member_ids", known.get("member_ids").clone());
        o
    }

    fn create_body(&self, plan: &Obj) -> Result<CreateGroup, Error> {
        Ok(CreateGroup {
            tenant_id: None,
            name: plan.required_str("name")?.to_string(),
            description: plan.str("description").map(String::from),
        })
    }

    fn update_body(&self, prior: &Obj, plan: &Obj) -> Result<Option<UpdateGroup>, Error> {
        let changed = plan.changed(prior, "description");
        Ok(changed.then(|| UpdateGroup { description: plan.str("description").map(String::from) }))
    }

    async fn create(&self, client: &Client, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error> {
        // A retried create (same idempotency key) answers the same group: the
        // member sync below then only adds what is still missing.
        let group: Group = client.post_at("/v1/groups", &self.create_body(plan)?, opts).await?;
        let path = format!("/v1/groups/{}", group.id);
        if let Err(e) = sync_members(client, &path, &wanted(plan)).await {
            // Nothing half-made: a group whose members could not be set goes again.
            if let Err(cleanup) = client.delete_at(&path).await {
                tracing::warn!(group = %group.id, error = %cleanup, "could not remove the group after a failed create");
            }
            return Err(e);
        }
        self.state_with_members(client, &group, plan).await
    }

    async fn read(&self, client: &Client, state: &Obj) -> Result<Obj, Error> {
        let group: Group = client.get_at(&self.path(state)?).await?;
        self.state_with_members(client, &group, state).await
    }

    async fn update(&self, client: &Client, prior: &Obj, plan: &Obj) -> Result<Obj, Error> {
        let path = self.path(prior)?;
        let group: Group = match self.update_body(prior, plan)? {
            Some(body) => client.patch_at(&path, &body, &RequestOptions::default()).await?,
            None => client.get_at(&path).await?,
        };
        sync_members(client, &path, &wanted(plan)).await?;
        self.state_with_members(client, &group, plan).await
    }
}
