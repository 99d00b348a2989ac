//! `basalt_template`: a base disk image plus a default size for VMs, over
//! `/v1/templates`. Made in a tenant's context it is the tenant's own (private);
//! made with no tenant at all (system scope) it is public, readable by every
//! tenant. Only public templates name files on the hosts (a base image, or a
//! kernel and initrd for direct kernel boot).

use std::sync::Arc;

use async_trait::async_trait;
use basalt_client::{CreateTemplate, Template, UpdateTemplate};

use crate::framework::schema::validators::int_range;
use crate::framework::{Attribute, Context, Error, Mode, Obj, RestResource, Schema};
use crate::value::Value;

pub struct TemplateResource;

/// `vcpus` as templates and VMs share it (1-256).
pub fn vcpus(mode: Mode) -> Attribute {
    Attribute::int("vcpus", mode).validate(int_range(1, 256))
}

/// `memory_mib` as templates and VMs share it (64-1048576).
pub fn memory_mib(mode: Mode) -> Attribute {
    Attribute::int("memory_mib", mode).validate(int_range(64, 1_048_576))
}

/// A file on the hosts (image, kernel, initrd): absolute, without `..`; fixed
/// for the template's life.
fn host_path(name: &'static str, description: &'static str) -> Attribute {
    Attribute::string(name, Mode::OptionalComputed)
        .requires_replace()
        .use_state_for_unknown()
        .validate(Arc::new(|v: &Value| match v.as_str() {
            Some(s) if !s.is_empty() && (!s.starts_with('/') || s.split('/').any(|p| p == "..")) => {
                Err(format!("{s:?} is not an absolute path on the hosts (without `..`)"))
            }
            _ => Ok(()),
        }))
        .describe(description)
}

/// The template's attributes, shared with the `basalt_template` data source.
pub fn to_state(t: &Template) -> Obj {
    let mut o = Obj::default();
    o.set("id", Value::string(t.id.to_string()))
        .set("tenant_id", Value::opt_string(t.tenant_id.map(|id| id.to_string())))
        .set("name", Value::string(&t.name))
        .set("vcpus", Value::int(t.vcpus))
        .set("memory_mib", Value::int(t.memory_mib))
        .set("disk_gib", Value::int(t.disk_gib))
        .set("image", Value::string(&t.image))
        .set("kernel", Value::string(&t.kernel))
        .set("initrd", Value::string(&t.initrd))
        .set("cmdline", Value::string(&t.cmdline));
    o
}

#[async_trait]
impl RestResource for TemplateResource {
    type Object = Template;
    type Create = CreateTemplate;
    type Update = UpdateTemplate;

    fn type_name(&self) -> &'static str {
        "basalt_template"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "A VM template: a base disk image and the default size of VMs made from it. Public (made at system scope, no tenant) or a tenant's own.",
            vec![
                Attribute::id(),
                Attribute::tenant_id("The tenant that owns the template. Defaults to the provider's `tenant`, else the token's own context; with no tenant at all (a system-scope token, no provider `tenant`) the template is public. Changing it replaces the template."),
                Attribute::name("Template name, unique among the owner's templates. Changing it replaces the template."),
                Attribute::string("region", Mode::Optional)
                    .requires_replace()
                    .not_read_back()
                    .describe("The region whose hosts the template is for (name or id). Needed when the token can see several regions (a federated install); otherwise the only one. Not read back from the API: an import leaves it unset, and the first apply after it records the configured value in place. Changing it replaces the template."),
                vcpus(Mode::Required).describe("Default vCPUs of VMs made from it (1-256). VMs made earlier keep theirs."),
                memory_mib(Mode::Required)
                    .describe("Default memory in MiB of VMs made from it (64-1048576). VMs made earlier keep theirs."),
                Attribute::int("disk_gib", Mode::OptionalComputed)
                    .requires_replace()
                    .use_state_for_unknown()
                    .validate(int_range(1, 65_536))
                    .describe("Disk size in GiB of VMs made from it (1-65536; the server's default, 10, when left out). Changing it replaces the template."),
                host_path("image", "Absolute path of the base qcow2 image on the hosts; VMs get a linked clone. Public templates only; empty (the default): diskless. Changing it replaces the template."),
                host_path("kernel", "Direct kernel boot: absolute path of a kernel on the hosts (with `initrd`). Public templates only. Changing it replaces the template."),
                host_path("initrd", "Direct kernel boot: absolute path of an initrd on the hosts (with `kernel`). Changing it replaces the template."),
                Attribute::string("cmdline", Mode::OptionalComputed)
                    .requires_replace()
                    .use_state_for_unknown()
                    .describe("Kernel command line for direct kernel boot (at most 1024 printable characters). Changing it replaces the template."),
            ],
        )
    }

    fn context(&self) -> Context {
        Context::Tenant
    }

    fn collection(&self, _obj: &Obj) -> Result<String, Error> {
        Ok("/v1/templates".into())
    }

    fn to_state(&self, template: &Template, known: &Obj) -> Obj {
        let mut o = to_state(template);
        o.set("region", known.get("region").clone());
        o
    }

    fn create_body(&self, plan: &Obj) -> Result<CreateTemplate, Error> {
        Ok(CreateTemplate {
            tenant_id: None,
            name: plan.required_str("name")?.to_string(),
            region: plan.str("region").map(String::from),
            vcpus: plan.required_int("vcpus")?,
            memory_mib: plan.required_int("memory_mib")?,
            disk_gib: plan.opt_int("disk_gib")?,
            image: plan.str("image").map(String::from),
            kernel: plan.str("kernel").map(String::from),
            initrd: plan.str("initrd").map(String::from),
            cmdline: plan.str("cmdline").map(String::from),
        })
    }

    fn update_body(&self, prior: &Obj, plan: &Obj) -> Result<Option<UpdateTemplate>, Error> {
        let req = UpdateTemplate {
            vcpus: plan.changed_int(prior, "vcpus")?,
            memory_mib: plan.changed_int(prior, "memory_mib")?,
        };
        Ok((req.vcpus.is_some() || req.memory_mib.is_some()).then_some(req))
    }
}
