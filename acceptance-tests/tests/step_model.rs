//! The step model of terraform-plugin-testing, once, for every resource: a table
//! with one [`Case`] per resource type and one sequence ([`run`]) that each
//! `#[tokio::test]` below drives for its row, on its own server:
//!
//! 1. apply, then `plan -detailed-exitcode` exits 0 (no perpetual diff), and the
//!    API has the object;
//! 2. `terraform import` into a fresh state (a second working directory with the
//!    same configuration): every attribute as applied, except those documented
//!    as not read back;
//! 3. an `import {}` block for it (after `state rm`): the plan imports it (and
//!    sets again what is not read back), the state afterwards equals the applied
//!    one, and the plan is clean once the block is gone;
//! 4. an update in place keeps the id, the API shows the new values, then a
//!    clean plan (where the resource has an updatable argument);
//! 5. a replacement: "must be replaced", 1 to add and 1 to destroy, a new id, the
//!    old object 404, then a clean plan;
//! 6. deleted through the API: the plan re-creates it (exit 2, 1 to add), the
//!    apply does, then a clean plan;
//! 7. `terraform destroy` of it: the API answers 404; then the rest goes too.
//!
//! What a resource needs (a tenant, a cluster, a quota, a VM) is fixed in its
//! row's `deps`; the resource under test is always `<type>.it`.

use std::time::Duration;

use basalt_acceptance_tests::server::TestServer;
use basalt_acceptance_tests::terraform::{terraform_binary, Terraform, APPLY, DESTROY, PLAN_CLEAN, PROVIDER};
use basalt_client::Client;
use serde_json::{Map, Value};
use uuid::Uuid;

/// A resource's attributes as `terraform show -json` has them.
type Attrs = Map<String, Value>;

/// Where the API serves the object: at the admin's system scope, or inside the
/// object's tenant (its `tenant_id`), where the admin enters by token exchange.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    System,
    Tenant,
}

/// An update in place: the arguments, and what the API must answer afterwards
/// (field, JSON value).
struct Update {
    body: &'static str,
    api: &'static [(&'static str, &'static str)],
}

/// One resource type's row. Configuration text is HCL in which `{s}` stands for
/// a suffix unique to the test.
struct Case {
    /// The type; the resource under test is `<ty>.it`.
    ty: &'static str,
    /// Fixed resources it needs, unchanged through the steps.
    deps: &'static [&'static str],
    /// Its arguments in the first apply.
    base: &'static str,
    /// `None` where no argument can change in place (said why in the row).
    update: Option<Update>,
    /// Arguments that force a replacement (after the update).
    replace: &'static str,
    /// Attributes documented as not read back from the API: not compared after
    /// `terraform import`; the `import {}` plan sets them again (1 to change).
    not_read_back: &'static [&'static str],
    /// The `terraform import` id, from the applied attributes and how to name
    /// the object's tenant (by id, or by name; see the resource's
    /// `examples/resources/*/import.sh`).
    import_id: fn(&Attrs, &str) -> String,
    scope: Scope,
    /// The object's API path, from its attributes.
    path: fn(&Attrs) -> String,
}

/// A string attribute.
fn a<'a>(attrs: &'a Attrs, name: &str) -> &'a str {
    attrs.get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("no string attribute {name} in {attrs:?}"))
}

/// `ID`: objects of the system scope.
fn id(attrs: &Attrs, _tenant: &str) -> String {
    a(attrs, "id").to_string()
}

/// `TENANT/ID`: objects inside a tenant.
fn tenant_slash_id(attrs: &Attrs, tenant: &str) -> String {
    format!("{tenant}/{}", a(attrs, "id"))
}

const TENANT: &str = r#"resource "basalt_tenant" "t" {
  name = "acc-{s}"
}"#;

const CLUSTER: &str = r#"resource "basalt_cluster" "c" {
  name  = "acc-c-{s}"
  hosts = ["test:///default?name=acc-{s}"]
}"#;

