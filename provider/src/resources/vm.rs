//! `basalt_vm`: a tenant's virtual machine, over `/v1/vms` in the tenant's
//! context. Every change is an operation the provider waits for (create, resize,
//! start, stop, delete), each within the `timeouts` block's time. A new name,
//! cluster or template replaces the VM; a new size resizes it in place (stopping
//! and starting it again if it runs); `power_state` starts or stops it.

use async_trait::async_trait;
use basalt_client::{Client, CreateVm, Operation, PowerState, RequestOptions, ResizeVm, StopVm, Vm};
use serde::Serialize;

use super::template::{memory_mib, vcpus};
use crate::framework::schema::validators::{name_of, one_of};
use crate::framework::{operation, timeouts};
use crate::framework::{Attribute, Context, Error, Mode, Obj, RestResource, Schema};
use crate::value::Value;

pub struct VmResource;

const POWER_STATES: &[&str] = &["running", "stopped"];

impl VmResource {
    /// Posts an action (`start`, `stop`, `resize`) and waits for its operation.
    async fn act<B: Serialize + Sync>(
        &self,
        client: &Client,
        state: &Obj,
        action: &str,
        body: &B,
        plan: &Obj,
    ) -> Result<(), Error> {
        let path = format!("{}/{action}", self.path(state)?);
        let op: Operation = client.post_at(&path, body, &RequestOptions::default()).await?;
        operation::wait(client, &op, timeouts::of(plan, "update")).await.map(|_| ())
    }

    /// Waits for an operation already running on the VM (one at a time per VM),
    /// e.g. a create that ran out of time in an earlier apply.
    async fn settle(&self, client: &Client, state: &Obj, operation: &str) -> Result<(), Error> {
        let vm: Vm = client.get_at(&self.path(state)?).await?;
        if let Some(op) = vm.operation_id {
            client.wait_operation(op, timeouts::of(state, operation)).await?;
        }
        Ok(())
    }

    /// `err`, with the VM as it is now when it can be read: the work done so far
    /// stays in the Terraform state.
    async fn partial(&self, client: &Client, known: &Obj, err: Error) -> Error {
        match self.read(client, known).await {
            Ok(state) => Error::Partial { state: Box::new(state), err: Box::new(err) },
            Err(_) => err,
        }
    }

