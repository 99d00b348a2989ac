//! Resources that are one object of an API collection (`/v1/regions`,
//! `/v1/clusters`, `/v1/quotas`, `/v1/templates`, `/v1/vms`,
//! `/v1/vms/{vm}/snapshots`): create is a POST to the collection, read a GET,
//! update a PATCH, delete a DELETE of `collection/id`.
//!
//! A [`RestResource`] declares its schema, its collection, which context it acts
//! in ([`Context`]), the request bodies and the state for an API answer; the
//! default CRUD methods do the rest, and a resource whose work runs as operations
//! (the VM) overrides the ones that differ. [`Rest`] turns it into a
//! [`Resource`] by picking the client for the object's context.

use async_trait::async_trait;
use basalt_client::{Client, Page, RequestOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::diag::Error;
use super::object::Obj;
use super::resource::{import_state, Api, Resource};
use super::schema::validators::uuid;
use super::schema::{Attribute, Mode, Schema};

/// Whose context a resource's requests run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The token's own context, always: provider-wide objects (regions, clusters)
    /// and objects the system scope assigns to tenants (quotas).
    System,
    /// The object's `tenant_id`, else the provider's `tenant`, else the token's own
    /// context ([`Api::for_tenant`]), which may be the system scope (public templates).
    Tenant,
    /// Like [`Context::Tenant`], for objects that only exist inside a tenant (VMs):
    /// with no tenant anywhere, an error on `tenant_id` before any request.
    InsideTenant,
}

/// A resource that is one object of an API collection.
#[async_trait]
pub trait RestResource: Send + Sync {
    /// The API's answer for one object.
    type Object: DeserializeOwned + Send + Sync;
    /// The create request's body.
    type Create: Serialize + Send + Sync;
    /// The update (PATCH) request's body.
    type Update: Serialize + Send + Sync;

    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    fn context(&self) -> Context;

    /// The collection's path, e.g. `/v1/regions`; `obj` (a plan or a state) for
    /// collections under another object.
    fn collection(&self, obj: &Obj) -> Result<String, Error>;

    /// The state for `object`. `known` is the plan or prior state, for attributes
    /// the API does not answer (`timeouts`).
    fn to_state(&self, object: &Self::Object, known: &Obj) -> Obj;

    fn create_body(&self, plan: &Obj) -> Result<Self::Create, Error>;

    /// The PATCH body for what changed from `prior` to `plan`; `None`: nothing to
    /// send (every argument replaces the object, or only local settings changed).
    fn update_body(&self, _prior: &Obj, _plan: &Obj) -> Result<Option<Self::Update>, Error> {
        Ok(None)
    }

    /// The object's own path.
    fn path(&self, obj: &Obj) -> Result<String, Error> {
        Ok(format!("{}/{}", self.collection(obj)?, obj.uuid("id")?))
    }

    /// The state `terraform import ID` starts from (before a read): `ID`, or
    /// `TENANT/ID` for resources acting in a tenant.
    fn import(&self, id: &str) -> Result<Obj, Error> {
        import_state(&self.schema(), id, self.context() != Context::System)
    }

    async fn create(&self, client: &Client, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error> {
        let body = self.create_body(plan)?;
        let created: Self::Object = client.post_at(&self.collection(plan)?, &body, opts).await?;
        Ok(self.to_state(&created, plan))
    }

    async fn read(&self, client: &Client, state: &Obj) -> Result<Obj, Error> {
        let object: Self::Object = client.get_at(&self.path(state)?).await?;
        Ok(self.to_state(&object, state))
    }

    async fn update(&self, client: &Client, prior: &Obj, plan: &Obj) -> Result<Obj, Error> {
        let Some(body) = self.update_body(prior, plan)? else {
            // The plan keeps the id (and the path's other parts): read it as planned.
            return self.read(client, plan).await;
        };
        let updated: Self::Object = client.patch_at(&self.path(prior)?, &body, &RequestOptions::default()).await?;
        Ok(self.to_state(&updated, plan))
    }

    async fn delete(&self, client: &Client, state: &Obj) -> Result<(), Error> {
        client.delete_at(&self.path(state)?).await?;
        Ok(())
    }
}

/// A [`RestResource`] as a [`Resource`].
pub struct Rest<R>(pub R);

impl<R: RestResource> Rest<R> {
    async fn client(&self, api: &Api, obj: &Obj) -> Result<Client, Error> {
        let tenant = obj.str("tenant_id");
        match self.0.context() {
            Context::System => Ok(api.client.clone()),
            Context::InsideTenant
                if tenant.is_none() && api.tenant.is_none() && api.me().await?.tenant_id.is_none() =>
            {
                Err(Error::attr(
                    "tenant_id",
                    "A tenant is required",
                    format!(
                        "A {} lives inside a tenant, and the provider's token acts at system scope: set `tenant_id`, \
                         or the provider's `tenant` (BASALT_TENANT).",
                        self.0.type_name()
                    ),
                ))
            }
            Context::Tenant | Context::InsideTenant => api.for_tenant(tenant).await,
        }
    }
}

#[async_trait]
impl<R: RestResource> Resource for Rest<R> {
    fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    fn schema(&self) -> Schema {
        self.0.schema()
    }