/// The tenant's quota on the cluster.
const QUOTA: &str = r#"resource "basalt_tenant_quota" "q" {
  tenant_id  = basalt_tenant.t.id
  cluster_id = basalt_cluster.c.id
  vcpus      = 8
  memory_mib = 8192
  max_vms    = 4
}"#;

/// A public template.
const TEMPLATE: &str = r#"resource "basalt_template" "small" {
  name       = "small-{s}"
  vcpus      = 1
  memory_mib = 512
}"#;

/// A VM in the tenant, on the cluster of its quota.
const VM: &str = r#"resource "basalt_vm" "web" {
  tenant_id   = basalt_tenant.t.id
  name        = "web"
  cluster_id  = basalt_tenant_quota.q.cluster_id
  template_id = basalt_template.small.id
}"#;

const TENANT_CASE: Case = Case {
    ty: "basalt_tenant",
    deps: &[],
    base: r#"name         = "acc-{s}"
  display_name = "Acme""#,
    update: Some(Update {
        body: r#"name         = "acc-{s}"
  display_name = "Acme Corp""#,
        api: &[("display_name", r#""Acme Corp""#)],
    }),
    replace: r#"name         = "acc-{s}-b"
  display_name = "Acme Corp""#,
    not_read_back: &[],
    import_id: id,
    scope: Scope::System,
    path: |t| format!("/v1/tenants/{}", a(t, "id")),
};

const USER_CASE: Case = Case {
    ty: "basalt_user",
    deps: &[TENANT],
    base: r#"tenant_id = basalt_tenant.t.id
  username  = "alice"
  email     = "alice@example.com"
  password  = "correct horse battery staple""#,
    update: Some(Update {
        body: r#"tenant_id = basalt_tenant.t.id
  username  = "alice"
  email     = "alice@corp.example.com"
  password  = "correct horse battery staple""#,
        api: &[("email", r#""alice@corp.example.com""#)],
    }),
    replace: r#"tenant_id = basalt_tenant.t.id
  username  = "alice.b"
  email     = "alice@corp.example.com"
  password  = "correct horse battery staple""#,
    // Write-only: Basalt keeps a hash (the attribute's description says so).
    not_read_back: &["password"],
    import_id: tenant_slash_id,
    scope: Scope::Tenant,
    path: |u| format!("/v1/users/{}", a(u, "id")),
};

const ROLE_CASE: Case = Case {
    ty: "basalt_role",
    deps: &[TENANT],
    base: r#"tenant_id   = basalt_tenant.t.id
  name        = "ops"
  description = "Operators"
  permissions = ["user:list", "user:read"]"#,
    update: Some(Update {
        body: r#"tenant_id   = basalt_tenant.t.id
  name        = "ops"
  description = "Operators and auditors"
  permissions = ["audit:read", "user:list", "user:read"]"#,
        api: &[
            ("description", r#""Operators and auditors""#),
            ("permissions", r#"["audit:read", "user:list", "user:read"]"#),
        ],
    }),
    replace: r#"tenant_id   = basalt_tenant.t.id
  name        = "ops-b"
  description = "Operators and auditors"
  permissions = ["audit:read", "user:list", "user:read"]"#,
    not_read_back: &[],
    import_id: tenant_slash_id,
    scope: Scope::Tenant,
    path: |r| format!("/v1/roles/{}", a(r, "id")),
};

const ROLE_BINDING_CASE: Case = Case {
    ty: "basalt_role_binding",
    deps: &[
        TENANT,
        CLUSTER,
        QUOTA,
        r#"resource "basalt_user" "u" {
  tenant_id = basalt_tenant.t.id
  username  = "bob"
}

# Grantable at cluster scope.
resource "basalt_role" "operator" {
  tenant_id   = basalt_tenant.t.id
  name        = "operator"
  permissions = ["vm:list", "vm:read", "vm:power"]
}"#,
    ],
    // On one cluster (cluster scope).
    base: r#"tenant_id  = basalt_tenant.t.id
  role_id    = basalt_role.operator.id
  user_id    = basalt_user.u.id
  cluster_id = basalt_tenant_quota.q.cluster_id"#,
    // Bindings cannot change: every argument replaces the binding.
    update: None,
    // The whole tenant instead (tenant scope).
    replace: r#"tenant_id = basalt_tenant.t.id
  role_id   = basalt_role.operator.id
  user_id   = basalt_user.u.id"#,
    not_read_back: &[],
    import_id: tenant_slash_id,
    scope: Scope::Tenant,
    path: |b| format!("/v1/role-bindings/{}", a(b, "id")),
};

const GROUP_CASE: Case = Case {
    ty: "basalt_group",
    deps: &[
        TENANT,
        r#"resource "basalt_user" "u" {
  tenant_id = basalt_tenant.t.id
  username  = "bob"
}"#,
    ],
    base: r#"tenant_id   = basalt_tenant.t.id
  name        = "readers"
  description = "Read-only staff"
  member_ids  = [basalt_user.u.id]"#,
    // The description, and the members (bob leaves).
    update: Some(Update {
        body: r#"tenant_id   = basalt_tenant.t.id
  name        = "readers"
  description = "Auditors""#,
        api: &[("description", r#""Auditors""#)],
    }),
    replace: r#"tenant_id   = basalt_tenant.t.id
  name        = "auditors"
  description = "Auditors""#,
    not_read_back: &[],
    import_id: tenant_slash_id,
    scope: Scope::Tenant,
    path: |g| format!("/v1/groups/{}", a(g, "id")),
};

const REGION_CASE: Case = Case {
    ty: "basalt_region",
    deps: &[],
    base: r#"name     = "acc-r-{s}"
  endpoint = "http://127.0.0.1:9""#,
    update: Some(Update {
        body: r#"name     = "acc-r-{s}"
  endpoint = "http://127.0.0.1:10""#,
        api: &[("endpoint", r#""http://127.0.0.1:10""#)],
    }),
    replace: r#"name     = "acc-r-{s}-b"
  endpoint = "http://127.0.0.1:10""#,
    not_read_back: &[],
    import_id: id,
    scope: Scope::System,
    path: |r| format!("/v1/regions/{}", a(r, "id")),
};

const CLUSTER_CASE: Case = Case {
    ty: "basalt_cluster",
    deps: &[],
    base: r#"name  = "acc-c-{s}"
  hosts = ["test:///default?name=acc-{s}"]"#,
    update: Some(Update {
        body: r#"name  = "acc-c-{s}"
  alias = "acc-public-{s}"
  hosts = ["test:///default?name=acc-{s}", "test:///default?name=acc-{s}-2"]"#,
        api: &[
            ("alias", r#""acc-public-{s}""#),
            ("hosts", r#"["test:///default?name=acc-{s}", "test:///default?name=acc-{s}-2"]"#),
        ],
    }),
    replace: r#"name  = "acc-c-{s}-b"
  alias = "acc-public-{s}"
  hosts = ["test:///default?name=acc-{s}", "test:///default?name=acc-{s}-2"]"#,
    not_read_back: &[],
    import_id: id,
    scope: Scope::System,
    path: |c| format!("/v1/clusters/{}", a(c, "id")),
};

const TENANT_QUOTA_CASE: Case = Case {
    ty: "basalt_tenant_quota",
    deps: &[
        TENANT,
        CLUSTER,
        r#"resource "basalt_cluster" "c2" {
  name  = "acc-c2-{s}"
  hosts = ["test:///default?name=acc-{s}-2"]
}"#,
    ],
    base: r#"tenant_id  = basalt_tenant.t.id
  cluster_id = basalt_cluster.c.id
  vcpus      = 4
  memory_mib = 4096
  max_vms    = 2"#,
    update: Some(Update {
        body: r#"tenant_id  = basalt_tenant.t.id
  cluster_id = basalt_cluster.c.id
  vcpus      = 8
  memory_mib = 8192
  max_vms    = 3
  disk_gib   = 100"#,
        api: &[("vcpus", "8"), ("memory_mib", "8192"), ("max_vms", "3"), ("disk_gib", "100")],
    }),
    replace: r#"tenant_id  = basalt_tenant.t.id
  cluster_id = basalt_cluster.c2.id
  vcpus      = 8
  memory_mib = 8192
  max_vms    = 3"#,
    not_read_back: &[],
    // Quotas are managed at system scope: no tenant prefix.
    import_id: id,
    scope: Scope::System,
    path: |q| format!("/v1/quotas/{}", a(q, "id")),
};

const TEMPLATE_CASE: Case = Case {
    ty: "basalt_template",
    deps: &[],
    // Public (no tenant: the provider admin's system scope), with the direct
    // kernel boot attributes (the test driver does not read the files), in the
    // standalone server's one region.
    base: r#"name       = "small-{s}"
  region     = "local"
  vcpus      = 1
  memory_mib = 512
  kernel     = "/srv/boot/vmlinuz"
  initrd     = "/srv/boot/initrd.gz"
  cmdline    = "console=ttyS0""#,
    update: Some(Update {
        body: r#"name       = "small-{s}"
  region     = "local"
  vcpus      = 2
  memory_mib = 1024
  kernel     = "/srv/boot/vmlinuz"
  initrd     = "/srv/boot/initrd.gz"
  cmdline    = "console=ttyS0""#,
        api: &[("vcpus", "2"), ("memory_mib", "1024")],
    }),
    replace: r#"name       = "small-{s}"
  region     = "local"
  vcpus      = 2
  memory_mib = 1024
  disk_gib   = 20
  kernel     = "/srv/boot/vmlinuz"
  initrd     = "/srv/boot/initrd.gz"
  cmdline    = "console=ttyS0 quiet""#,
    // Not read back from the API (the attribute's description says so).
    not_read_back: &["region"],
    import_id: id,
    scope: Scope::System,
    path: |t| format!("/v1/templates/{}", a(t, "id")),
};

const VM_CASE: Case = Case {
    ty: "basalt_vm",
    deps: &[TENANT, CLUSTER, QUOTA, TEMPLATE],
    base: r#"tenant_id   = basalt_tenant.t.id
  name        = "web"
  cluster_id  = basalt_tenant_quota.q.cluster_id
  template_id = basalt_template.small.id"#,
    update: Some(Update {
        body: r#"tenant_id   = basalt_tenant.t.id
  name        = "web"
  cluster_id  = basalt_tenant_quota.q.cluster_id
  template_id = basalt_template.small.id
  vcpus       = 2
  power_state = "stopped""#,
        api: &[("vcpus", "2"), ("memory_mib", "512"), ("power_state", r#""stopped""#)],
    }),
    replace: r#"tenant_id   = basalt_tenant.t.id
  name        = "web-b"
  cluster_id  = basalt_tenant_quota.q.cluster_id
  template_id = basalt_template.small.id
  vcpus       = 2
  power_state = "stopped""#,
    not_read_back: &[],
    import_id: tenant_slash_id,
    scope: Scope::Tenant,
    path: |v| format!("/v1/vms/{}", a(v, "id")),
};

const VM_SNAPSHOT_CASE: Case = Case {
    ty: "basalt_vm_snapshot",
    deps: &[TENANT, CLUSTER, QUOTA, TEMPLATE, VM],
    base: r#"tenant_id = basalt_tenant.t.id
  vm_id     = basalt_vm.web.id
  name      = "before-upgrade""#,
    // Snapshots cannot change: every argument replaces the snapshot.
    update: None,
    replace: r#"tenant_id = basalt_tenant.t.id
  vm_id     = basalt_vm.web.id
  name      = "after-upgrade""#,
    not_read_back: &[],
    import_id: |s, tenant| format!("{tenant}/{}/{}", a(s, "vm_id"), a(s, "id")),
    scope: Scope::Tenant,
    path: |s| format!("/v1/vms/{}/snapshots/{}", a(s, "vm_id"), a(s, "id")),
};

/// The whole configuration: the provider, `deps`, and `<ty>.it` with `body`; `extra` after it.
fn config(case: &Case, suffix: &str, body: &str, extra: &str) -> String {
    let (ty, deps) = (case.ty, case.deps.join("\n\n"));
    format!("{PROVIDER}\n\n{deps}\n\nresource \"{ty}\" \"it\" {{\n  {body}\n}}\n{extra}").replace("{s}", suffix)
}

/// The attributes of `address` in the working directory's state.
async fn attrs(tf: &Terraform, address: &str) -> Attrs {
    let out = tf.run(&["show", "-json", "-no-color"]).await;
    assert!(out.status.success(), "terraform show -json failed");
    let state: Value = serde_json::from_slice(&out.stdout).expect("terraform show -json prints JSON");
    let resources = state["values"]["root_module"]["resources"].as_array().cloned().unwrap_or_default();
    let found = resources.into_iter().find(|r| r["address"] == address);
    let found = found.unwrap_or_else(|| panic!("{address} is not in the state:\n{state:#}"));
    found["values"].as_object().cloned().expect("a resource's values are an object")
}

/// `imported` equals `applied` in every attribute but `skip`.
fn assert_same(applied: &Attrs, imported: &Attrs, skip: &[&str], how: &str) {
    let keys = applied.keys().chain(imported.keys()).filter(|k| !skip.contains(&k.as_str()));
    let differ: Vec<String> = keys
        .filter(|k| applied.get(*k) != imported.get(*k))
        .map(|k| format!("  {k}: applied {:?}, imported {:?}", applied.get(k), imported.get(k)))
        .collect();
    assert!(differ.is_empty(), "{how}: the imported state differs from the applied one:\n{}", differ.join("\n"));
}

/// Whom to ask about the object: the admin, or the admin inside the object's tenant.
async fn api_for(server: &TestServer, case: &Case, attrs: &Attrs) -> Client {
    match case.scope {
        Scope::System => server.admin.clone(),
        Scope::Tenant => {
            let t = server.admin.switch_tenant(a(attrs, "tenant_id")).await.expect("switch into the tenant");
            server.admin.with_token(t.token)
        }
    }
}

/// `GET path`: the object, or `None` on 404.
async fn get(api: &Client, path: &str) -> Option<Value> {
    match api.get_at::<Value>(path).await {
        Ok(v) => Some(v),
        Err(e) if e.status() == Some(404) => None,
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// Terraform's summary line for a plan.
fn summary(add: u32, change: u32, destroy: u32) -> String {
    format!("Plan: {add} to add, {change} to change, {destroy} to destroy.")
}

/// The step model for one row of the table.
async fn run(case: &Case) {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let server = TestServer::start().await;
    let tf = Terraform::new(bin.clone(), &server.endpoint, &server.admin_token);
    let suffix = Uuid::new_v4().simple().to_string()[..8].to_string();
    let address = format!("{}.it", case.ty);
    let cfg = |body: &str, extra: &str| config(case, &suffix, body, extra);
    let says = |out: &str, what: &str| assert!(out.contains(what), "terraform says {what:?}:\n{out}");

    // 1. Apply; a second plan shows nothing to do; the API has it.
    tf.write_config(&cfg(case.base, ""));
    tf.expect(0, APPLY).await;
    tf.expect(0, PLAN_CLEAN).await;
    let applied = attrs(&tf, &address).await;
    let api = api_for(&server, case, &applied).await;
    let path = (case.path)(&applied);
    assert!(get(&api, &path).await.is_some(), "{path} exists after the apply");

    // 2. `terraform import` into a fresh state: a second working directory with
    // the same configuration and no state at all. The tenant by name here, by id
    // in the import block (every row's tenant is `acc-{s}`).
    let tenant_id = applied.get("tenant_id").and_then(Value::as_str).unwrap_or_default();
    let import_id = (case.import_id)(&applied, &format!("acc-{suffix}"));
    {
        let fresh = Terraform::new(bin, &server.endpoint, &server.admin_token);
        fresh.write_config(&cfg(case.base, ""));
        let out = fresh.expect(0, &["import", "-input=false", "-no-color", &address, &import_id]).await;
        says(&out, "Import successful!");
        assert_same(&applied, &attrs(&fresh, &address).await, case.not_read_back, "terraform import");
    }

    // 3. An `import {}` block, into this state once the resource has left it.
    tf.expect(0, &["state", "rm", &address]).await;
    let import_id = (case.import_id)(&applied, tenant_id);
    let block = format!("\nimport {{\n  to = {address}\n  id = \"{import_id}\"\n}}\n");
    tf.write_config(&cfg(case.base, &block));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    let set_again = usize::from(!case.not_read_back.is_empty());
    says(&plan, &format!("Plan: 1 to import, 0 to add, {set_again} to change, 0 to destroy."));
    tf.expect(0, APPLY).await;
    assert_same(&applied, &attrs(&tf, &address).await, &[], "import block");
    tf.write_config(&cfg(case.base, ""));
    tf.expect(0, PLAN_CLEAN).await;

    // 4. Update in place: same id, the API shows the change.
    if let Some(update) = &case.update {
        tf.write_config(&cfg(update.body, ""));
        let plan = tf.expect(2, PLAN_CLEAN).await;
        says(&plan, &format!("{address} will be updated in-place"));
        says(&plan, &summary(0, 1, 0));
        tf.expect(0, APPLY).await;
        assert_eq!(attrs(&tf, &address).await["id"], applied["id"], "an update keeps the id");
        let object = get(&api, &path).await.expect("still there after the update");
        for (field, want) in update.api {
            let want: Value = serde_json::from_str(&want.replace("{s}", &suffix)).expect("JSON in the table");
            assert_eq!(object[field], want, "{path}: {field} after the update");
        }
        tf.expect(0, PLAN_CLEAN).await;
    }

    // 5. Replacement: a new object, the old one gone.
    tf.write_config(&cfg(case.replace, ""));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    says(&plan, &format!("{address} must be replaced"));
    says(&plan, &summary(1, 0, 1));
    tf.expect(0, APPLY).await;
    let replaced = attrs(&tf, &address).await;
    assert_ne!(replaced["id"], applied["id"], "a replacement has a new id");
    assert!(get(&api, &path).await.is_none(), "{path} is gone after the replacement");
    let path = (case.path)(&replaced);
    assert!(get(&api, &path).await.is_some(), "{path} exists after the replacement");
    tf.expect(0, PLAN_CLEAN).await;

    // 6. Deleted outside Terraform: planned again, and made again.
    if let Some(op) = api.delete_at(&path).await.unwrap_or_else(|e| panic!("DELETE {path}: {e}")) {
        api.wait_operation(op.id, Duration::from_secs(60)).await.expect("the delete finishes");
    }
    assert!(get(&api, &path).await.is_none(), "{path} is gone after the out-of-band delete");
    let plan = tf.expect(2, PLAN_CLEAN).await;
    says(&plan, &format!("{address} will be created"));
    says(&plan, &summary(1, 0, 0));
    tf.expect(0, APPLY).await;
    let recreated = attrs(&tf, &address).await;
    assert_ne!(recreated["id"], replaced["id"], "re-created under a new id");
    let path = (case.path)(&recreated);
    assert!(get(&api, &path).await.is_some(), "{path} exists after the re-create");
    tf.expect(0, PLAN_CLEAN).await;

    // 7. Destroy it (first alone, so that the API can still be asked inside its
    // tenant), then everything else.
    let target = format!("-target={address}");
    tf.expect(0, &["destroy", "-auto-approve", "-input=false", "-no-color", &target]).await;
    assert!(get(&api, &path).await.is_none(), "{path} is gone after the destroy");
    tf.expect(0, DESTROY).await;
    let left = tf.expect(0, &["state", "list"]).await;
    assert!(left.trim().is_empty(), "the destroy left resources in the state:\n{left}");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_tenant() {
    run(&TENANT_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_user() {
    run(&USER_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_role() {
    run(&ROLE_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_role_binding() {
    run(&ROLE_BINDING_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_group() {
    run(&GROUP_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_region() {
    run(&REGION_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_cluster() {
    run(&CLUSTER_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_tenant_quota() {
    run(&TENANT_QUOTA_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_template() {
    run(&TEMPLATE_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_vm() {
    run(&VM_CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basalt_vm_snapshot() {
    run(&VM_SNAPSHOT_CASE).await;
}
