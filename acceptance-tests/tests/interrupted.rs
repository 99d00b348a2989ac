//! A provider killed in the middle of an apply: Terraform loses the answers of
//! the creates in flight (objects made on the server, never written to the
//! state). A second apply converges without duplicates and without conflicts,
//! because every create carries an `Idempotency-Key` derived from the planned
//! instance: the server answers the lost creates again instead of refusing a
//! second object of the same name.

use std::time::{Duration, Instant};

use basalt_acceptance_tests::server::TestServer;
use basalt_acceptance_tests::terraform::{terraform_binary, Terraform, APPLY, DESTROY, PLAN_CLEAN, PROVIDER};
use basalt_client::{Page, Role};
use uuid::Uuid;

const ROLES: usize = 40;

fn config(tenant: &str) -> String {
    format!(
        r#"{PROVIDER}

resource "basalt_tenant" "t" {{
  name = "{tenant}"
}}

resource "basalt_role" "r" {{
  count       = {ROLES}
  tenant_id   = basalt_tenant.t.id
  name        = "r-${{count.index}}"
  permissions = ["vm:read", "vm:list"]
}}
"#
    )
}

/// The `terraform-provider-basalt` processes started by process `parent`.
fn providers_of(parent: u32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else { continue };
        let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && head.contains("terraform-prov") {
            found.push(pid);
        }
    }
    found
}

async fn custom_roles(server: &TestServer, tenant: &str) -> Vec<String> {
    let Ok(t) = server.admin.switch_tenant(tenant).await else { return Vec::new() };
    let inside = server.admin.with_token(t.token);
    let page: Page<Role> = inside.get_at("/v1/roles?limit=500").await.expect("roles");
    page.items.into_iter().filter(|r| !r.builtin).map(|r| r.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_provider_mid_apply_converges_on_the_next_apply_without_duplicates() {
    let bin = terraform_binary().expect("no terraform or tofu on PATH: run scripts/setup (or set BASALT_TERRAFORM)");
    let server = TestServer::start().await;
    let tf = Terraform::new(bin, &server.endpoint, &server.admin_token);
    let tenant = format!("acc-kill-{}", &Uuid::new_v4().simple().to_string()[..8]);
    tf.write_config(&config(&tenant));

    // Apply, and kill the provider once some roles exist but not all.
    let mut apply = tf
        .command(APPLY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("apply");
    let pid = apply.id().expect("terraform pid");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed = 0;
    while Instant::now() < deadline {
        let made = custom_roles(&server, &tenant).await.len();
        if made >= 5 {
            for provider in providers_of(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(provider), nix::sys::signal::Signal::SIGKILL);
                killed += 1;
            }
            if killed > 0 {
                break;
            }
        }
        if let Ok(Some(_)) = apply.try_wait() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = apply.wait().await.expect("apply ends");
    assert!(killed > 0, "the provider was never caught mid-apply");
    assert!(!status.success(), "an apply whose provider was killed fails");
    let partial = custom_roles(&server, &tenant).await.len();
    let listed = tf.run(&["state", "list"]).await;
    let in_state = String::from_utf8_lossy(&listed.stdout).lines().filter(|l| l.starts_with("basalt_role.r[")).count();
    // Made on the server but never written to the state: what the next apply
    // must adopt through its idempotency keys rather than create again.
    println!("killed the provider with {partial} of {ROLES} roles made, {in_state} of them in the state");
    assert!(partial < ROLES, "the kill came before the end");
    assert!(in_state <= partial, "the state holds no role the server lacks");

    // The second apply finishes the work: no conflict, no duplicate, clean plan.
    tf.expect(0, APPLY).await;
    tf.expect(0, PLAN_CLEAN).await;
    let mut names = custom_roles(&server, &tenant).await;
    names.sort();
    let mut expected: Vec<String> = (0..ROLES).map(|i| format!("r-{i}")).collect();
    expected.sort();
    assert_eq!(names, expected, "every role once");

    tf.expect(0, DESTROY).await;
    server.stop().await;
}
