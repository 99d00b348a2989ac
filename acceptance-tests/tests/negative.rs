//! What a user sees when an apply cannot work, through the real Terraform CLI:
//! each case checks that the diagnostic names the attribute or the problem, and
//! that nothing half-made is left behind (on the server or in the state).
//!
//! * a required argument left out (Terraform's own check, before any call);
//! * a VM in tenant B made from a template private to tenant A (not visible in
//!   B: an error on `template_id`, no VM);
//! * a change inside a tenant that was suspended through the API;
//! * a provider configured with an API token revoked through the API.

use basalt_acceptance_tests::server::TestServer;
use basalt_acceptance_tests::terraform::{terraform_binary, Terraform, APPLY, DESTROY, PLAN_CLEAN, PROVIDER};
use basalt_client::{Client, CreateApiToken, CreateTenant, Page, Quota, RequestOptions, Role, Tenant, User, Vm};
use uuid::Uuid;

fn terraform(server: &TestServer, token: &str) -> Terraform {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    Terraform::new(bin, &server.endpoint, token)
}

fn suffix() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Terraform wraps diagnostic text: compare with whitespace collapsed.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `terraform state list`, empty when there is no state at all.
async fn state_list(tf: &Terraform) -> String {
    if tf.dir.join("terraform.tfstate").exists() {
        tf.expect(0, &["state", "list"]).await
    } else {
        String::new()
    }
}

async fn tenants_named(server: &TestServer, name: &str) -> Vec<Tenant> {
    server.admin.list_tenants(&format!("name={name}")).await.expect("list tenants").items
}

