//! `basalt_tenant` through the real Terraform CLI against a real server and
//! Postgres, in the step model of terraform-plugin-testing: apply, a clean second
//! plan, update in place, import, out-of-band delete and re-create, replacement,
//! destroy — checking the API after each step. Plus a validation error that must
//! point at the attribute.

use basalt_acceptance_tests::server::TestServer;
use basalt_acceptance_tests::terraform::{terraform_binary, Terraform, APPLY, PLAN_CLEAN, PROVIDER};
use basalt_client::{Tenant, TenantState};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

fn config(name: &str, display_name: &str, state: Option<&str>) -> String {
    let state = state.map(|s| format!("  state        = \"{s}\"\n")).unwrap_or_default();
    format!(
        r#"{PROVIDER}

resource "basalt_tenant" "t" {{
  name         = "{name}"
  display_name = "{display_name}"
{state}}}

data "basalt_tenant" "by_name" {{
  name = basalt_tenant.t.name
}}

output "id" {{
  value = basalt_tenant.t.id
}}

output "looked_up_id" {{
  value = data.basalt_tenant.by_name.id
}}
"#
    )
}

async fn tenant(server: &TestServer, id: &str) -> Option<Tenant> {
    let id = Uuid::try_parse(id).expect("id is a UUID");
    match server.admin.get_tenant(id).await {
        Ok(t) => Some(t),
        Err(e) if e.status() == Some(404) => None,
        Err(e) => panic!("reading tenant {id}: {e}"),
    }
}

/// How many tenant creates sent a provider-derived `Idempotency-Key` (with `suffix`).
async fn idempotency_keys(server: &TestServer, suffix: &str) -> i64 {
    let mut conn = PgConnection::connect(server.database_url()).await.expect("admin connection");
    let pattern = format!("^terraform-basalt_tenant-[0-9a-f]{{32}}{suffix}$");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM idempotency_keys WHERE key ~ $1")
        .bind(pattern)
        .fetch_one(&mut conn)
        .await
        .expect("count keys");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_lifecycle_with_real_terraform() {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let server = TestServer::start().await;
    let tf = Terraform::new(bin, &server.endpoint, &server.admin_token);
    let name = format!("acc-{}", &Uuid::new_v4().simple().to_string()[..8]);

    // Create, then a second plan shows nothing to do.
    tf.write_config(&config(&name, "Acme", None));
    tf.expect(0, APPLY).await;
    let id = tf.output("id").await;
    assert_eq!(tf.output("looked_up_id").await, id, "the data source finds the tenant by name");
    let t = tenant(&server, &id).await.expect("created tenant exists");
    assert_eq!((t.name.as_str(), t.display_name.as_str(), t.state), (name.as_str(), "Acme", TenantState::Active));
    tf.expect(0, PLAN_CLEAN).await;

    // Update in place: display name and suspension, same id.
    tf.write_config(&config(&name, "Acme Corp", Some("suspended")));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("updated in-place"), "an in-place update is planned:\n{plan}");
    tf.expect(0, APPLY).await;
    let t = tenant(&server, &id).await.expect("tenant still exists");
    assert_eq!((t.display_name.as_str(), t.state), ("Acme Corp", TenantState::Suspended));
    assert_eq!(tf.output("id").await, id, "an update keeps the id");
    tf.expect(0, PLAN_CLEAN).await;

    // Import: forget it, import it by id, and the plan is clean again.
    tf.expect(0, &["state", "rm", "basalt_tenant.t"]).await;
    tf.expect(0, &["import", "-input=false", "-no-color", "basalt_tenant.t", &id]).await;
    tf.expect(0, PLAN_CLEAN).await;

    // Deleted outside Terraform: the plan re-creates it, and the apply does, even
    // with the same configuration as the first create (so the same idempotency key,
    // which the server answers with the deleted tenant: the provider must notice).
    tf.write_config(&config(&name, "Acme", None));
    tf.expect(0, APPLY).await;
    server.admin.delete_tenant(Uuid::try_parse(&id).expect("uuid")).await.expect("out-of-band delete");
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("will be created"), "a re-create is planned:\n{plan}");
    tf.expect(0, APPLY).await;
    let id2 = tf.output("id").await;
    assert_ne!(id2, id, "a new tenant was created");
    assert!(tenant(&server, &id2).await.is_some());
    tf.expect(0, PLAN_CLEAN).await;

    assert_eq!(idempotency_keys(&server, "").await, 1, "both creates of this config derived the same key");
    // The server forgets a key when its object is deleted (since 54b30e2), so the
    // re-create is a plain create under the same key: no stale replay to retry.
    assert_eq!(idempotency_keys(&server, "-[0-9]+").await, 0, "no retry under a fresh key was needed");

    // A new name replaces the tenant.
    let renamed = format!("{name}-b");
    tf.write_config(&config(&renamed, "Acme Corp", Some("suspended")));
    let plan = tf.expect(2, PLAN_CLEAN).await;
    assert!(plan.contains("must be replaced"), "a replacement is planned:\n{plan}");
    tf.expect(0, APPLY).await;
    let id3 = tf.output("id").await;
    assert!(tenant(&server, &id2).await.is_none(), "the old tenant is gone");
    assert_eq!(tenant(&server, &id3).await.expect("replacement exists").name, renamed);

    // Destroy, and the API confirms.
    tf.expect(0, &["destroy", "-auto-approve", "-input=false", "-no-color"]).await;
    assert!(tenant(&server, &id3).await.is_none(), "destroyed");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_name_is_an_error_on_the_attribute() {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    // Validation happens before any API call, so no server is needed.
    let tf = Terraform::new(bin, "http://127.0.0.1:9", "unused");
    tf.write_config(&config("Bad_Name", "x", Some("paused")));
    let out = tf.expect(1, &["validate", "-no-color"]).await;
    assert!(out.contains("Invalid value for `name`"), "names the attribute:\n{out}");
    assert!(out.contains("name         = \"Bad_Name\""), "points at the line:\n{out}");
    assert!(out.contains("Invalid value for `state`") && out.contains("active, suspended"), "{out}");
}
