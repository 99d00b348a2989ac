//! The `examples/modules/msp-onboarding` module through the real Terraform CLI,
//! as a provider admin: a root configuration with a cluster on libvirt's test
//! driver and a public template onboards two customers with two instances of
//! the module in one apply — one with a starter VM, one without. The API shows
//! every object (tenant, admin and operator users, the tenant-admin binding, the
//! operator's cluster-scoped binding, the quota, the running VM), the operator
//! can act on that cluster only, a second plan is clean, and destroy leaves
//! nothing.

use basalt_acceptance_tests::server::TestServer;
use basalt_acceptance_tests::terraform::{terraform_binary, Terraform, APPLY, DESTROY, GET, PLAN_CLEAN, PROVIDER};
use basalt_client::{
    AuthzCheck, AuthzDecision, Client, CreateRole, CreateTenant, LoginRequest, Page, Quota, RequestOptions,
    RoleBinding, TenantState, Vm, VmState,
};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const TENANT_ADMIN: &str = "00000000-0000-7000-8000-000000000004";
const PASSWORD: &str = "correct horse battery staple";

/// The module's default `operator_permissions`, sorted as the API answers.
const OPERATOR_PERMISSIONS: &[&str] = &[
    "cluster:list",
    "cluster:read",
    "operation:list",
    "operation:read",
    "snapshot:create",
    "snapshot:delete",
    "snapshot:list",
    "snapshot:read",
    "snapshot:revert",
    "template:list",
    "template:read",
    "vm:console",
    "vm:create",
    "vm:delete",
    "vm:list",
    "vm:power",
    "vm:read",
    "vm:resize",
];

/// The root configuration; `region` names where the cluster and the template
/// go (a federated install with several regions needs it).
fn config(source: &str, suffix: &str, region: Option<&str>) -> String {
    let region = region.map(|r| format!("  region     = \"{r}\"\n")).unwrap_or_default();
    format!(
        r#"{PROVIDER}

resource "basalt_cluster" "c" {{
  name  = "acc-c-{suffix}"
  hosts = ["test:///default?name=acc-onb-{suffix}"]
{region}}}

# No tenant anywhere: a public template every customer can use.
resource "basalt_template" "small" {{
  name       = "small-{suffix}"
  vcpus      = 1
  memory_mib = 512
{region}}}

module "acme" {{
  source = "{source}"

  customer          = "acme-{suffix}"
  display_name      = "Acme Corp"
  admin_username    = "alice"
  admin_email       = "alice@acme.example"
  admin_password    = "{PASSWORD}"
  operator_password = "{PASSWORD}"
  cluster_id        = basalt_cluster.c.id
  vcpus             = 4
  memory_mib        = 4096
  max_vms           = 3
  template_id       = basalt_template.small.id
}}

# The defaults: no starter VM.
module "globex" {{
  source = "{source}"

  customer       = "globex-{suffix}"
  admin_username = "gina"
  admin_password = "{PASSWORD}"
  cluster_id     = basalt_cluster.c.id
}}

output "cluster_id" {{ value = basalt_cluster.c.id }}
output "template_id" {{ value = basalt_template.small.id }}
output "acme_tenant_id" {{ value = module.acme.tenant_id }}
output "acme_admin_user_id" {{ value = module.acme.admin_user_id }}
output "acme_operator_user_id" {{ value = module.acme.operator_user_id }}
output "acme_operator_role_id" {{ value = module.acme.operator_role_id }}
output "acme_operator_binding_id" {{ value = module.acme.operator_binding_id }}
output "acme_quota_id" {{ value = module.acme.quota_id }}
output "acme_vm_id" {{ value = module.acme.vm_id }}
output "globex_tenant_id" {{ value = module.globex.tenant_id }}
output "globex_admin_user_id" {{ value = module.globex.admin_user_id }}
output "globex_operator_user_id" {{ value = module.globex.operator_user_id }}
output "globex_quota_id" {{ value = module.globex.quota_id }}
output "globex_vm_id" {{ value = coalesce(module.globex.vm_id, "none") }}
"#
    )
}

