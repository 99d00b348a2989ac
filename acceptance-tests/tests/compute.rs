//! The compute resources (`basalt_region`, `basalt_cluster`,
//! `basalt_tenant_quota`, `basalt_template`, `basalt_vm`, `basalt_vm_snapshot`)
//! and data sources (`basalt_regions`, `basalt_cluster`, `basalt_template`)
//! through the real Terraform CLI, as a provider admin (system-scope token) on
//! libvirt's test driver: a region-less cluster, a tenant with a quota, a public
//! template, a VM in the tenant and a snapshot of it; a clean second plan;
//! resize in place; stop; a VM deleted outside Terraform is planned again;
//! import of the quota and the VM; a `timeouts` block; destroy, checked through
//! the API. Plus a VM over its tenant's quota: the apply fails naming the quota.

use basalt_acceptance_tests::server::TestServer;
use basalt_acceptance_tests::terraform::{terraform_binary, Terraform, APPLY, PLAN_CLEAN, PROVIDER};
use basalt_client::{Client, Operation, PowerState, Quota, Snapshot, Vm, VmState};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const DESTROY: &[&str] = &["destroy", "-auto-approve", "-input=false", "-no-color"];

/// What changes between the steps of the lifecycle test.
struct Step {
    vcpus: Option<u32>,
    power_state: &'static str,
    timeouts: bool,
}

/// A cluster on libvirt's test driver (`cluster_extra`: one more argument), a
/// tenant, the tenant's quota there of (vcpus, memory_mib, max_vms), and a public
/// template (1 vCPU, 512 MiB).
fn foundation(suffix: &str, cluster_extra: &str, (vcpus, memory_mib, max_vms): (u32, u32, u32)) -> String {
    format!(
        r#"resource "basalt_cluster" "c" {{
  name  = "acc-c-{suffix}"
  hosts = ["test:///default?name=acc-{suffix}"]
  {cluster_extra}
}}

resource "basalt_tenant" "t" {{
  name = "acc-{suffix}"
}}

resource "basalt_tenant_quota" "q" {{
  tenant_id  = basalt_tenant.t.id
  cluster_id = basalt_cluster.c.id
  vcpus      = {vcpus}
  memory_mib = {memory_mib}
  max_vms    = {max_vms}
  disk_gib   = 20
}}

# No tenant anywhere: a public template.
# Direct kernel boot attributes: the test driver does not read the files.
resource "basalt_template" "small" {{
  name       = "small-{suffix}"
  vcpus      = 1
  memory_mib = 512
  kernel     = "/srv/boot/vmlinuz"
  initrd     = "/srv/boot/initrd.gz"
  cmdline    = "console=ttyS0"
}}"#
    )
}

fn config(suffix: &str, step: &Step) -> String {
    let vcpus = step.vcpus.map(|v| format!("  vcpus       = {v}\n")).unwrap_or_default();
    let timeouts =
        if step.timeouts { "\n  timeouts {\n    create = \"5m\"\n    delete = \"2m30s\"\n  }\n" } else { "" };
    let power_state = step.power_state;
    // No region: the standalone server's only region, `local`.
    let base = foundation(suffix, &format!("alias = \"acc-public-{suffix}\""), (8, 8192, 4));
    format!(
        r#"{PROVIDER}

{base}

resource "basalt_vm" "web" {{
  tenant_id   = basalt_tenant.t.id
  name        = "web"
  cluster_id  = basalt_tenant_quota.q.cluster_id
  template_id = basalt_template.small.id
{vcpus}  power_state = "{power_state}"{timeouts}
}}

resource "basalt_vm_snapshot" "s" {{
  tenant_id = basalt_tenant.t.id
  vm_id     = basalt_vm.web.id
  name      = "before-upgrade"
}}

data "basalt_regions" "all" {{}}

data "basalt_cluster" "by_id" {{
  id = basalt_cluster.c.id
}}

# What the tenant sees: the cluster under its alias, no hosts.
data "basalt_cluster" "as_tenant" {{
  tenant_id  = basalt_tenant.t.id
  name       = basalt_cluster.c.alias
  depends_on = [basalt_tenant_quota.q]
}}

data "basalt_template" "small" {{
  tenant_id = basalt_tenant.t.id
  name      = basalt_template.small.name
}}

output "tenant_id" {{ value = basalt_tenant.t.id }}
output "cluster_id" {{ value = basalt_cluster.c.id }}
output "cluster_region" {{ value = basalt_cluster.c.region }}
output "quota_id" {{ value = basalt_tenant_quota.q.id }}
output "template_id" {{ value = basalt_template.small.id }}
output "vm_id" {{ value = basalt_vm.web.id }}
output "vm_state" {{ value = basalt_vm.web.state }}
output "snapshot_id" {{ value = basalt_vm_snapshot.s.id }}
output "has_local_region" {{ value = contains(data.basalt_regions.all.names, "local") }}
output "staff_hosts" {{ value = join(",", data.basalt_cluster.by_id.hosts) }}
output "tenant_cluster_id" {{ value = data.basalt_cluster.as_tenant.id }}
output "tenant_sees_hosts" {{ value = data.basalt_cluster.as_tenant.hosts != null }}
output "looked_up_template" {{ value = "${{data.basalt_template.small.id}} public=${{data.basalt_template.small.public}}" }}
"#
    )
}

