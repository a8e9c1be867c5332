//! `certify`: the command-line entry point. Parses arguments and calls into the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod load;

/// Conformance and certification for Dapr-style building-block components.
#[derive(Debug, Parser)]
#[command(name = "certify", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Builds the components of the given resources (default: the built-in in-memory set),
    /// checks each one answers, and prints what it serves.
    Run {
        /// A Component YAML file or a directory of them; repeatable.
        #[arg(long = "resources-path")]
        resources_path: Vec<PathBuf>,
    },
    /// Lists the component types this build can certify.
    Types,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Run { resources_path } => runtime.block_on(load::run(&resources_path)),
        Command::Types => {
            for t in reference_runtime::builtin_registry().types() {
                println!("{t}");
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