fn uuid(s: &str) -> Uuid {
    Uuid::try_parse(s).unwrap_or_else(|_| panic!("{s:?} is not a UUID"))
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

/// Checks one onboarded customer through the API: the tenant, both users, the
/// tenant-admin binding, the operator role and its cluster-scoped binding, and
/// the quota. Returns the tenant's client.
async fn check_customer(server: &TestServer, tf: &Terraform, prefix: &str, cluster_id: Uuid) -> Client {
    let out = |name: &str| {
        let name = format!("{prefix}_{name}");
        async move { tf.output(&name).await }
    };
    let tenant_id = out("tenant_id").await;
    let tenant = server.admin.get_tenant(uuid(&tenant_id)).await.expect("the tenant exists");
    assert_eq!(tenant.state, TenantState::Active);
    let client = in_tenant(server, &tenant_id).await;

    let (admin_id, operator_id) = (uuid(&out("admin_user_id").await), uuid(&out("operator_user_id").await));
    let admin = client.get_user(admin_id).await.expect("the admin user exists in the tenant");
    assert_eq!(admin.tenant_id, Some(uuid(&tenant_id)));
    assert!(admin.has_password);
    let operator = client.get_user(operator_id).await.expect("the operator user exists in the tenant");
    assert_eq!(operator.username, "operator");

    let bindings = client.list_role_bindings("limit=100").await.expect("list bindings").items;
    let admin_binding = bindings.iter().find(|b| b.user_id == Some(admin_id)).expect("the admin is bound");
    assert_eq!(
        (admin_binding.role_id.to_string().as_str(), admin_binding.scope.as_str(), admin_binding.cluster_id),
        (TENANT_ADMIN, "tenant", None),
        "the admin holds tenant-admin in the whole tenant"
    );
    let op_bindings: Vec<&RoleBinding> = bindings.iter().filter(|b| b.user_id == Some(operator_id)).collect();
    assert_eq!(op_bindings.len(), 1, "the operator has exactly one binding: {op_bindings:?}");
    let op_binding = op_bindings[0];
    assert_eq!((op_binding.scope.as_str(), op_binding.cluster_id), ("cluster", Some(cluster_id)), "cluster scope");
    let role = client.get_role(op_binding.role_id).await.expect("the operator role exists in the tenant");
    assert_eq!(role.name, "operator");
    assert_eq!(role.permissions, OPERATOR_PERMISSIONS, "the module's default operator permissions");

    let quota: Quota = server.admin.get_at(&format!("/v1/quotas/{}", out("quota_id").await)).await.expect("quota");
    assert_eq!((quota.tenant_id, quota.cluster_id), (uuid(&tenant_id), cluster_id));
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msp_onboarding_module_two_customers() {
    let server = TestServer::start().await;
    onboard_two_customers(&server, None).await;
    server.stop().await;
}

/// The same module, unchanged, through the global controller of a federation
/// (two regions; the cluster and template in `r1`): the customers' tenants,
/// users, roles and bindings live at the controller, their quota and VM in r1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msp_onboarding_module_through_a_federated_install() {
    let server = TestServer::start_federated().await;
    onboard_two_customers(&server, Some("r1")).await;
    let regions: Page<basalt_client::Region> = server.admin.get_at("/v1/regions").await.expect("regions");
    assert!(regions.items.iter().all(|r| r.health == "healthy"), "the regions stayed healthy: {:?}", regions.items);
    server.stop().await;
}

async fn onboard_two_customers(server: &TestServer, region: Option<&str>) {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let tf = Terraform::new(bin, &server.endpoint, &server.admin_token);
    let suffix = &Uuid::new_v4().simple().to_string()[..8];

    let source = tf.copy_example_module("msp-onboarding");
    tf.write_config(&config(&source, suffix, region));
    tf.expect(0, GET).await;
    let started = std::time::Instant::now();
    tf.expect(0, APPLY).await;
    eprintln!("apply of two customers took {:?}", started.elapsed());
    tf.expect(0, PLAN_CLEAN).await;

    let cluster_id = uuid(&tf.output("cluster_id").await);
    let template_id = tf.output("template_id").await;

    // acme: everything, with its starter VM running from the public template.
    let acme = check_customer(server, &tf, "acme", cluster_id).await;
    let acme_tenant = tf.output("acme_tenant_id").await;
    assert_eq!(server.admin.get_tenant(uuid(&acme_tenant)).await.expect("tenant").display_name, "Acme Corp");
    let vm_id = tf.output("acme_vm_id").await;
    let vm: Vm = acme.get_at(&format!("/v1/vms/{vm_id}")).await.expect("the starter VM exists");
    assert_eq!((vm.name.as_str(), vm.state), ("starter", VmState::Running));
    assert_eq!((vm.cluster_id, vm.template_id.to_string()), (cluster_id, template_id.clone()));
    let quota: Quota =
        server.admin.get_at(&format!("/v1/quotas/{}", tf.output("acme_quota_id").await)).await.expect("quota");
    assert_eq!((quota.vcpus, quota.memory_mib, quota.max_vms), (4, 4096, 3));
    assert_eq!((quota.vcpus_used, quota.memory_used_mib, quota.vms_used), (1, 512, 1), "the VM uses the quota");

    // The operator signs in and holds the role on that cluster only.
    let login =
        LoginRequest { username: "operator".into(), password: PASSWORD.into(), tenant: Some(format!("acme-{suffix}")) };
    let token = Client::new(&server.endpoint, None).login(&login).await.expect("the operator logs in");
    let operator = Client::new(&server.endpoint, Some(token.token));
    let check = |cluster_id: Option<Uuid>| {
        let operator = operator.clone();
        async move {
            let req = AuthzCheck { permission: "vm:create".into(), cluster_id };
            let d: AuthzDecision = operator.authz_check(&req).await.expect("authz check");
            d
        }
    };
    let on_cluster = check(Some(cluster_id)).await;
    assert!(on_cluster.allowed, "vm:create on the cluster: {on_cluster:?}");
    assert_eq!(on_cluster.binding_id.map(|b| b.to_string()), Some(tf.output("acme_operator_binding_id").await));
    assert!(!check(None).await.allowed, "not in the whole tenant");
    assert!(!check(Some(Uuid::now_v7())).await.allowed, "not on another cluster");

    // globex: the module's defaults, no VM; and it sees nothing of acme.
    let globex = check_customer(server, &tf, "globex", cluster_id).await;
    assert_eq!(tf.output("globex_vm_id").await, "none", "no template, no VM");
    let vms: Page<Vm> = globex.get_at("/v1/vms").await.expect("list VMs");
    assert!(vms.items.is_empty(), "globex has no VM: {:?}", vms.items);
    let quota: Quota =
        server.admin.get_at(&format!("/v1/quotas/{}", tf.output("globex_quota_id").await)).await.expect("quota");
    assert_eq!((quota.vcpus, quota.memory_mib, quota.max_vms, quota.vms_used), (8, 16384, 10, 0), "defaults");
    assert!(gone(&globex, &format!("/v1/vms/{vm_id}")).await, "acme's VM does not exist for globex");
    assert!(gone(&globex, &format!("/v1/users/{}", tf.output("acme_admin_user_id").await)).await);

    // Destroy: each tenant's last administrator stays with it (a warning), and
    // the tenants, quotas, VM, cluster and template go.
    let mut ids = std::collections::HashMap::new();
    for name in [
        "acme_tenant_id",
        "acme_quota_id",
        "acme_operator_user_id",
        "acme_operator_role_id",
        "acme_operator_binding_id",
        "globex_tenant_id",
        "globex_quota_id",
    ] {
        ids.insert(name, tf.output(name).await);
    }
    let id = |name: &str| ids[name].clone();
    let out = tf.expect(0, DESTROY).await;
    assert!(out.contains("last administrator"), "{out}");
    for path in [
        format!("/v1/tenants/{}", id("acme_tenant_id")),
        format!("/v1/tenants/{}", id("globex_tenant_id")),
        format!("/v1/quotas/{}", id("acme_quota_id")),
        format!("/v1/quotas/{}", id("globex_quota_id")),
        format!("/v1/clusters/{cluster_id}"),
        format!("/v1/templates/{template_id}"),
    ] {
        assert!(gone(&server.admin, &path).await, "{path} is gone");
    }
    // The tenants are gone, so what was inside them cannot be asked for through
    // the API any more (not even by switching in): count rows instead.
    let err = server.admin.switch_tenant(&id("acme_tenant_id")).await.expect_err("acme is gone");
    assert_eq!(err.status(), Some(404));
    for url in server.database_urls() {
        let mut conn = PgConnection::connect(url).await.expect("admin connection");
        let (vms,): (i64,) = sqlx::query_as("SELECT count(*) FROM vms").fetch_one(&mut conn).await.expect("count");
        assert_eq!(vms, 0, "no VM is left in {url}");
    }
    let mut conn = PgConnection::connect(server.database_url()).await.expect("admin connection");
    let (roles, bindings): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM roles WHERE id = $1),
                (SELECT count(*) FROM role_bindings WHERE id = $2)",
    )
    .bind(uuid(&id("acme_operator_role_id")))
    .bind(uuid(&id("acme_operator_binding_id")))
    .fetch_one(&mut conn)
    .await
    .expect("count");
    assert_eq!((roles, bindings), (0, 0), "no operator role or operator binding is left");
    let (operators,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE id = $1")
        .bind(uuid(&id("acme_operator_user_id")))
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(operators, 0, "the operator user is deleted");
}