/// The admin's client switched into `tenant`.
async fn in_tenant(server: &TestServer, tenant: &str) -> Client {
    let t = server.admin.switch_tenant(tenant).await.expect("switch into the tenant");
    server.admin.with_token(t.token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_attribute_is_named_and_nothing_is_made() {
    let server = TestServer::start().await;
    let tf = terraform(&server, &server.admin_token);
    let s = suffix();
    tf.write_config(&format!(
        r#"{PROVIDER}

resource "basalt_tenant" "t" {{
  name = "acc-{s}"
}}

resource "basalt_vm" "web" {{
  tenant_id  = basalt_tenant.t.id
  name       = "web"
  cluster_id = "0192f3c1-7a6b-7c3e-9d2f-4b5a6c7d8e9f"
}}
"#
    ));
    let out = flat(&tf.expect(1, APPLY).await);
    assert!(out.contains("Missing required argument"), "{out}");
    assert!(out.contains(r#"The argument "template_id" is required"#), "names the attribute:\n{out}");
    assert!(out.contains(r#"resource "basalt_vm" "web""#), "points at the resource:\n{out}");
    // Terraform refused the configuration before asking the provider to do anything.
    assert!(tenants_named(&server, &format!("acc-{s}")).await.is_empty(), "no tenant was created");
    assert!(state_list(&tf).await.trim().is_empty(), "nothing in the state");
    server.stop().await;
}

/// A cluster, tenants `a` and `b` (only `b` holds a quota), and a template
/// private to `a`; with `vm`, a VM in `b` made from `a`'s template.
fn cross_tenant_config(s: &str, vm: bool) -> String {
    let vm = if vm {
        r#"
resource "basalt_vm" "stolen" {
  tenant_id   = basalt_tenant.b.id
  name        = "stolen"
  cluster_id  = basalt_tenant_quota.b.cluster_id
  template_id = basalt_template.a_private.id
}
"#
    } else {
        ""
    };
    format!(
        r#"{PROVIDER}

resource "basalt_cluster" "c" {{
  name  = "acc-c-{s}"
  hosts = ["test:///default?name=acc-neg-{s}"]
}}

resource "basalt_tenant" "a" {{
  name = "acc-a-{s}"
}}

resource "basalt_tenant" "b" {{
  name = "acc-b-{s}"
}}

resource "basalt_tenant_quota" "b" {{
  tenant_id  = basalt_tenant.b.id
  cluster_id = basalt_cluster.c.id
  vcpus      = 4
  memory_mib = 4096
  max_vms    = 2
}}

resource "basalt_template" "a_private" {{
  tenant_id  = basalt_tenant.a.id
  name       = "a-only"
  vcpus      = 1
  memory_mib = 512
}}
{vm}
output "b_id" {{ value = basalt_tenant.b.id }}
output "quota_id" {{ value = basalt_tenant_quota.b.id }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_of_another_tenant_is_refused_on_template_id() {
    let server = TestServer::start().await;
    let tf = terraform(&server, &server.admin_token);
    let s = suffix();

    tf.write_config(&cross_tenant_config(&s, false));
    tf.expect(0, APPLY).await;
    let before = state_list(&tf).await;

    tf.write_config(&cross_tenant_config(&s, true));
    let out = flat(&tf.expect(1, APPLY).await);
    assert!(out.contains("Error creating basalt_vm"), "{out}");
    assert!(out.contains("no such template"), "says what is wrong:\n{out}");
    assert!(out.contains("`template_id` must name an object that exists and is visible in the tenant"), "{out}");
    assert!(out.contains("template_id = basalt_template.a_private.id"), "points at template_id:\n{out}");

    // No VM, no usage, and the state is what it was.
    assert_eq!(state_list(&tf).await, before, "the state holds no VM");
    let b = in_tenant(&server, &tf.output("b_id").await).await;
    let vms: Page<Vm> = b.get_at("/v1/vms").await.expect("list VMs");
    assert!(vms.items.is_empty(), "no VM in tenant b: {:?}", vms.items);
    let quota: Quota = server.admin.get_at(&format!("/v1/quotas/{}", tf.output("quota_id").await)).await.expect("q");
    assert_eq!((quota.vcpus_used, quota.memory_used_mib, quota.vms_used), (0, 0, 0), "nothing reserved");

    tf.write_config(&cross_tenant_config(&s, false));
    tf.expect(0, PLAN_CLEAN).await;
    tf.expect(0, DESTROY).await;
    server.stop().await;
}

fn suspended_config(tenant: &str, description: &str, user: bool) -> String {
    let user = if user { "\nresource \"basalt_user\" \"dave\" {\n  username = \"dave\"\n}\n" } else { "" };
    format!(
        r#"terraform {{
  required_providers {{
    basalt = {{ source = "basalt/basalt" }}
  }}
}}

# A customer's own configuration: everything in its tenant.
provider "basalt" {{
  tenant = "{tenant}"
}}

resource "basalt_role" "ops" {{
  name        = "ops"
  description = "{description}"
  permissions = ["user:list", "user:read"]
}}

output "role_id" {{ value = basalt_role.ops.id }}
{user}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_a_suspended_tenant_say_so() {
    let server = TestServer::start().await;
    let tf = terraform(&server, &server.admin_token);
    let name = format!("acc-{}", suffix());
    let create = CreateTenant { name: name.clone(), ..Default::default() };
    let tenant = server.admin.create_tenant(&create, &RequestOptions::default()).await.expect("create tenant");

    tf.write_config(&suspended_config(&name, "Operators", false));
    tf.expect(0, APPLY).await;
    let role_id = tf.output("role_id").await;

    // Suspended by the provider's staff: reads still work (the plan does), changes do not.
    server.admin.suspend_tenant(tenant.id).await.expect("suspend");
    tf.write_config(&suspended_config(&name, "Operators of acme", true));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("1 to add, 1 to change"), "{plan}");
    let out = flat(&tf.expect(1, APPLY).await);
    assert!(out.contains("Tenant suspended while creating basalt_user"), "{out}");
    assert!(out.contains("Tenant suspended while updating basalt_role"), "{out}");
    assert!(out.contains("is suspended: Basalt still answers reads but refuses every change"), "{out}");

    // Nothing changed: no user, the role as it was, the state as it was.
    let inside = in_tenant(&server, &name).await;
    let users: Page<User> = inside.get_at("/v1/users").await.expect("list users");
    assert!(users.items.iter().all(|u| u.username != "dave"), "no user was created: {:?}", users.items);
    let role: Role = inside.get_role(Uuid::try_parse(&role_id).expect("uuid")).await.expect("role");
    assert_eq!(role.description, "Operators", "the role was not changed");
    let state = state_list(&tf).await;
    assert!(state.contains("basalt_role.ops") && !state.contains("basalt_user.dave"), "{state}");

    // Resumed, the same apply goes through.
    server.admin.resume_tenant(tenant.id).await.expect("resume");
    tf.expect(0, APPLY).await;
    tf.expect(0, PLAN_CLEAN).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_an_authentication_error() {
    let server = TestServer::start().await;
    let s = suffix();
    let created = server
        .admin
        .create_api_token(&CreateApiToken { name: format!("ci-{s}"), tenant: None, ttl_seconds: None })
        .await
        .expect("create a token");
    let pipeline = Client::new(&server.endpoint, Some(created.secret.clone()));
    pipeline.me().await.expect("the new token works");
    server.admin.revoke_api_token(created.token.id).await.expect("revoke it");

    let tf = terraform(&server, &created.secret);
    tf.write_config(&format!("{PROVIDER}\n\nresource \"basalt_tenant\" \"t\" {{\n  name = \"acc-{s}\"\n}}\n"));
    let out = flat(&tf.expect(1, APPLY).await);
    assert!(out.contains("Authentication failed while creating basalt_tenant"), "{out}");
    assert!(out.contains("revoked"), "says why a token is refused:\n{out}");
    assert!(out.contains("BASALT_TOKEN"), "says where the token comes from:\n{out}");
    assert!(!out.contains(&created.secret), "the token is never shown:\n{out}");

    assert!(tenants_named(&server, &format!("acc-{s}")).await.is_empty(), "no tenant was created");
    assert!(state_list(&tf).await.trim().is_empty(), "nothing in the state");
    server.stop().await;
}
