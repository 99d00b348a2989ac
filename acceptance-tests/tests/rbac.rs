//! `basalt_user`, `basalt_role`, `basalt_group`, `basalt_role_binding` (to a
//! user and to a group) and the `basalt_role`,
//! `basalt_permissions` and `basalt_current_user` data sources through the real
//! Terraform CLI, driven by a system-scope token that enters the new tenant by
//! token exchange: onboard a tenant with its admin and a custom role, a clean
//! second plan, import, group membership changes, out-of-band delete, destroy.
//! Plus an unknown permission name, refused at plan time on the attribute with a
//! suggestion, and a binding naming both a user and a group.

use basalt_acceptance_tests::server::TestServer;
use basalt_acceptance_tests::terraform::{terraform_binary, Terraform, APPLY, PLAN_CLEAN, PROVIDER};
use basalt_client::{Client, LoginRequest};
use uuid::Uuid;

const TENANT_ADMIN: &str = "00000000-0000-7000-8000-000000000004";
const VIEWER: &str = "00000000-0000-7000-8000-000000000006";
const PASSWORD: &str = "correct horse battery staple";

/// The members of the `readers` group, as HCL.
const OPS_ONLY: &str = "[basalt_user.ops.id]";
const OPS_AND_ADMIN: &str = "[basalt_user.ops.id, basalt_user.admin.id]";

fn config(tenant: &str, permissions: &str) -> String {
    config_with(tenant, permissions, OPS_ONLY)
}

fn config_with(tenant: &str, permissions: &str, members: &str) -> String {
    format!(
        r#"{PROVIDER}

resource "basalt_tenant" "t" {{
  name = "{tenant}"
}}

resource "basalt_user" "admin" {{
  tenant_id = basalt_tenant.t.id
  username  = "alice"
  email     = "alice@example.com"
  password  = "{PASSWORD}"
}}

resource "basalt_user" "ops" {{
  tenant_id = basalt_tenant.t.id
  username  = "bob"
}}

data "basalt_role" "tenant_admin" {{
  tenant_id = basalt_tenant.t.id
  name      = "tenant-admin"
}}

resource "basalt_role" "ops" {{
  tenant_id   = basalt_tenant.t.id
  name        = "ops"
  description = "Operators"
  permissions = {permissions}
}}

resource "basalt_role_binding" "admin" {{
  tenant_id = basalt_tenant.t.id
  role_id   = data.basalt_role.tenant_admin.id
  user_id   = basalt_user.admin.id
}}

resource "basalt_role_binding" "ops" {{
  tenant_id = basalt_tenant.t.id
  role_id   = basalt_role.ops.id
  user_id   = basalt_user.ops.id
}}

data "basalt_role" "viewer" {{
  tenant_id = basalt_tenant.t.id
  name      = "tenant-viewer"
}}

resource "basalt_group" "readers" {{
  tenant_id   = basalt_tenant.t.id
  name        = "readers"
  description = "Read-only staff"
  member_ids  = {members}
}}

resource "basalt_role_binding" "readers" {{
  tenant_id = basalt_tenant.t.id
  role_id   = data.basalt_role.viewer.id
  group_id  = basalt_group.readers.id
}}

data "basalt_permissions" "tenant" {{
  scope = "tenant"
}}

data "basalt_current_user" "me" {{}}

output "tenant_id" {{ value = basalt_tenant.t.id }}
output "admin_id" {{ value = basalt_user.admin.id }}
output "role_id" {{ value = basalt_role.ops.id }}
output "tenant_admin_id" {{ value = data.basalt_role.tenant_admin.id }}
output "ops_binding_id" {{ value = basalt_role_binding.ops.id }}
output "ops_binding_scope" {{ value = basalt_role_binding.ops.scope }}
output "group_id" {{ value = basalt_group.readers.id }}
output "ops_id" {{ value = basalt_user.ops.id }}
output "readers_binding_group" {{ value = basalt_role_binding.readers.group_id }}
output "readers_binding_id" {{ value = basalt_role_binding.readers.id }}
output "tenant_permission_has_role_create" {{ value = contains(data.basalt_permissions.tenant.names, "role:create") }}
output "tenant_permission_has_tenant_create" {{ value = contains(data.basalt_permissions.tenant.names, "tenant:create") }}
output "me_scope" {{ value = data.basalt_current_user.me.scope }}
"#
    )
}

