//! `basalt_cluster`: a set of libvirt hosts in a region, over `/v1/clusters` at
//! system scope. Hosts and the tenant-facing alias change in place (each new
//! host is contacted as it joins); a new name or region is a new cluster.

use std::sync::Arc;

use async_trait::async_trait;
use basalt_client::{Cluster, CreateCluster, UpdateCluster};

use crate::framework::schema::validators::{basalt_name, each, min_items};
use crate::framework::schema::Validator;
use crate::framework::{Attribute, Context, Error, Mode, Obj, RestResource, Schema};
use crate::value::Value;

pub struct ClusterResource;

/// The cluster's attributes, shared with the `basalt_cluster` data source. A
/// tenant's view has no hosts (null).
pub fn to_state(c: &Cluster) -> Obj {
    let mut o = Obj::default();
    o.set("id", Value::string(c.id.to_string()))
        .set("name", Value::string(&c.name))
        .set("region", Value::string(&c.region))
        .set("alias", Value::string(&c.alias))
        .set("hosts", c.hosts.as_ref().map_or(Value::Null, |h| Value::string_list(h.iter().cloned())));
    o
}

/// A libvirt URI of a driver Basalt drives: `test://`, `qemu://`, `kvm://`, with
/// an optional transport (`qemu+ssh://`).
fn libvirt_uri() -> Validator {
    Arc::new(|v: &Value| {
        let s = v.as_str().unwrap_or_default();
        let driver = s.split_once("://").map(|(scheme, _)| scheme.split('+').next().unwrap_or_default());
        match driver {
            Some("test" | "qemu" | "kvm") if !s.contains(char::is_whitespace) => Ok(()),
            _ => Err(format!(
                "{s:?} is not a libvirt URI Basalt can use, such as test:///default, qemu:///system or qemu+ssh://host/system"
            )),
        }
    })
}

/// A region's name. The state holds the name (what the API answers), so an id
/// would differ from it on every plan: ask for the name instead.
fn region_name() -> Validator {
    let name = basalt_name();
    Arc::new(move |v: &Value| match v.as_str() {
        Some(s) if uuid::Uuid::try_parse(s).is_ok() => {
            Err(format!("{s:?} is a region id: give the region's name instead (e.g. `basalt_region.<name>.name`)"))
        }
        _ => name(v),
    })
}

#[async_trait]
impl RestResource for ClusterResource {
    type Object = Cluster;
    type Create = CreateCluster;
    type Update = UpdateCluster;

    fn type_name(&self) -> &'static str {
        "basalt_cluster"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A cluster: a set of libvirt hosts in one region, where tenants get quotas and run VMs. Provider staff only (system scope). Tenants see it under its `alias`, never its hosts.",
            vec![
                Attribute::id(),
                Attribute::name("The provider's name for the cluster: 1-63 lower-case letters, digits and `-`, starting with a letter. Changing it replaces the cluster."),
                Attribute::string("region", Mode::OptionalComputed)
                    .requires_replace()
                    .use_state_for_unknown()
                    .validate(region_name())
                    .describe("The region's name. May be left out while the server has exactly one region (a standalone server's `local`); the state then holds the server's answer. Changing it replaces the cluster."),
                Attribute::string_list("hosts", Mode::Required)
                    .validate(min_items(1))
                    .validate(each(libvirt_uri()))
                    .describe("libvirt URIs of the hosts, in order: `qemu:///system`, `qemu+ssh://host/system`, or `test:///default` for libvirt's test driver. Every new host must answer when it joins; a host leaves only when no VM runs on it. A URI belongs to one cluster only."),
                Attribute::string("alias", Mode::OptionalComputed)
                    .use_state_for_unknown()
                    .validate(basalt_name())
                    .describe("The name tenants see (white-label); defaults to `name`."),
            ],
        )
    }

    fn context(&self) -> Context {
        Context::System
    }

    fn collection(&self, _obj: &Obj) -> Result<String, Error> {
        Ok("/v1/clusters".into())
    }

    fn to_state(&self, cluster: &Cluster, _known: &Obj) -> Obj {
        let mut state = to_state(cluster);
        if cluster.hosts.is_none() {
            // Only a tenant's view lacks hosts; this resource reads at system scope.
            state.set("hosts", Value::List(Vec::new()));
        }
        state
    }

    fn create_body(&self, plan: &Obj) -> Result<CreateCluster, Error> {
        Ok(CreateCluster {
            name: plan.required_str("name")?.to_string(),
            region: plan.str("region").map(String::from),
            hosts: plan.required_strings("hosts")?,
            alias: plan.str("alias").map(String::from),
        })
    }

    fn update_body(&self, prior: &Obj, plan: &Obj) -> Result<Option<UpdateCluster>, Error> {
        let hosts = if plan.changed(prior, "hosts") { Some(plan.required_strings("hosts")?) } else { None };
        let alias = plan.str("alias").filter(|_| plan.changed(prior, "alias")).map(String::from);
        Ok((hosts.is_some() || alias.is_some()).then_some(UpdateCluster { alias, hosts }))
    }
}
