//! `basalt_tenant_quota`: a tenant's capacity on one cluster (vCPUs, memory, VM
//! count, and optionally volume disk), over `/v1/quotas` at system scope: the provider's staff assign it
//! with the tenant in the body, without entering the tenant. Holding a quota on
//! a cluster is what lets a tenant see the cluster and run VMs on it.

use async_trait::async_trait;
use basalt_client::{CreateQuota, Quota, UpdateQuota};

use crate::framework::schema::validators::int_range;
use crate::framework::{Attribute, Context, Error, Mode, Obj, RestResource, Schema};
use crate::value::Value;

pub struct TenantQuotaResource;

/// The API's limits (`vcpus`, `memory_mib`, `max_vms`).
const LIMITS: [(&str, i64); 3] = [("vcpus", 100_000), ("memory_mib", 1_073_741_824), ("max_vms", 10_000)];

#[async_trait]
impl RestResource for TenantQuotaResource {
    type Object = Quota;
    type Create = CreateQuota;
    type Update = UpdateQuota;

    fn type_name(&self) -> &'static str {
        "basalt_tenant_quota"
    }

    fn schema(&self) -> Schema {
        let [vcpus, memory, vms] =
            LIMITS.map(|(name, max)| Attribute::int(name, Mode::Required).validate(int_range(0, max)));
        Schema::new(
            "A tenant's quota on a cluster: how many vCPUs, how much memory and how many VMs its VMs there may use together. Provider staff only (system scope); the provider never enters the tenant for it.",
            vec![
                Attribute::id(),
                Attribute::reference("tenant_id", "The tenant that receives the capacity. Changing it replaces the quota."),
                Attribute::reference("cluster_id", "The cluster the capacity is on. Changing it replaces the quota."),
                vcpus.describe("vCPUs the tenant's VMs on the cluster may use together (0-100000). Never below what they use now."),
                memory.describe("Memory in MiB the tenant's VMs on the cluster may use together (0-1073741824). Never below what they use now."),
                vms.describe("How many VMs the tenant may have on the cluster (0-10000). Never below how many it has."),
                Attribute::int("disk_gib", Mode::Optional)
                    .validate(int_range(0, 1_073_741_824))
                    .describe("GiB of data volumes the tenant may hold on the cluster (0-1073741824). Unset: no limit. Never below what its volumes use now."),
            ],
        )
    }

    fn context(&self) -> Context {
        Context::System
    }

    fn collection(&self, _obj: &Obj) -> Result<String, Error> {
        Ok("/v1/quotas".into())
    }

    fn to_state(&self, q: &Quota, _known: &Obj) -> Obj {
        let mut o = Obj::default();
        o.set("id", Value::string(q.id.to_string()))
            .set("tenant_id", Value::string(q.tenant_id.to_string()))
            .set("cluster_id", Value::string(q.cluster_id.to_string()))
            .set("vcpus", Value::int(q.vcpus))
            .set("memory_mib", Value::int(q.memory_mib))
            .set("max_vms", Value::int(q.max_vms))
            .set("disk_gib", q.disk_gib.map_or(Value::Null, Value::int));
        o
    }

    fn create_body(&self, plan: &Obj) -> Result<CreateQuota, Error> {
        Ok(CreateQuota {
            tenant_id: plan.uuid("tenant_id")?,
            cluster_id: plan.uuid("cluster_id")?,
            vcpus: plan.required_int("vcpus")?,
            memory_mib: plan.required_int("memory_mib")?,
            max_vms: plan.required_int("max_vms")?,
            disk_gib: plan.opt_int("disk_gib")?,
        })
    }

    fn update_body(&self, prior: &Obj, plan: &Obj) -> Result<Option<UpdateQuota>, Error> {
        let req = UpdateQuota {
            vcpus: plan.changed_int(prior, "vcpus")?,
            memory_mib: plan.changed_int(prior, "memory_mib")?,
            max_vms: plan.changed_int(prior, "max_vms")?,
            // Null lifts the limit: sent as an explicit null.
            disk_gib: if plan.changed(prior, "disk_gib") { Some(plan.opt_int("disk_gib")?) } else { None },
        };
        let any = req.vcpus.is_some() || req.memory_mib.is_some() || req.max_vms.is_some() || req.disk_gib.is_some();
        Ok(any.then_some(req))
    }
}