fn uuid(s: &str) -> Uuid {
    Uuid::try_parse(s).expect("a UUID")
}

/// The admin's client switched into `tenant`.
async fn in_tenant(server: &TestServer, tenant: &str) -> Client {
    let t = server.admin.switch_tenant(tenant).await.expect("switch into the tenant");
    server.admin.with_token(t.token)
}

/// `GET path` answered 404 (gone, or not visible).
async fn gone(client: &Client, path: &str) -> bool {
    match client.get_at::<serde_json::Value>(path).await {
        Ok(_) => false,
        Err(e) if e.status() == Some(404) => true,
        Err(e) => panic!("GET {path}: {e}"),
    }
}

async fn vm(tenant: &Client, id: &str) -> Vm {
    tenant.get_at(&format!("/v1/vms/{id}")).await.expect("the VM exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_lifecycle_with_real_terraform() {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let server = TestServer::start().await;
    let tf = Terraform::new(bin, &server.endpoint, &server.admin_token);
    let suffix = &Uuid::new_v4().simple().to_string()[..8];
    let mut step = Step { vcpus: None, power_state: "running", timeouts: false };

    // Create everything; a second plan shows nothing to do.
    tf.write_config(&config(suffix, &step));
    tf.expect(0, APPLY).await;
    tf.expect(0, PLAN_CLEAN).await;
    let tenant_id = tf.output("tenant_id").await;
    let (cluster_id, quota_id) = (tf.output("cluster_id").await, tf.output("quota_id").await);
    let (template_id, vm_id) = (tf.output("template_id").await, tf.output("vm_id").await);
    let snapshot_id = tf.output("snapshot_id").await;
    assert_eq!(tf.output("cluster_region").await, "local", "the server's only region");
    assert_eq!(tf.output("has_local_region").await, "true");
    assert_eq!(tf.output("staff_hosts").await, format!("test:///default?name=acc-{suffix}"));
    assert_eq!(tf.output("tenant_cluster_id").await, cluster_id, "the tenant finds the cluster by its alias");
    assert_eq!(tf.output("tenant_sees_hosts").await, "false", "white-label: no hosts for the tenant");
    assert_eq!(tf.output("looked_up_template").await, format!("{template_id} public=true"));
    assert_eq!(tf.output("vm_state").await, "running");

    // The API agrees.
    let quota: Quota = server.admin.get_at(&format!("/v1/quotas/{quota_id}")).await.expect("quota");
    assert_eq!((quota.tenant_id, quota.cluster_id), (uuid(&tenant_id), uuid(&cluster_id)));
    assert_eq!((quota.vcpus_used, quota.memory_used_mib, quota.vms_used), (1, 512, 1), "the VM uses the quota");
    assert_eq!(quota.disk_gib, Some(20), "the volume limit is set");
    let template: serde_json::Value = server.admin.get_at(&format!("/v1/templates/{template_id}")).await.expect("tpl");
    assert!(template["tenant_id"].is_null(), "the template is public: {template}");
    let acme = in_tenant(&server, &tenant_id).await;
    let web = vm(&acme, &vm_id).await;
    assert_eq!(web.tenant_id, uuid(&tenant_id));
    assert_eq!((web.vcpus, web.memory_mib, web.state), (1, 512, VmState::Running), "the template's size");
    let snapshot: Snapshot =
        acme.get_at(&format!("/v1/vms/{vm_id}/snapshots/{snapshot_id}")).await.expect("the snapshot exists");
    assert_eq!(snapshot.name, "before-upgrade");

    // More vCPUs: a resize in place, same VM, still running.
    step.vcpus = Some(2);
    tf.write_config(&config(suffix, &step));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("basalt_vm.web will be updated in-place"), "{plan}");
    assert!(plan.contains("0 to add, 1 to change, 0 to destroy"), "only the VM changes:\n{plan}");
    tf.expect(0, APPLY).await;
    let web = vm(&acme, &vm_id).await;
    assert_eq!((web.vcpus, web.memory_mib, web.state), (2, 512, VmState::Running));
    assert_eq!(tf.output("vm_id").await, vm_id, "a resize keeps the VM");
    tf.expect(0, PLAN_CLEAN).await;

    // Stop it.
    step.power_state = "stopped";
    tf.write_config(&config(suffix, &step));
    tf.expect(0, APPLY).await;
    let web = vm(&acme, &vm_id).await;
    assert_eq!((web.state, web.power_state), (VmState::Stopped, PowerState::Stopped), "the API shows it stopped");
    tf.expect(0, PLAN_CLEAN).await;

    // Deleted outside Terraform: the VM (and its snapshot, gone with it) are planned again.
    let op: Option<Operation> = acme.delete_at(&format!("/v1/vms/{vm_id}")).await.expect("out-of-band delete");
    let op = op.expect("a VM delete is an operation");
    acme.wait_operation(op.id, std::time::Duration::from_secs(60)).await.expect("the delete finishes");
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("basalt_vm.web will be created"), "{plan}");
    assert!(plan.contains("basalt_vm_snapshot.s will be created"), "{plan}");
    tf.expect(0, APPLY).await;
    let vm_id = tf.output("vm_id").await;
    assert_eq!(vm(&acme, &vm_id).await.state, VmState::Stopped, "re-created as configured");
    tf.expect(0, PLAN_CLEAN).await;

    // Import: the quota, the public template and the cluster by id (system scope),
    // the VM by TENANT/ID; all plan clean.
    tf.expect(
        0,
        &["state", "rm", "basalt_tenant_quota.q", "basalt_vm.web", "basalt_template.small", "basalt_cluster.c"],
    )
    .await;
    tf.expect(0, &["import", "-input=false", "-no-color", "basalt_tenant_quota.q", &quota_id]).await;
    tf.expect(0, &["import", "-input=false", "-no-color", "basalt_template.small", &template_id]).await;
    tf.expect(0, &["import", "-input=false", "-no-color", "basalt_cluster.c", &cluster_id]).await;
    tf.expect(0, &["import", "-input=false", "-no-color", "basalt_vm.web", &format!("{tenant_id}/{vm_id}")]).await;
    tf.expect(0, PLAN_CLEAN).await;
    assert_eq!(tf.output("vm_id").await, vm_id);

    // A timeouts block is a local setting: an update in place that calls nothing.
    step.timeouts = true;
    tf.write_config(&config(suffix, &step));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("basalt_vm.web will be updated in-place") && plan.contains("timeouts"), "{plan}");
    let version = vm(&acme, &vm_id).await.version;
    tf.expect(0, APPLY).await;
    assert_eq!(vm(&acme, &vm_id).await.version, version, "the VM was not touched");
    tf.expect(0, PLAN_CLEAN).await;

    // Destroy leaves nothing.
    tf.expect(0, DESTROY).await;
    for path in [
        format!("/v1/tenants/{tenant_id}"),
        format!("/v1/quotas/{quota_id}"),
        format!("/v1/clusters/{cluster_id}"),
        format!("/v1/templates/{template_id}"),
    ] {
        assert!(gone(&server.admin, &path).await, "{path} is gone");
    }
    // The tenant is gone, so its VMs can no longer be asked for through the API: count rows.
    let mut conn = PgConnection::connect(server.database_url()).await.expect("admin connection");
    let (vms, snapshots): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM vms), (SELECT count(*) FROM vm_snapshots)")
            .fetch_one(&mut conn)
            .await
            .expect("count");
    assert_eq!((vms, snapshots), (0, 0), "no VM or snapshot is left");

    server.stop().await;
}

