//! `certify`: parses arguments and calls into the harness library. Exit status: 0 when no case
//! failed or was inconclusive, 1 when one did, 2 when the run could not be set up.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::terminal::Terminal;
use harness::{Filter, Session, SessionOptions, Source, Spec};
use suites::Claim;

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
    Run(RunArgs),
    /// Measures latency and throughput under the spec's bench profile, against its budgets,
    /// beside baselines (the harness's own cost, each backend's raw client, the sidecar's cost).
    Bench(BenchArgs),
    /// Lists the cases.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lists the component types this build can certify.
    Types,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Run only trials whose name contains one of these (like `cargo test`).
    filters: Vec<String>,
    /// Match trial names exactly.
    #[arg(long)]
    exact: bool,
    /// Leave out trials whose name contains this; repeatable.
    #[arg(long)]
    skip: Vec<String>,
    /// A certification spec (YAML).
    #[arg(long, conflicts_with = "sidecar")]
    spec: Option<PathBuf>,
    /// Certify a running Dapr-compatible sidecar black-box, e.g. http://127.0.0.1:3500.
    #[arg(long)]
    sidecar: Option<String>,
    /// The sidecar's state store to certify.
    #[arg(long, requires = "sidecar")]
    state: Option<String>,
    /// The sidecar's pub/sub component to certify (certify serves the app on --app-port).
    #[arg(long, requires_all = ["sidecar", "app_port"])]
    pubsub: Option<String>,
    /// The port the sidecar was started with as its app port (`daprd --app-port`); certify
    /// serves the app there (pub/sub deliveries, input binding events).
    #[arg(long, requires = "sidecar")]
    app_port: Option<u16>,
    /// The sidecar's secret store to certify; it must hold `conftestsecret=abcd` and
    /// `secondsecret=efgh` (and `multisecret` when claiming multiplekeyvaluespersecret).
    #[arg(long, requires = "sidecar")]
    secrets: Option<String>,
    /// The sidecar's lock store to certify.
    #[arg(long, requires = "sidecar")]
    lock: Option<String>,
    /// The sidecar's binding to certify; with the `read` claim its input events come to
    /// certify on --app-port, at the route `/NAME`.
    #[arg(long, requires = "sidecar")]
    binding: Option<String>,
    /// Certify the sidecar's service invocation: certify serves the app on --app-port and
    /// calls its methods through the sidecar.
    #[arg(long, requires_all = ["sidecar", "app_port"])]
    invoke: bool,
    /// The sidecar's configuration store to certify (certify serves the app on --app-port,
    /// where updates arrive).
    #[arg(long, requires_all = ["sidecar", "app_port"])]
    configuration: Option<String>,
    /// A Component YAML of the same store the sidecar's configuration store uses: certify
    /// builds it to write items behind the sidecar (without it the cases that write skip).
    #[arg(long, requires = "configuration")]
    configuration_writer: Option<PathBuf>,
    /// Certify a pluggable component listening on this Unix socket, through its gRPC API
    /// (dapr.proto.components.v1; the blocks come from gRPC reflection).
    #[arg(long, conflicts_with_all = ["spec", "sidecar"])]
    pluggable: Option<PathBuf>,
    /// With --pluggable: the instance name sent as `x-component-instance` (default: the
    /// socket's file name without its extension, as daprd names it).
    #[arg(long, requires = "pluggable")]
    component: Option<String>,
    /// With --pluggable: Component metadata sent with `Init`, as KEY=VALUE (repeatable).
    #[arg(long = "metadata", requires = "pluggable", value_parser = parse_key_value)]
    metadata: Vec<(String, String)>,
    /// The claims, comma-separated (default: from the capabilities the sidecar lists, or the
    /// pluggable component's `Features`).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// Where report.json, junit.xml and summary.md go.
    #[arg(long, default_value = "certify-report")]
    report_dir: PathBuf,
    /// Cases running at once (default: the spec's profile).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print only failing and inconclusive cases while running.
    #[arg(long)]
    failures_only: bool,
    /// Where backends come from: auto, process or external (default: CERTIFY_BACKENDS, else auto).
    #[arg(long)]
    backends: Option<String>,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Measure only what contains one of these, e.g. `state.get` or `[http]`.
    filters: Vec<String>,
    /// A certification spec (YAML); its `bench` section and `budgets` apply.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Where bench.json, bench.md, summary.md and bench.html go.
    #[arg(long, default_value = "certify-report")]
    report_dir: PathBuf,
    /// A stored bench.json to compare with; a regression fails the run.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// How much slower (p50 or p99) counts as a regression: 0.2 is 20 %.
    #[arg(long, default_value_t = 0.2)]
    threshold: f64,
    /// Where backends come from: auto, testcontainers, process or external.
    #[arg(long)]
    backends: Option<String>,
}

