//! The `terraform-provider-basalt` binary: started by Terraform (go-plugin), or
//! with `--debug` by a developer who then attaches Terraform to it.

use std::process::ExitCode;

use terraform_provider_basalt::plugin;

const NOT_A_COMMAND: &str = "\
terraform-provider-basalt is a Terraform provider plugin: Terraform starts it, not you.

Use it from a Terraform configuration with `required_providers { basalt = { source = \"basalt/basalt\" } }`
(during development, point Terraform at this binary with `dev_overrides` in a TF_CLI_CONFIG_FILE),
or run `terraform-provider-basalt --debug` and attach Terraform through TF_REATTACH_PROVIDERS.";

fn main() -> ExitCode {
    let debug = std::env::args().skip(1).any(|a| a == "--debug" || a == "-debug");
    if !debug && !plugin::launched_by_terraform() {
        eprintln!("{NOT_A_COMMAND}");
        return ExitCode::from(1);
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-basalt: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        if debug {
            plugin::run_debug().await
        } else {
            plugin::run().await
        }
    });
    // Idle streams (stdio, broker) may still hold tasks: do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("terraform-provider-basalt: {e}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr, where Terraform shows them under TF_LOG; stdout belongs to
/// the handshake. `BASALT_PROVIDER_LOG` sets the filter (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BASALT_PROVIDER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).init();
}