fn over_quota_config(suffix: &str) -> String {
    let base = foundation(suffix, "region = basalt_region.r.name", (4, 1024, 2));
    format!(
        r#"{PROVIDER}

resource "basalt_region" "r" {{
  name     = "acc-r-{suffix}"
  endpoint = "http://127.0.0.1:9"
}}

{base}

resource "basalt_vm" "big" {{
  tenant_id   = basalt_tenant.t.id
  name        = "big"
  cluster_id  = basalt_tenant_quota.q.cluster_id
  template_id = basalt_template.small.id
  memory_mib  = 4096

  timeouts {{
    create = "2m"
  }}
}}

output "tenant_id" {{ value = basalt_tenant.t.id }}
output "region_id" {{ value = basalt_region.r.id }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_over_quota_fails_naming_the_quota() {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let server = TestServer::start().await;
    let tf = Terraform::new(bin, &server.endpoint, &server.admin_token);
    let suffix = &Uuid::new_v4().simple().to_string()[..8];

    tf.write_config(&over_quota_config(suffix));
    // Terraform wraps diagnostic text: compare with whitespace collapsed.
    let out = tf.expect(1, APPLY).await.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("Quota exceeded"), "{out}");
    assert!(out.contains("memory_mib: 4096 more requested, 0 of 1024 in use"), "names the limit:\n{out}");
    assert!(out.contains("memory_mib = 4096"), "points at the attribute:\n{out}");

    // Everything else was made; the VM was not, and is not in the state.
    let state = tf.expect(0, &["state", "list"]).await;
    assert!(state.contains("basalt_tenant_quota.q") && !state.contains("basalt_vm.big"), "{state}");
    let tenant = in_tenant(&server, &tf.output("tenant_id").await).await;
    let vms: basalt_client::Page<Vm> = tenant.get_at("/v1/vms").await.expect("list VMs");
    assert!(vms.items.is_empty(), "no VM was created");

    // The region (and everything in it) goes with a destroy.
    let region_id = tf.output("region_id").await;
    tf.expect(0, DESTROY).await;
    assert!(gone(&server.admin, &format!("/v1/regions/{region_id}")).await, "the region is gone");

    server.stop().await;
}