fn main() -> ExitCode {
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
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Bench(args) => runtime.block_on(bench(args)),
        Command::List { json } => list(json),
        Command::Types => {
            for t in reference_runtime::builtin_registry().types() {
                out(t);
            }
            ExitCode::SUCCESS
        }
    }
}

/// Opens the session of a run or a benchmark, with the environment's options, the spec path
/// for rerun commands and `--backends`; prints the backends it started. An interrupt while
/// starting them stops what was started.
async fn open_session(
    source: Source,
    spec: Option<&std::path::Path>,
    backends: Option<&str>,
    interrupt: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<Session, ExitCode> {
    let fail = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    };
    let mut options = SessionOptions::from_env().map_err(fail)?;
    options.spec_arg = spec.map(|p| p.display().to_string());
    if let Some(choice) = backends {
        options.provider = choice.parse().map_err(|e| fail(format!("--backends: {e}")))?;
    }
    let registry = reference_runtime::builtin_registry();
    let opened = tokio::select! {
        opened = Session::open(source, &registry, &options) => opened,
        () = interrupt.as_mut() => return Err(stopped()),
    };
    let session = opened.map_err(|e| fail(e.to_string()))?;
    for (kind, provider, host) in session.backends() {
        out(&format!("{:>12} {kind} ({provider}) at {host}", "Backend"));
    }
    Ok(session)
}

