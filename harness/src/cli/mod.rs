//! The `certify` command line: arguments, and one module per subcommand. `main.rs` only calls
//! [`main`] with the registry of the component types the build knows. Exit status: 0 when no
//! case failed or was inconclusive, 1 when one did, 2 when the run could not be set up.

mod bench;
mod init;
mod report;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use contract::Registry;

use crate::{Session, SessionOptions, Source};

/// Conformance and certification for Dapr-style building-block components.
#[derive(Debug, Parser)]
#[command(name = "certify", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the cases of a spec (default: the built-in in-memory spec, in-process and over
    /// HTTP), or of a running sidecar with --sidecar.
    Run(run::RunArgs),
    /// Measures latency and throughput under the spec's bench profile, against its budgets,
    /// beside baselines (the harness's own cost, each backend's raw client, the sidecar's cost).
    Bench(bench::BenchArgs),
    /// Lists the cases.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lists the component types this build can certify.
    Types,
    /// Removes what earlier runs left behind when they died without cleaning up (containers
    /// and server folders whose certify process is gone); `run` and `bench` do it first too.
    Clean,
    /// Renders a stored report again, or merges the bundles of a run's shards.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Checks a bundle's certificate.json against its report.json (digests, verdict counts,
    /// levels) and, with --public-key, its signature; prints the badge line. Exits 1 on any
    /// mismatch.
    Verify {
        /// The bundle folder.
        bundle: std::path::PathBuf,
        /// The signer's Ed25519 public key (PEM, as `openssl pkey -pubout` writes).
        #[arg(long, value_name = "FILE")]
        public_key: Option<std::path::PathBuf>,
    },
    /// Writes a commented spec for a Component YAML: every claim of its block and every
    /// setting, explained, ready to uncomment.
    Init(init::InitArgs),
    /// Prints the JSON Schema of a spec file (what `specs/spec.schema.json` holds), for editors
    /// and CI linters.
    Schema,
    /// Prints the shell completion script, e.g. `certify completions bash > /etc/bash_completion.d/certify`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Runs the command line with the component types of `registry`.
pub fn main(registry: Registry) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            // lapin reports a broker that went away as errors of its own; the component says so
            // in its words, and at exit the broker stopping first is expected.
            "warn,lapin::io_loop=off,lapin::channels=off".into()
        }))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Run(args) => runtime.block_on(run::run(args, &registry)),
        Command::Bench(args) => runtime.block_on(bench::bench(args, &registry)),
        Command::List { json } => list(json),
        Command::Clean => runtime.block_on(clean()),
        Command::Report(command) => report::report(command),
        Command::Verify { bundle, public_key } => report::verify(&bundle, public_key.as_deref()),
        Command::Init(args) => init::init(args, &registry),
        Command::Schema => {
            out(&serde_json::to_string_pretty(&crate::spec::json_schema()).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "certify",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Types => {
            for t in registry.types() {
                out(t);
            }
            ExitCode::SUCCESS
        }
    }
}

/// The PEM text of `--sign-key`, if given; a file that cannot be read fails at once.
fn read_sign_key(path: Option<&std::path::Path>) -> Result<Option<String>, ExitCode> {
    let Some(path) = path else { return Ok(None) };
    let pem = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("--sign-key: cannot read `{}`: {e}", path.display())))?;
    reports::signing_key(&pem).map_err(|e| fail(format!("--sign-key `{}`: {e}", path.display())))?;
    Ok(Some(pem))
}

/// Prints `error: {message}` and answers exit status 2 (the run could not be set up).
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Opens the session of a run or a benchmark, with the environment's options and `--backends`. An interrupt while starting backends stops what was
/// started.
async fn open_session(
    source: Source,
    registry: &Registry,
    backends: Option<&str>,
    interrupt: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<Session, ExitCode> {
    let mut options = SessionOptions::from_env().map_err(fail)?;
    if let Some(choice) = backends {
        options.provider = choice.parse().map_err(|e| fail(format!("--backends: {e}")))?;
    }
    let opened = tokio::select! {
        opened = Session::open(source, registry, &options) => opened,
        () = interrupt.as_mut() => return Err(stopped()),
    };
    opened.map_err(fail)
}

/// Prints the line that says a backend is in use.
fn backend_line(kind: &str, provider: &str, host: &str) {
    out(&format!("{:>12} {kind} ({provider}) at {host}", "Backend"));
}

/// Removes earlier runs' leftovers, saying what went; false when something could not go.
async fn clean_leftovers() -> bool {
    let (removed, errors) = fixtures::leftovers::clean().await;
    for r in &removed {
        out(&format!("{:>12} {r}", "Cleaned"));
    }
    for e in &errors {
        eprintln!("warning: {e}");
    }
    errors.is_empty()
}

async fn clean() -> ExitCode {
    let (removed, errors) = fixtures::leftovers::clean().await;
    for r in &removed {
        out(&format!("{:>12} {r}", "Removed"));
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    if removed.is_empty() && errors.is_empty() {
        out("nothing left behind by earlier runs");
    }
    if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn list(json: bool) -> ExitCode {
    let cases = crate::Catalogue::builtin().cases();
    if json {
        let entries: Vec<serde_json::Value> = cases
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id,
                    "block": c.block.prefix(),
                    "rule": c.rule,
                    "source": c.source,
                    "claims": c.claims().iter().map(|x| x.as_str()).collect::<Vec<_>>(),
                    "tags": c.tags,
                    "timeout_s": c.timeout.as_secs(),
                })
            })
            .collect();
        out(&serde_json::to_string_pretty(&entries).unwrap_or_default());
    } else {
        for c in &cases {
            out(&format!("{:<52} {:<10} {}", c.id, c.source, c.rule));
        }
        out(&format!("{} cases", cases.len()));
    }
    ExitCode::SUCCESS
}

/// Completes on SIGINT or SIGTERM. Both listeners are registered when this is first polled.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// The run was interrupted: everything it started has been stopped (by dropping it).
fn stopped() -> ExitCode {
    eprintln!("interrupted: stopped every backend and server this run started");
    ExitCode::from(130)
}

/// Prints a line; a closed stdout (`certify list | head`) is not an error worth a panic.
/// Set when stdout carries machine output (`--message-format json`): lines for people go to
/// stderr then.
static HUMAN_ON_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn out(line: &str) {
    use std::io::Write;
    let _ = match HUMAN_ON_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
        true => writeln!(std::io::stderr(), "{line}"),
        false => writeln!(std::io::stdout(), "{line}"),
    };
}
