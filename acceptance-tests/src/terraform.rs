//! The real Terraform CLI in a scratch working directory, pointed at the freshly
//! built provider through `dev_overrides` in a generated `TF_CLI_CONFIG_FILE`
//! (so no `terraform init`: with overrides, init would try the registry).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use uuid::Uuid;

/// The `terraform` to run: `BASALT_TERRAFORM`, else `terraform` (or `tofu`) on PATH.
pub fn terraform_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BASALT_TERRAFORM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["terraform", "tofu"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Builds `terraform-provider-basalt` once per test process and returns its directory.
///
/// A nested `cargo build` on the same target directory works because cargo
/// releases its build lock before it runs test binaries.
pub fn provider_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let out = std::process::Command::new(cargo)
            .args(["build", "-p", "terraform-provider-basalt", "--bin", "terraform-provider-basalt"])
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
    })
}

/// A Terraform working directory with its CLI configuration and environment.
pub struct Terraform {
    bin: PathBuf,
    pub dir: PathBuf,
    cli_config: PathBuf,
    env: Vec<(String, String)>,
}

impl Terraform {
    /// A scratch directory whose provider `basalt/basalt` is the freshly built binary,
    /// configured for `endpoint` and `token` through the `BASALT_*` fallbacks.
    pub fn new(bin: PathBuf, endpoint: &str, token: &str) -> Terraform {
        let dir = std::env::temp_dir().join(format!("basalt-tf-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("terraform dir");
        let cli_config = dir.join("terraform.rc");
        let overrides = format!(
            "provider_installation {{\n  dev_overrides {{\n    \"basalt/basalt\" = {:?}\n  }}\n  direct {{}}\n}}\n",
            provider_dir().display().to_string()
        );
        std::fs::write(&cli_config, overrides).expect("write CLI config");
        let env = vec![
            ("BASALT_ENDPOINT".to_string(), endpoint.to_string()),
            ("BASALT_TOKEN".to_string(), token.to_string()),
        ];
        Terraform { bin, dir, cli_config, env }
    }

    /// Replaces the configuration with `hcl` (as `main.tf`).
    pub fn write_config(&self, hcl: &str) {
        std::fs::write(self.dir.join("main.tf"), hcl).expect("write main.tf");
    }

    /// Copies the `*.tf` files of the repository's `examples/modules/NAME` into
    /// `modules/NAME` of the working directory and returns the module `source`
    /// to use. Install it with [`GET`] once the configuration is written.
    pub fn copy_example_module(&self, name: &str) -> String {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/modules").join(name);
        let to = self.dir.join("modules").join(name);
        std::fs::create_dir_all(&to).expect("module dir");
        for entry in std::fs::read_dir(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "tf") {
                std::fs::copy(&path, to.join(path.file_name().expect("file name"))).expect("copy module file");
            }
        }
        format!("./modules/{name}")
    }

    /// `terraform ARGS` in this working directory, not started (for a test that
    /// must act while it runs).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .current_dir(&self.dir)
            // The environment may already point TF_CLI_CONFIG_FILE elsewhere: override it.
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_REATTACH_PROVIDERS")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `terraform ARGS` and returns its output, whatever the exit code.
    pub async fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().await.expect("run terraform");
        eprintln!(
            "$ terraform {} -> {}\n{}{}",
            args.join(" "),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `terraform ARGS`, requires exit code `code`, returns stdout and stderr together.
    pub async fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args).await;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "terraform {} exited {:?}:\n{text}", args.join(" "), out.status);
        text
    }

    /// `terraform output -raw NAME` (stdout only: warnings go to stderr).
    pub async fn output(&self, name: &str) -> String {
        let out = self.run(&["output", "-raw", name]).await;
        assert!(out.status.success(), "terraform output {name} failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Terraform {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `terraform apply` without questions.
pub const APPLY: &[&str] = &["apply", "-auto-approve", "-input=false", "-no-color"];
/// `terraform get`: installs the configuration's modules. `terraform init` would
/// also ask the registry for `basalt/basalt`, which dev_overrides replaces.
pub const GET: &[&str] = &["get", "-no-color"];
/// `terraform destroy` without questions.
pub const DESTROY: &[&str] = &["destroy", "-auto-approve", "-input=false", "-no-color"];
/// `terraform plan` whose exit code says whether anything would change (0: nothing).
pub const PLAN_CLEAN: &[&str] = &["plan", "-detailed-exitcode", "-input=false", "-no-color"];
/// The head of every test configuration: the provider, configured from `BASALT_*`.
pub const PROVIDER: &str = r#"terraform {
  required_providers {
    basalt = { source = "basalt/basalt" }
  }
}

provider "basalt" {}"#;