/// The admin's client switched into `tenant`.
async fn in_tenant(server: &TestServer, tenant: &str) -> Client {
    let t = server.admin.switch_tenant(tenant).await.expect("switch into the tenant");
    server.admin.with_token(t.token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_tenant_admin_and_custom_role() {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let server = TestServer::start().await;
    let tf = Terraform::new(bin, &server.endpoint, &server.admin_token);
    let name = format!("acc-{}", &Uuid::new_v4().simple().to_string()[..8]);

    // Apply from nothing; a second plan shows nothing to do.
    tf.write_config(&config(&name, r#"["user:list", "user:read", "audit:read"]"#));
    tf.expect(0, APPLY).await;
    tf.expect(0, PLAN_CLEAN).await;
    let tenant_id = tf.output("tenant_id").await;
    let (admin_id, role_id) = (tf.output("admin_id").await, tf.output("role_id").await);
    assert_eq!(tf.output("tenant_admin_id").await, TENANT_ADMIN, "the data source finds the built-in role");
    assert_eq!(tf.output("ops_binding_scope").await, "tenant");
    assert_eq!(tf.output("tenant_permission_has_role_create").await, "true");
    assert_eq!(tf.output("tenant_permission_has_tenant_create").await, "false", "the scope filter applies");
    assert_eq!(tf.output("me_scope").await, "system", "the token's own context is unchanged");

    // The API agrees: the objects live inside the tenant, the role holds what was
    // configured, and the admin can log in there with the configured password.
    let acme = in_tenant(&server, &tenant_id).await;
    let admin = acme.get_user(Uuid::try_parse(&admin_id).expect("uuid")).await.expect("admin user in the tenant");
    assert_eq!(admin.tenant_id.map(|t| t.to_string()), Some(tenant_id.clone()));
    assert!(admin.has_password);
    let role = acme.get_role(Uuid::try_parse(&role_id).expect("uuid")).await.expect("role in the tenant");
    assert_eq!(role.permissions, vec!["audit:read", "user:list", "user:read"]);
    let login = LoginRequest { username: "alice".into(), password: PASSWORD.into(), tenant: Some(name.clone()) };
    let token = Client::new(&server.endpoint, None).login(&login).await.expect("alice logs in");
    let alice = Client::new(&server.endpoint, Some(token.token));
    assert!(alice.me().await.expect("me").permissions.contains(&"role_binding:create".to_string()), "tenant-admin");

    // The group holds bob, and its binding gives him the viewer role through it.
    let group_id = tf.output("group_id").await;
    let ops_id = tf.output("ops_id").await;
    assert_eq!(tf.output("readers_binding_group").await, group_id);
    let members: Vec<basalt_client::GroupMember> =
        acme.get_at(&format!("/v1/groups/{group_id}/members")).await.expect("group members");
    assert_eq!(members.iter().map(|m| m.user_id.to_string()).collect::<Vec<_>>(), vec![ops_id.clone()]);
    let bindings = acme.list_role_bindings("").await.expect("bindings");
    let to_group: Vec<_> =
        bindings.items.iter().filter(|b| b.group_id.map(|g| g.to_string()) == Some(group_id.clone())).collect();
    assert_eq!(to_group.len(), 1, "one binding names the group: {:?}", bindings.items);
    assert_eq!((to_group[0].user_id, to_group[0].role_id.to_string()), (None, VIEWER.to_string()));

    // Membership is authoritative: a member added outside Terraform is planned
    // away; adding alice in the configuration is an in-place update.
    acme.put_at(&format!("/v1/groups/{group_id}/members/{admin_id}")).await.expect("out-of-band member");
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("basalt_group.readers will be updated in-place"), "{plan}");
    tf.write_config(&config_with(&name, r#"["user:list", "user:read", "audit:read"]"#, OPS_AND_ADMIN));
    tf.expect(0, PLAN_CLEAN).await;
    tf.write_config(&config_with(&name, r#"["user:list", "user:read", "audit:read"]"#, "[]"));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("basalt_group.readers will be updated in-place"), "{plan}");
    tf.expect(0, APPLY).await;
    let members: Vec<basalt_client::GroupMember> =
        acme.get_at(&format!("/v1/groups/{group_id}/members")).await.expect("group members");
    assert!(members.is_empty(), "apply emptied the group: {members:?}");
    tf.write_config(&config(&name, r#"["user:list", "user:read", "audit:read"]"#));
    tf.expect(0, APPLY).await;
    tf.expect(0, PLAN_CLEAN).await;

    // Import: the role by tenant name, the user by tenant id. The role plans clean;
    // the user's password cannot be read back, so the plan sets it once more.
    let readers_binding = tf.output("readers_binding_id").await;
    let removed = ["basalt_role.ops", "basalt_user.admin", "basalt_group.readers", "basalt_role_binding.readers"];
    tf.expect(0, &[&["state", "rm"][..], &removed[..]].concat()).await;
    tf.expect(0, &["import", "-input=false", "-no-color", "basalt_role.ops", &format!("{name}/{role_id}")]).await;
    tf.expect(0, &["import", "-input=false", "-no-color", "basalt_group.readers", &format!("{name}/{group_id}")]).await;
    let binding_id = format!("{name}/{readers_binding}");
    tf.expect(0, &["import", "-input=false", "-no-color", "basalt_role_binding.readers", &binding_id]).await;
    tf.expect(0, &["import", "-input=false", "-no-color", "basalt_user.admin", &format!("{tenant_id}/{admin_id}")])
        .await;
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("basalt_user.admin will be updated in-place"), "{plan}");
    assert!(plan.contains("1 to change") && plan.contains("0 to add") && plan.contains("0 to destroy"), "{plan}");
    tf.expect(0, APPLY).await;
    tf.expect(0, PLAN_CLEAN).await;
    assert_eq!(tf.output("admin_id").await, admin_id, "import kept the same user");

    // Update in place: the role's permissions.
    tf.write_config(&config(&name, r#"["user:list", "user:read"]"#));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("basalt_role.ops will be updated in-place"), "{plan}");
    tf.expect(0, APPLY).await;
    let role = acme.get_role(Uuid::try_parse(&role_id).expect("uuid")).await.expect("role");
    assert_eq!(role.permissions, vec!["user:list", "user:read"]);
    tf.expect(0, PLAN_CLEAN).await;

    // A binding deleted outside Terraform is planned again.
    let binding = Uuid::try_parse(&tf.output("ops_binding_id").await).expect("uuid");
    acme.delete_role_binding(binding).await.expect("out-of-band delete");
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("basalt_role_binding.ops will be created"), "{plan}");
    tf.expect(0, APPLY).await;
    tf.expect(0, PLAN_CLEAN).await;

    // Destroy: the tenant's last admin stays with it (Basalt's rule, a warning), and
    // the tenant goes.
    let out = tf.expect(0, &["destroy", "-auto-approve", "-input=false", "-no-color"]).await;
    assert!(out.contains("last administrator"), "{out}");
    let gone = server.admin.get_tenant(Uuid::try_parse(&tenant_id).expect("uuid")).await;
    assert_eq!(gone.err().and_then(|e| e.status()), Some(404), "the tenant is deleted");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_permission_is_refused_at_plan_with_a_suggestion() {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let server = TestServer::start().await;
    let tf = Terraform::new(bin, &server.endpoint, &server.admin_token);
    let name = format!("acc-{}", &Uuid::new_v4().simple().to_string()[..8]);

    tf.write_config(&config(&name, r#"["user:list", "user:raed"]"#));
    // Terraform wraps diagnostic text: compare with whitespace collapsed.
    let out = tf.expect(1, APPLY).await.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("Unknown permission"), "{out}");
    assert!(out.contains(r#"Did you mean "user:read"?"#), "suggests the right name:\n{out}");
    assert!(out.contains(r#"permissions = ["user:list", "user:raed"]"#), "points at the attribute:\n{out}");
    assert!(!out.contains("user:list\" is not"), "only the unknown name is reported:\n{out}");

    // Nothing was created: the plan failed before any change.
    let tenants = server.admin.list_tenants(&format!("name={name}")).await.expect("list tenants");
    assert!(tenants.items.is_empty(), "no tenant was created");
    assert!(!tf.dir.join("terraform.tfstate").exists() || tf.expect(0, &["state", "list"]).await.trim().is_empty());

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_names_exactly_one_holder() {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let server = TestServer::start().await;
    let tf = Terraform::new(bin, &server.endpoint, &server.admin_token);
    let name = format!("acc-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let config = |holders: &str| {
        format!(
            r#"{PROVIDER}

resource "basalt_tenant" "t" {{
  name = "{name}"
}}

resource "basalt_role_binding" "both" {{
  tenant_id = basalt_tenant.t.id
  role_id   = "{VIEWER}"
{holders}
}}
"#
        )
    };
    let both =
        "  user_id  = \"0190a5b4-0000-7000-8000-000000000001\"\n  group_id = \"0190a5b4-0000-7000-8000-000000000002\"";
    tf.write_config(&config(both));
    let out = tf.expect(1, PLAN_CLEAN).await.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("Conflicting role holders"), "{out}");
    assert!(out.contains("group_id = \"0190a5b4"), "points at group_id:\n{out}");

    tf.write_config(&config(""));
    let out = tf.expect(1, PLAN_CLEAN).await.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("Missing role holder"), "{out}");

    // Nothing was created: validation runs before any change.
    let tenants = server.admin.list_tenants(&format!("name={name}")).await.expect("list tenants");
    assert!(tenants.items.is_empty(), "no tenant was created");
    server.stop().await;
}
