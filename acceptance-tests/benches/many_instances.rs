//! What the provider adds to a large configuration: the real Terraform CLI plans
//! and applies 200 instances of a cheap Basalt resource (`basalt_role`, `count =
//! 200`, in one tenant entered through the provider's `tenant`) against a real
//! server, and the same number of `terraform_data` (built into Terraform: no
//! provider process, no API) as the baseline. Each run starts from an empty state
//! in a fresh working directory (and, for the roles, a fresh tenant), so `plan`
//! plans 200 creates and `apply` plans and makes them. Neither needs `terraform
//! init`: the Basalt provider comes from `dev_overrides`, `terraform_data` is
//! built in.
//!
//! Prints the median of [`RUNS`] runs of each step and the Basalt/terraform_data
//! ratio as a markdown table. Run with
//! `cargo bench -p basalt-acceptance-tests --bench many_instances` (Postgres from
//! `BASALT_TEST_DATABASE_URL`; Terraform from `BASALT_TERRAFORM` or `PATH`). The
//! provider is built with `cargo build --release` (what users run, like the
//! server that `cargo bench` links in); `BASALT_PROVIDER_DIR` points at another
//! build instead, e.g. `target/debug`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use basalt_acceptance_tests::server::TestServer;
use basalt_acceptance_tests::terraform::terraform_binary;
use basalt_client::{CreateTenant, RequestOptions};
use uuid::Uuid;

const INSTANCES: usize = 200;
const RUNS: usize = 3;
const COMMAND: &str = "cargo bench -p basalt-acceptance-tests --bench many_instances";

/// Builds `terraform-provider-basalt` with `--release` and returns its directory
/// (cargo has released its build lock by the time a bench runs).
fn release_provider_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = std::process::Command::new(cargo)
        .args(["build", "--release", "-p", "terraform-provider-basalt", "--bin", "terraform-provider-basalt"])
        .args(["--message-format=json-render-diagnostics"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run cargo build for the provider");
    assert!(out.status.success(), "building the provider failed");
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|m| m.get("executable").and_then(|e| e.as_str()).map(PathBuf::from))
        .find(|p| p.file_name().is_some_and(|n| n == "terraform-provider-basalt"))
        .expect("cargo reported the provider executable");
    exe.parent().expect("executable has a directory").to_path_buf()
}

/// A scratch working directory, its CLI configuration and environment.
struct Workdir {
    terraform: PathBuf,
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Workdir {
    fn new(terraform: &Path, provider: &Path, env: Vec<(&'static str, String)>, config: &str) -> Workdir {
        let dir = std::env::temp_dir().join(format!("basalt-bench-tf-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("working directory");
        let cli_config = dir.join("terraform.rc");
        let overrides = format!(
            "provider_installation {{\n  dev_overrides {{\n    \"basalt/basalt\" = {:?}\n  }}\n  direct {{}}\n}}\n",
            provider.display().to_string()
        );
        std::fs::write(&cli_config, overrides).expect("CLI configuration");
        std::fs::write(dir.join("main.tf"), config).expect("main.tf");
        let mut env = env;
        env.push(("TF_CLI_CONFIG_FILE", cli_config.display().to_string()));
        Workdir { terraform: terraform.to_path_buf(), dir, env }
    }

    /// Runs `terraform ARGS`, requires success and `expect` in its output, and
    /// returns how long it took.
    async fn time(&self, args: &[&str], expect: &str) -> Duration {
        let start = Instant::now();
        let out = tokio::process::Command::new(&self.terraform)
            .args(args)
            .current_dir(&self.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_REATTACH_PROVIDERS")
            .env_remove("TF_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .await
            .expect("run terraform");
        let took = start.elapsed();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success() && text.contains(expect),
            "terraform {} exited {:?} without {expect:?}:\n{text}",
            args.join(" "),
            out.status
        );
        took
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn roles_config(tenant: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    basalt = {{ source = "basalt/basalt" }}
  }}
}}

provider "basalt" {{
  tenant = "{tenant}"
}}

resource "basalt_role" "r" {{
  count       = {INSTANCES}
  name        = "role-${{count.index}}"
  permissions = ["user:read"]
}}
"#
    )
}

fn terraform_data_config() -> String {
    format!(
        r#"resource "terraform_data" "r" {{
  count = {INSTANCES}
  input = "role-${{count.index}}"
}}
"#
    )
}