    async fn create(&self, api: &Api, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error> {
        self.0.create(&self.client(api, plan).await?, plan, opts).await
    }

    async fn read(&self, api: &Api, state: &Obj) -> Result<Obj, Error> {
        self.0.read(&self.client(api, state).await?, state).await
    }

    async fn update(&self, api: &Api, prior: &Obj, plan: &Obj) -> Result<Obj, Error> {
        self.0.update(&self.client(api, prior).await?, prior, plan).await
    }

    async fn delete(&self, api: &Api, state: &Obj) -> Result<(), Error> {
        self.0.delete(&self.client(api, state).await?, state).await
    }

    async fn import(&self, _api: &Api, id: &str) -> Result<Obj, Error> {
        self.0.import(id)
    }
}

/// Pages are capped by the API at 500; a context with more objects than this is not plausible.
const MAX_PAGES: usize = 100;

/// Every object of a collection visible in `client`'s context, page by page.
pub async fn list_all<T: DeserializeOwned>(client: &Client, collection: &str) -> Result<Vec<T>, Error> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let path = match &cursor {
            Some(c) => format!("{collection}?limit=500&cursor={c}"),
            None => format!("{collection}?limit=500"),
        };
        let page: Page<T> = client.get_at(&path).await?;
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(all)
}

/// The arguments a data source finds one object by: `id` or `name` (set one),
/// looked up in the context of `tenant_id`. See [`lookup`].
pub fn lookup_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("id", Mode::OptionalComputed)
            .validate(uuid())
            .describe("The object's id. Set `id` or `name`."),
        Attribute::string("name", Mode::OptionalComputed).describe("The object's name. Set `id` or `name`."),
        Attribute::string("tenant_id", Mode::Optional).validate(uuid()).describe(
            "Look in this tenant's context (defaults to the provider's `tenant`, else the token's own context).",
        ),
    ]
}

/// Finds one object of `collection` (a `kind` such as "cluster") for a data
/// source configured with [`lookup_attributes`]: by `id`, or else among every
/// object visible, the one `select` picks from those named `name`. Not finding it
/// is an error on the attribute searched by.
pub async fn lookup<T: DeserializeOwned>(
    api: &Api,
    config: &Obj,
    collection: &str,
    kind: &str,
    select: impl FnOnce(Vec<T>, &str) -> Option<T> + Send,
) -> Result<T, Error> {
    let client = api.for_tenant(config.str("tenant_id")).await?;
    let missing = |attr: &str, what: String| {
        Error::attr(attr, format!("No such {kind}"), format!("no {kind} {what} is visible in this context"))
    };
    match (config.opt_uuid("id")?, config.str("name")) {
        (Some(id), _) => client.get_at(&format!("{collection}/{id}")).await.map_err(|e| match e.status() {
            Some(404) => missing("id", id.to_string()),
            _ => e.into(),
        }),
        (None, Some(name)) => {
            select(list_all(&client, collection).await?, name).ok_or_else(|| missing("name", format!("named {name:?}")))
        }
        (None, None) => Err(Error::attr("id", "Missing value", "Set `id` or `name`.")),
    }
}