/// A customer onboarded before Terraform: its tenant and its role `ops`, made
/// through the API; `import {}` brings the role under Terraform.
fn import_config(tenant_id: &str, tenant_name: &str, role_id: &str) -> String {
    format!(
        r#"{PROVIDER}

import {{
  to = basalt_role.ops
  id = "{tenant_name}/{role_id}"
}}

resource "basalt_role" "ops" {{
  tenant_id   = "{tenant_id}"
  name        = "ops"
  description = "Operators"
  permissions = ["vm:list", "vm:power", "vm:read"]
}}

output "role_id" {{ value = basalt_role.ops.id }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_block_brings_an_existing_role_under_terraform() {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let server = TestServer::start().await;
    let tf = Terraform::new(bin, &server.endpoint, &server.admin_token);
    let name = format!("acc-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let opts = RequestOptions::default();
    let create = CreateTenant { name: name.clone(), ..Default::default() };
    let tenant = server.admin.create_tenant(&create, &opts).await.expect("create the tenant");
    let inside = in_tenant(&server, &name).await;
    let req = CreateRole {
        tenant_id: None,
        name: "ops".into(),
        description: Some("Operators".into()),
        permissions: vec!["vm:read".into(), "vm:list".into(), "vm:power".into()],
    };
    let role = inside.create_role(&req, &opts).await.expect("create the role");

    tf.write_config(&import_config(&tenant.id.to_string(), &name, &role.id.to_string()));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("basalt_role.ops: Preparing import"), "{plan}");
    assert!(plan.contains("Plan: 1 to import, 0 to add, 0 to change, 0 to destroy."), "{plan}");
    tf.expect(0, APPLY).await;
    assert_eq!(tf.output("role_id").await, role.id.to_string(), "the same role, imported");
    // Once imported, the import block is a no-op: the plan is clean, with or without it.
    tf.expect(0, PLAN_CLEAN).await;
    let after = inside.get_role(role.id).await.expect("the role is still there");
    assert_eq!(after.version, role.version, "importing did not change the role");

    server.stop().await;
}