const PLAN: &[&str] = &["plan", "-input=false", "-no-color"];
const APPLY: &[&str] = &["apply", "-auto-approve", "-input=false", "-no-color"];

#[derive(Default)]
struct Samples {
    plan: Vec<Duration>,
    apply: Vec<Duration>,
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn list(samples: &[Duration]) -> String {
    samples.iter().map(|d| secs(*d)).collect::<Vec<_>>().join(", ")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let terraform = terraform_binary().expect("terraform (BASALT_TERRAFORM, or terraform/tofu on PATH)");
    let provider = std::env::var_os("BASALT_PROVIDER_DIR").map_or_else(release_provider_dir, PathBuf::from);
    let server = TestServer::start().await;
    let env = vec![("BASALT_ENDPOINT", server.endpoint.clone()), ("BASALT_TOKEN", server.admin_token.clone())];
    let plan_expect = format!("Plan: {INSTANCES} to add, 0 to change, 0 to destroy.");
    let apply_expect = format!("Apply complete! Resources: {INSTANCES} added");

    let mut basalt = Samples::default();
    let mut builtin = Samples::default();
    // Run 0 warms caches (the binaries, the server's pool) and is not counted.
    for run in 0..=RUNS {
        let tenant = format!("bench-{run}-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let req = CreateTenant { name: tenant.clone(), ..Default::default() };
        server.admin.create_tenant(&req, &RequestOptions::default()).await.expect("create the tenant");

        let roles = Workdir::new(&terraform, &provider, env.clone(), &roles_config(&tenant));
        let plan = roles.time(PLAN, &plan_expect).await;
        let apply = roles.time(APPLY, &apply_expect).await;
        eprintln!("run {run}: basalt_role        plan {} s, apply {} s", secs(plan), secs(apply));
        if run > 0 {
            basalt.plan.push(plan);
            basalt.apply.push(apply);
        }

        let data = Workdir::new(&terraform, &provider, env.clone(), &terraform_data_config());
        let plan = data.time(PLAN, &plan_expect).await;
        let apply = data.time(APPLY, &apply_expect).await;
        eprintln!("run {run}: terraform_data     plan {} s, apply {} s", secs(plan), secs(apply));
        if run > 0 {
            builtin.plan.push(plan);
            builtin.apply.push(apply);
        }
    }
    server.stop().await;

    let version = std::process::Command::new(&terraform)
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().to_string())
        .unwrap_or_default();
    println!("\n`{COMMAND}` — {version}, provider from {}\n", provider.display());
    println!(
        "| {INSTANCES} instances, from an empty state | `basalt_role` (s) | `terraform_data` (s) | Basalt / terraform_data |"
    );
    println!("|---|---:|---:|---:|");
    for (step, b, d) in [("plan", &basalt.plan, &builtin.plan), ("apply", &basalt.apply, &builtin.apply)] {
        let (mb, md) = (median(b), median(d));
        println!(
            "| `terraform {step}` (median of {RUNS}) | {} | {} | {:.2}× |",
            secs(mb),
            secs(md),
            mb.as_secs_f64() / md.as_secs_f64()
        );
    }
    println!("\nRuns (s): basalt_role plan {}; apply {}", list(&basalt.plan), list(&basalt.apply));
    println!("Runs (s): terraform_data plan {}; apply {}", list(&builtin.plan), list(&builtin.apply));
}
