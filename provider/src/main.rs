//! The `terraform-provider-basalt` binary: started by Terraform (go-plugin), or
//! with `--debug` by a developer who then attaches Terraform to it; `docs`
//! writes the registry documentation.

use std::path::PathBuf;
use std::process::ExitCode;

use terraform_provider_basalt::{docs, plugin, provider};

const NOT_A_COMMAND: &str = "\
terraform-provider-basalt is a Terraform provider plugin: Terraform starts it, not you.

Use it from a Terraform configuration with `required_providers { basalt = { source = \"basalt/basalt\" } }`
(during development, point Terraform at this binary with `dev_overrides` in a TF_CLI_CONFIG_FILE),
or run `terraform-provider-basalt --debug` and attach Terraform through TF_REATTACH_PROVIDERS.

`terraform-provider-basalt docs [--out DIR] [--examples DIR]` writes the registry documentation.";

const DOCS_USAGE: &str = "\
usage: terraform-provider-basalt docs [--out DIR] [--examples DIR]

Writes the Terraform registry documentation (index.md, resources/*.md,
data-sources/*.md) from the provider's schemas and the example files.

  --out DIR       where to write (default: the provider crate's docs/)
  --examples DIR  examples/provider, examples/resources/<type>, examples/data-sources/<type>
                  (default: the repository's examples/)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "docs") {
        return docs_command(&args[1..]);
    }
    let debug = args.iter().any(|a| a == "--debug" || a == "-debug");
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

/// `docs [--out DIR] [--examples DIR]`.
fn docs_command(args: &[String]) -> ExitCode {
    let mut out = docs::default_out_dir();
    let mut examples = docs::default_examples_dir();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--out" => &mut out,
            "--examples" => &mut examples,
            "-h" | "--help" => {
                println!("{DOCS_USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("terraform-provider-basalt docs: unexpected argument {arg:?}\n\n{DOCS_USAGE}");
                return ExitCode::from(2);
            }
        };
        match args.next() {
            Some(dir) => *slot = PathBuf::from(dir),
            None => {
                eprintln!("terraform-provider-basalt docs: {arg} needs a directory\n\n{DOCS_USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let written = docs::render(&provider::registry(), &examples).and_then(|pages| {
        let removed = docs::write(&pages, &out)?;
        Ok((pages.len(), removed))
    });
    match written {
        Ok((count, removed)) => {
            println!("wrote {count} pages to {} (examples from {})", out.display(), examples.display());
            for rel in removed {
                println!("removed {rel}: no such resource or data source any more");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("terraform-provider-basalt docs: {e}");
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