fn parse_claims(names: &[String]) -> Result<BTreeSet<Claim>, String> {
    names
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| {
            Claim::parse(n).ok_or_else(|| {
                let known = Claim::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
                format!("--features: unknown feature `{n}` (known: {known})")
            })
        })
        .collect()
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let fail = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    };
    if args.features.is_some() && args.sidecar.is_none() && args.pluggable.is_none() {
        return fail("--features goes with --sidecar or --pluggable; a spec gives claims per component".into());
    }
    let (source, concurrency) = if let Some(socket) = &args.pluggable {
        let claims = match args.features.as_deref().map(parse_claims).transpose() {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let target = harness::session::PluggableTarget {
            socket: socket.clone(),
            component: args.component.clone(),
            metadata: args.metadata.iter().cloned().collect(),
            claims,
        };
        (Source::Pluggable(target), 8)
    } else if let Some(url) = &args.sidecar {
        if [&args.state, &args.pubsub, &args.secrets, &args.lock, &args.binding, &args.configuration]
            .iter()
            .all(|c| c.is_none())
            && !args.invoke
        {
            return fail(
                "--sidecar needs something to certify: --state NAME, --pubsub NAME --app-port PORT, --secrets NAME, --lock NAME, --binding NAME, --configuration NAME --app-port PORT, --invoke --app-port PORT"
                    .into(),
            );
        }
        let claims = match args.features.as_deref().map(parse_claims).transpose() {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        if args.binding.is_some()
            && args.app_port.is_none()
            && claims.as_ref().is_some_and(|c| c.contains(&suites::Claim::Read))
        {
            return fail(
                "--binding with the `read` claim needs --app-port PORT: the sidecar's app port, where certify receives the binding's input events"
                    .into(),
            );
        }
        let token = std::env::var("DAPR_API_TOKEN").ok().filter(|t| !t.is_empty());
        let source = Source::Sidecar(harness::session::SidecarTarget {
            url: url.clone(),
            state: args.state.clone(),
            pubsub: args.pubsub.clone(),
            app_port: args.app_port,
            secrets: args.secrets.clone(),
            lock: args.lock.clone(),
            binding: args.binding.clone(),
            invoke: args.invoke,
            configuration: args.configuration.clone(),
            configuration_writer: args.configuration_writer.clone(),
            claims,
            token,
        });
        (source, 8)
    } else {
        let spec = match &args.spec {
            Some(path) => Spec::load(path),
            None => Spec::builtin(),
        };
        match spec {
            Ok(spec) => {
                let concurrency = spec.profile.concurrency;
                (Source::Spec(spec), concurrency)
            }
            Err(e) => return fail(e.to_string()),
        }
    };
    // Setting up may start servers; an interrupt must still stop them. One listener for the
    // whole run, so a signal between phases is not lost.
    let mut interrupt = std::pin::pin!(interrupted());
    let session = match open_session(source, args.spec.as_deref(), args.backends.as_deref(), &mut interrupt).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let filter = Filter { patterns: args.filters, exact: args.exact, skip: args.skip };
    let mut terminal = Terminal::stdout();
    terminal.verbose = !args.failures_only;
    let jobs = args.jobs.unwrap_or(concurrency);
    let mut on_event = |e: harness::Event<'_>| terminal.event(e);
    let report = tokio::select! {
        report = harness::certify(&session, &filter, jobs, &mut on_event) => report,
        () = &mut interrupt => {
            // Dropping the session stops the reference runtime and every backend it started.
            drop(session);
            return stopped();
        }
    };
    session.close().await;
    terminal.summary(&report);
    match reports::write_bundle(&report, &args.report_dir) {
        Ok(paths) => out(&format!(
            "{:>12} {}",
            "Report",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )),
        Err(e) => return fail(e.to_string()),
    }
    if report.summary.total == 0 {
        eprintln!("error: no case matched the filters");
        return ExitCode::from(2);
    }
    if report.summary.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn bench(args: BenchArgs) -> ExitCode {
    let fail = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    };
    let spec = match &args.spec {
        Some(path) => Spec::load(path),
        None => Spec::builtin(),
    };
    let spec = match spec {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let baseline: Option<reports::BenchReport> = match &args.baseline {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(b) => Some(b),
            Err(e) => return fail(format!("--baseline `{}`: {e}", path.display())),
        },
    };
    let (budgets, profile) = (spec.budgets.clone(), spec.bench.clone());
    let mut interrupt = std::pin::pin!(interrupted());
    let session =
        match open_session(Source::Spec(spec), args.spec.as_deref(), args.backends.as_deref(), &mut interrupt).await {
            Ok(s) => s,
            Err(code) => return code,
        };
    let filter = Filter { patterns: args.filters, exact: false, skip: Vec::new() };
    let mut on_record = |r: &reports::BenchRecord| {
        let why = r.reason.as_ref().map(|x| format!("\n{:>12} {x}", "")).unwrap_or_default();
        if r.samples == 0 {
            return out(&format!("{:>12} {}{why}", r.verdict.label(), r.key()));
        }
        out(&format!(
            "{:>12} {:<44} p50 {:>9.1} µs  p99 {:>9.1} µs  p99.9 {:>9.1} µs  {:>8.0}/s{}",
            r.verdict.label(),
            r.key(),
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.throughput,
            why
        ))
    };
    let report = tokio::select! {
        report = harness::bench::run(&session, &profile, &budgets, &filter, &mut on_record) => report,
        () = &mut interrupt => {
            drop(session);
            return stopped();
        }
    };
    session.close().await;
    if report.records.is_empty() {
        return fail("nothing matched the filters".into());
    }
    out("");
    out(&reports::bench_table(&report));
    match reports::write_bench(&report, &args.report_dir) {
        Ok(paths) => {
            // The percentile tables also go into summary.md, as for `certify run`.
            let summary = args.report_dir.join("summary.md");
            let _ = std::fs::write(&summary, format!("# certify bench\n\n{}", reports::bench_table(&report)));
            out(&format!(
                "{:>12} {}, {}",
                "Report",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                summary.display()
            ));
        }
        Err(e) => return fail(e.to_string()),
    }
    let mut ok = report.ok();
    if let Some(baseline) = baseline {
        let found = reports::regressions(&report, &baseline, args.threshold, 5.0);
        for r in &found {
            out(&format!(
                "{:>12} {} {}: {:.1} µs, baseline {:.1} µs (+{:.0} %)",
                "REGRESSED",
                r.key,
                r.figure,
                r.current_us,
                r.baseline_us,
                (r.current_us / r.baseline_us - 1.0) * 100.0
            ));
        }
        if found.is_empty() {
            out(&format!("{:>12} no regression over {:.0} % against the baseline", "Baseline", args.threshold * 100.0));
        }
        ok &= found.is_empty();
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn list(json: bool) -> ExitCode {
    let cases = suites::all_cases();
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
fn out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}
