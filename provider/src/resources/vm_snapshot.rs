//! `basalt_vm_snapshot`: a point-in-time snapshot of a VM, over
//! `/v1/vms/{vm_id}/snapshots` in the VM's tenant. Snapshots cannot change:
//! every argument replaces the snapshot. Import as `VM_ID/SNAPSHOT_ID`, or
//! `TENANT/VM_ID/SNAPSHOT_ID` (tenant id or name) from another tenant's context.

use async_trait::async_trait;
use basalt_client::{CreateSnapshot, Snapshot};
use chrono::SecondsFormat;

use crate::framework::resource::import_state;
use crate::framework::schema::validators::name_of;
use crate::framework::{Attribute, Context, Error, Mode, Obj, RestResource, Schema};
use crate::value::Value;

pub struct VmSnapshotResource;

#[async_trait]
impl RestResource for VmSnapshotResource {
    type Object = Snapshot;
    type Create = CreateSnapshot;
    /// Never sent: snapshots do not change.
    type Update = CreateSnapshot;

    fn type_name(&self) -> &'static str {
        "basalt_vm_snapshot"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A snapshot of a VM, taken while it runs or is stopped. Deleting the VM deletes its snapshots.",
            vec![
                Attribute::id(),
                Attribute::tenant_id("The tenant of the VM. Defaults to the provider's `tenant`, else the token's own context. Changing it replaces the snapshot."),
                Attribute::reference("vm_id", "The VM to snapshot. Changing it replaces the snapshot."),
                Attribute::identity("name", name_of(
                        |c| c.is_ascii_alphanumeric(),
                        |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
                        "letters, digits, '-' and '_', starting with a letter or digit",
                    ))
                    .describe("Snapshot name. Changing it replaces the snapshot."),
                Attribute::string("created_at", Mode::Computed)
                    .use_state_for_unknown()
                    .describe("When the snapshot was taken (RFC 3339)."),
            ],
        )
    }

    fn context(&self) -> Context {
        Context::InsideTenant
    }

    fn collection(&self, obj: &Obj) -> Result<String, Error> {
        Ok(format!("/v1/vms/{}/snapshots", obj.uuid("vm_id")?))
    }

    fn to_state(&self, s: &Snapshot, _known: &Obj) -> Obj {
        let mut o = Obj::default();
        o.set("id", Value::string(s.id.to_string()))
            .set("tenant_id", Value::string(s.tenant_id.to_string()))
            .set("vm_id", Value::string(s.vm_id.to_string()))
            .set("name", Value::string(&s.name))
            .set("created_at", Value::string(s.created_at.to_rfc3339_opts(SecondsFormat::Micros, true)));
        o
    }

    fn create_body(&self, plan: &Obj) -> Result<CreateSnapshot, Error> {
        Ok(CreateSnapshot { name: plan.required_str("name")?.to_string() })
    }

    /// `VM_ID/SNAPSHOT_ID` or `TENANT/VM_ID/SNAPSHOT_ID`: the snapshot lives under its VM.
    fn import(&self, id: &str) -> Result<Obj, Error> {
        let parts: Vec<&str> = id.split('/').collect();
        let (tenant, vm, snapshot) = match parts[..] {
            [vm, snapshot] => (None, vm, snapshot),
            [tenant, vm, snapshot] if !tenant.is_empty() => (Some(tenant), vm, snapshot),
            _ => {
                return Err(Error::Invalid(format!(
                    "import id {id:?} is not VM_ID/SNAPSHOT_ID (or TENANT/VM_ID/SNAPSHOT_ID)"
                )))
            }
        };
        let with_tenant = tenant.map_or(snapshot.to_string(), |t| format!("{t}/{snapshot}"));
        let mut state = import_state(&self.schema(), &with_tenant, true)?;
        match uuid::Uuid::try_parse(vm) {
            Ok(vm) => state.set("vm_id", Value::string(vm.to_string())),
            Err(_) => return Err(Error::Invalid(format!("import id {id:?}: the VM id {vm:?} is not a UUID"))),
        };
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str = "0192f3c1-7a6b-7c3e-9d2f-4b5a6c7d8e9f";
    const SNAPSHOT: &str = "0192f3c2-1b2c-7d3e-8f40-5a6b7c8d9e0f";

    #[test]
    fn imports_under_the_vm_with_or_without_a_tenant() {
        let state = VmSnapshotResource.import(&format!("{VM}/{SNAPSHOT}")).expect("VM/SNAPSHOT");
        assert_eq!((state.str("vm_id"), state.str("id"), state.str("tenant_id")), (Some(VM), Some(SNAPSHOT), None));
        let state = VmSnapshotResource.import(&format!("acme/{VM}/{SNAPSHOT}")).expect("TENANT/VM/SNAPSHOT");
        assert_eq!(
            (state.str("vm_id"), state.str("id"), state.str("tenant_id")),
            (Some(VM), Some(SNAPSHOT), Some("acme"))
        );
        for bad in [SNAPSHOT.to_string(), format!("not-a-vm/{SNAPSHOT}"), format!("a/b/{VM}/{SNAPSHOT}")] {
            assert!(VmSnapshotResource.import(&bad).is_err(), "{bad}");
        }
    }
}