    async fn change(&self, client: &Client, prior: &Obj, plan: &Obj) -> Result<(), Error> {
        self.settle(client, prior, "update").await?;
        let power = plan.str("power_state").filter(|_| plan.changed(prior, "power_state"));
        // Resize while stopped: stop first, start last.
        if power == Some("stopped") {
            self.act(client, prior, "stop", &StopVm::default(), plan).await?;
        }
        let resize = ResizeVm {
            vcpus: plan.changed_int(prior, "vcpus")?,
            memory_mib: plan.changed_int(prior, "memory_mib")?,
            restart: true,
        };
        if resize.vcpus.is_some() || resize.memory_mib.is_some() {
            self.act(client, prior, "resize", &resize, plan).await?;
        }
        if power == Some("running") {
            self.act(client, prior, "start", &serde_json::json!({}), plan).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl RestResource for VmResource {
    type Object = Vm;
    type Create = CreateVm;
    type Update = ResizeVm;

    fn type_name(&self) -> &'static str {
        "basalt_vm"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A virtual machine of a tenant, made from a template on a cluster where the tenant holds a quota (`basalt_tenant_quota`). Creating, resizing, starting, stopping and deleting it are operations the provider waits for.",
            vec![
                Attribute::id(),
                Attribute::tenant_id("The tenant the VM belongs to. Defaults to the provider's `tenant`, else the token's own context. Changing it replaces the VM."),
                Attribute::identity("name", name_of(
                        |c| c.is_ascii_alphabetic(),
                        |c| c.is_ascii_alphanumeric() || c == '-',
                        "letters, digits and '-', starting with a letter",
                    ))
                    .describe("VM name, unique in the tenant. Changing it replaces the VM."),
                Attribute::reference("cluster_id", "The cluster to run on; the tenant needs a quota there. Changing it replaces the VM (reference the quota's `cluster_id` so the quota exists first and goes last)."),
                Attribute::reference("template_id", "The template (public or the tenant's own) to make the VM from. Changing it replaces the VM."),
                vcpus(Mode::OptionalComputed)
                    .use_state_for_unknown()
                    .describe("vCPUs (1-256); the template's when left out. A change resizes the VM in place, stopping and starting it if it runs."),
                memory_mib(Mode::OptionalComputed)
                    .use_state_for_unknown()
                    .describe("Memory in MiB (64-1048576); the template's when left out. A change resizes the VM in place, stopping and starting it if it runs."),
                Attribute::string("power_state", Mode::Optional)
                    .default(Value::string("running"))
                    .validate(one_of(POWER_STATES))
                    .describe("`running` (default) or `stopped`. A VM stopped or started outside Terraform is brought back to this."),
                Attribute::string("state", Mode::Computed).describe(
                    "What the VM is doing: `running`, `stopped`, `suspended`, `failed`, or a transitional state (`creating`, `starting`, `stopping`, `migrating`, `deleting`).",
                ),
            ],
        )
        .block(timeouts::block(&["create", "update", "delete"]))
    }

    fn context(&self) -> Context {
        Context::InsideTenant
    }

    fn collection(&self, _obj: &Obj) -> Result<String, Error> {
        Ok("/v1/vms".into())
    }

    fn to_state(&self, vm: &Vm, known: &Obj) -> Obj {
        let mut o = Obj::default();
        o.set("id", Value::string(vm.id.to_string()))
            .set("tenant_id", Value::string(vm.tenant_id.to_string()))
            .set("name", Value::string(&vm.name))
            .set("cluster_id", Value::string(vm.cluster_id.to_string()))
            .set("template_id", Value::string(vm.template_id.to_string()))
            .set("vcpus", Value::int(vm.vcpus))
            .set("memory_mib", Value::int(vm.memory_mib))
            .set("power_state", Value::string(vm.power_state.as_str()))
            .set("state", Value::string(vm.state.as_str()))
            .set(timeouts::BLOCK, known.get(timeouts::BLOCK).clone());
        o
    }

    fn create_body(&self, plan: &Obj) -> Result<CreateVm, Error> {
        Ok(CreateVm {
            tenant_id: None,
            name: plan.required_str("name")?.to_string(),
            cluster_id: plan.uuid("cluster_id")?,
            template_id: plan.uuid("template_id")?,
            vcpus: plan.opt_int("vcpus")?,
            memory_mib: plan.opt_int("memory_mib")?,
            power_state: Some(match plan.str("power_state") {
                Some("stopped") => PowerState::Stopped,
                _ => PowerState::Running,
            }),
        })
    }

    /// POST answers 202 with the `vm.create` operation, whose target is the VM. A
    /// failed create is undone by the server (no state); one that runs out of time
    /// stays in the state, tainted, to be replaced on the next apply.
    async fn create(&self, client: &Client, plan: &Obj, opts: &RequestOptions) -> Result<Obj, Error> {
        let op: Operation = client.post_at(&self.collection(plan)?, &self.create_body(plan)?, opts).await?;
        let mut known = plan.clone();
        known.set("id", Value::string(op.target_id.to_string()));
        match operation::wait(client, &op, timeouts::of(plan, "create")).await {
            Ok(_) => self.read(client, &known).await,
            Err(e @ Error::OperationTimeout { .. }) => Err(self.partial(client, &known, e).await),
            Err(e) => Err(e),
        }
    }

    async fn update(&self, client: &Client, prior: &Obj, plan: &Obj) -> Result<Obj, Error> {
        match self.change(client, prior, plan).await {
            Ok(()) => self.read(client, plan).await,
            Err(e) => Err(self.partial(client, plan, e).await),
        }
    }

    async fn delete(&self, client: &Client, state: &Obj) -> Result<(), Error> {
        self.settle(client, state, "delete").await?;
        if let Some(op) = client.delete_at(&self.path(state)?).await? {
            operation::wait(client, &op, timeouts::of(state, "delete")).await?;
        }
        Ok(())
    }
}
