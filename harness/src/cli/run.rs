//! `certify run`: a supervised run. The process a user starts supervises: it cleans up what
//! earlier runs left, renders, and writes the report; the trials run in a worker process (this
//! command again, told so by the environment), so a crash of a component's native library is
//! a failed trial, not a dead run (see `supervise`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use contract::{Block, Registry};
use suites::Claim;

use super::{backend_line, clean_leftovers, fail, interrupted, open_session, out, stopped};
use crate::json_lines::JsonLines;
use crate::session::{PluggableSource, SidecarSource};
use crate::supervise::{self, Outcome};
use crate::terminal::{ColorWhen, Terminal};
use crate::worker::{Share, WorkerEvent};
use crate::{Event, Filter, Source, Spec};

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
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
    /// A components-contrib conformance config (`tests/config/<block>/tests.yml`) to run as
    /// it is: its components (the Component YAML in each entry's folder) with their
    /// operations as claims.
    #[arg(long, value_name = "TESTS.YML", conflicts_with_all = ["spec", "sidecar", "pluggable"])]
    dapr_tests: Option<PathBuf>,
    /// Certify a running Dapr-compatible sidecar black-box: its HTTP API (e.g.
    /// http://127.0.0.1:3500) or its gRPC API (e.g. grpc://127.0.0.1:50001).
    #[arg(long)]
    sidecar: Option<String>,
    /// The sidecar's state store to certify.
    #[arg(long, requires = "sidecar")]
    state: Option<String>,
    /// The sidecar's pub/sub component to certify: over HTTP certify serves the app on
    /// --app-port; over gRPC it subscribes with streaming subscriptions (or, with
    /// --app-protocol grpc, takes deliveries on its AppCallback).
    #[arg(long, requires = "sidecar")]
    pubsub: Option<String>,
    /// The port the sidecar was started with as its app port (`daprd --app-port`); certify
    /// serves the app there (pub/sub deliveries, input binding events).
    #[arg(long, requires = "sidecar")]
    app_port: Option<u16>,
    /// How the sidecar calls its app (`daprd --app-protocol`): certify serves its app's HTTP
    /// routes, or the `AppCallback` gRPC services, on --app-port.
    #[arg(long, value_enum, default_value_t = AppProtocolArg::Http, requires = "app_port")]
    app_protocol: AppProtocolArg,
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
    /// Certify the sidecar's Jobs API (HTTP): certify schedules jobs and receives their
    /// triggers as the app on --app-port (`POST /job/{name}`). (`--jobs N` is concurrency.)
    #[arg(long, requires_all = ["sidecar", "app_port"])]
    jobs_api: bool,
    /// Certify the sidecar's actor runtime (HTTP): certify hosts the actors as the app on
    /// --app-port (`/dapr/config`, `PUT /actors/{type}/{id}/method/…`) and calls them, their
    /// state, reminders and timers through the sidecar.
    #[arg(long, requires_all = ["sidecar", "app_port"])]
    actors: bool,
    /// Certify the sidecar's workflow runtime (gRPC, `grpc://` only): certify connects a
    /// durabletask worker to its `TaskHubSidecarService` and runs its own workflows on it.
    #[arg(long, requires = "sidecar")]
    workflows: bool,
    /// Certify the sidecar's observability: the trace context on its answers (and `baggage`),
    /// and, with --metrics, that its Prometheus metrics count the calls certify makes.
    #[arg(long, requires = "sidecar")]
    observability: bool,
    /// The sidecar's Prometheus endpoint, e.g. `http://127.0.0.1:9090/metrics`.
    #[arg(long, requires = "observability")]
    metrics: Option<String>,
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
    /// Run one shard of the trials, as `hash:K/N` (nextest's syntax): N CI jobs, each with its
    /// own K, run every trial once; `certify report merge` joins their bundles.
    #[arg(long, value_name = "hash:K/N")]
    partition: Option<crate::plan::Partition>,
    /// Cases running at once (default: the spec's profile).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print only failing and inconclusive cases while running.
    #[arg(long)]
    failures_only: bool,
    /// `json`: one JSON object per event on stdout (schema: reports/events.schema.json), and
    /// the human view on stderr.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    message_format: MessageFormat,
    /// Sign certificate.json with this Ed25519 private key (PKCS#8 PEM, as `openssl genpkey
    /// -algorithm ed25519` writes); `certify verify --public-key` checks it.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// When to colour the human view.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
    /// Where backends come from: auto, process or external (default: CERTIFY_BACKENDS, else auto).
    #[arg(long)]
    backends: Option<String>,
    /// Fail the run (exit 1) when a case that applies could not run (a writer not given, a
    /// backend not available), as CI should: otherwise such a run passes, not certified on
    /// those rules.
    #[arg(long)]
    require_all: bool,
}

/// `--app-protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum AppProtocolArg {
    /// HTTP routes.
    Http,
    /// `AppCallback` over gRPC.
    Grpc,
}

impl From<AppProtocolArg> for reference_runtime::sidecar::AppProtocol {
    fn from(arg: AppProtocolArg) -> Self {
        match arg {
            AppProtocolArg::Http => Self::Http,
            AppProtocolArg::Grpc => Self::Grpc,
        }
    }
}

/// The form of what `run` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum MessageFormat {
    /// The terminal view.
    Human,
    /// JSON lines, for machines.
    Json,
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

/// What `args` certify, and how many trials at once by default.
fn source_of(args: &RunArgs) -> Result<(Source, usize), ExitCode> {
    if args.features.is_some() && args.sidecar.is_none() && args.pluggable.is_none() {
        return Err(fail("--features goes with --sidecar or --pluggable; a spec gives claims per component"));
    }
    let chosen = if let Some(socket) = &args.pluggable {
        let claims = match args.features.as_deref().map(parse_claims).transpose() {
            Ok(c) => c,
            Err(e) => return Err(fail(e)),
        };
        let source = PluggableSource {
            socket: socket.clone(),
            component: args.component.clone(),
            metadata: args.metadata.iter().cloned().collect(),
            claims,
        };
        (Source::Pluggable(source), 8)
    } else if let Some(url) = &args.sidecar {
        if [&args.state, &args.pubsub, &args.secrets, &args.lock, &args.binding, &args.configuration]
            .iter()
            .all(|c| c.is_none())
            && !args.invoke
            && !args.jobs_api
            && !args.actors
            && !args.workflows
            && !args.observability
        {
            return Err(fail(
                "--sidecar needs something to certify: --state NAME, --pubsub NAME (--app-port PORT over HTTP), --secrets NAME, --lock NAME, --binding NAME, --configuration NAME --app-port PORT, --invoke --app-port PORT, --jobs-api --app-port PORT, --actors --app-port PORT, --workflows (grpc://), --observability",
            ));
        }
        let claims = match args.features.as_deref().map(parse_claims).transpose() {
            Ok(c) => c,
            Err(e) => return Err(fail(e)),
        };
        if args.pubsub.is_some() && args.app_port.is_none() && !url.starts_with("grpc://") {
            return Err(fail(
                "--pubsub over HTTP needs --app-port PORT: the sidecar's app port, where certify receives deliveries (over grpc:// it uses streaming subscriptions)",
            ));
        }
        if args.workflows && !url.starts_with("grpc://") {
            return Err(fail(
                "--workflows needs a gRPC sidecar (--sidecar grpc://HOST:PORT): workflow workers speak TaskHubSidecarService on the Dapr gRPC port",
            ));
        }
        if args.configuration.is_some() && args.app_protocol == AppProtocolArg::Grpc && !url.starts_with("grpc://") {
            return Err(fail(
                "--configuration over the HTTP API needs --app-protocol http: its updates are HTTP calls to the app (over grpc:// they come on a stream)",
            ));
        }
        if args.binding.is_some()
            && args.app_port.is_none()
            && claims.as_ref().is_some_and(|c| c.contains(&suites::Claim::Read))
        {
            return Err(fail(
                "--binding with the `read` claim needs --app-port PORT: the sidecar's app port, where certify receives the binding's input events",
            ));
        }
        let token = std::env::var("DAPR_API_TOKEN").ok().filter(|t| !t.is_empty());
        let named = [
            (Block::STATE, &args.state),
            (Block::PUBSUB, &args.pubsub),
            (Block::SECRET_STORES, &args.secrets),
            (Block::LOCK, &args.lock),
            (Block::BINDINGS, &args.binding),
            (Block::CONFIGURATION, &args.configuration),
        ];
        let mut components: Vec<(Block, String)> =
            named.iter().filter_map(|(block, name)| (*name).clone().map(|n| (*block, n))).collect();
        // Invocation's, jobs', actors' and workflows' component is the sidecar's own app (named by its id,
        // which they need); observability's is the sidecar itself.
        let own_app = [
            (args.invoke, Block::INVOCATION),
            (args.jobs_api, Block::JOBS),
            (args.actors, Block::ACTORS),
            (args.workflows, Block::WORKFLOWS),
        ];
        for (wanted, block) in own_app {
            if wanted {
                components.push((block, String::new()));
            }
        }
        if args.observability {
            components.push((Block::OBSERVABILITY, "sidecar".into()));
        }
        let behind = match (&args.configuration, &args.configuration_writer) {
            (Some(name), Some(path)) => [(name.clone(), path.clone())].into(),
            _ => Default::default(),
        };
        let source = Source::Sidecar(SidecarSource {
            url: url.clone(),
            components,
            app_port: args.app_port,
            app_protocol: args.app_protocol.into(),
            behind,
            claims,
            token,
            metrics: args.metrics.clone(),
        });
        (source, 8)
    } else {
        let spec = match (&args.spec, &args.dapr_tests) {
            (Some(path), _) => Spec::load(path),
            (None, Some(tests)) => crate::dapr_tests::spec(tests).map(|(spec, ignored)| {
                for what in ignored {
                    tracing::warn!("--dapr-tests: ignored {what}");
                }
                spec
            }),
            (None, None) => Spec::builtin(),
        };
        match spec {
            Ok(spec) => {
                let concurrency = spec.profile.concurrency;
                (Source::Spec(spec), concurrency)
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    Ok(chosen)
}

/// The command that reruns what `args` certify, without the filters: `certify run --spec …`,
/// `--sidecar … --state …`, `--pluggable …`. Black-box runs whose claims came from the
/// component get `--features` with those claims once they are known (`claims`).
fn rerun_prefix(args: &RunArgs, claims: Option<&BTreeSet<Claim>>) -> String {
    let mut words = vec!["certify".to_owned(), "run".to_owned()];
    // A flag with an empty value is a switch (`--invoke`).
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            words.push(format!("--{name}"));
            if !value.is_empty() {
                words.push(value);
            }
        }
    };
    flag("spec", args.spec.as_ref().map(|p| p.display().to_string()));
    flag("dapr-tests", args.dapr_tests.as_ref().map(|p| p.display().to_string()));
    flag("sidecar", args.sidecar.clone());
    for (name, value) in [
        ("state", &args.state),
        ("pubsub", &args.pubsub),
        ("secrets", &args.secrets),
        ("lock", &args.lock),
        ("binding", &args.binding),
        ("configuration", &args.configuration),
        ("component", &args.component),
    ] {
        flag(name, value.clone());
    }
    flag("configuration-writer", args.configuration_writer.as_ref().map(|p| p.display().to_string()));
    flag("pluggable", args.pluggable.as_ref().map(|p| p.display().to_string()));
    for (key, value) in &args.metadata {
        flag("metadata", Some(format!("{key}={value}")));
    }
    flag("app-port", args.app_port.map(|p| p.to_string()));
    flag("app-protocol", (args.app_protocol == AppProtocolArg::Grpc).then(|| "grpc".to_owned()));
    flag("backends", args.backends.clone());
    flag("invoke", args.invoke.then(String::new));
    flag("jobs-api", args.jobs_api.then(String::new));
    flag("actors", args.actors.then(String::new));
    flag("workflows", args.workflows.then(String::new));
    flag("observability", args.observability.then(String::new));
    flag("metrics", args.metrics.clone());
    let black_box = args.sidecar.is_some() || args.pluggable.is_some();
    let features = match (&args.features, claims) {
        (Some(given), _) => Some(given.join(",")),
        (None, Some(claims)) if black_box => Some(claims.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")),
        (None, _) => None,
    };
    flag("features", features);
    words.join(" ")
}

/// Runs the cases of `args`: as the supervisor, or as its worker when the environment says so.
pub(super) async fn run(args: RunArgs, registry: &Registry) -> ExitCode {
    match crate::worker::share_from_env() {
        Ok(None) => supervise(args).await,
        Ok(Some(share)) => work(args, registry, share).await,
        Err(e) => fail(e),
    }
}

async fn supervise(args: RunArgs) -> ExitCode {
    // Read before the run, so a bad key path fails in a second, not after it.
    let sign_key = match super::read_sign_key(args.sign_key.as_deref()) {
        Ok(k) => k,
        Err(code) => return code,
    };
    if !clean_leftovers().await {
        eprintln!("warning: some leftovers of earlier runs could not be removed (see above)");
    }
    let mut interrupt = std::pin::pin!(interrupted());
    let json = args.message_format == MessageFormat::Json;
    super::HUMAN_ON_STDERR.store(json, std::sync::atomic::Ordering::Relaxed);
    let mut terminal = Terminal::new(json, args.color);
    terminal.verbose = !args.failures_only;
    let mut lines = json.then(|| JsonLines::new(std::io::stdout()));
    let mut on_event = |e: Event<'_>| {
        if let Some(lines) = lines.as_mut() {
            lines.event(e);
        }
        terminal.event(e);
    };
    let worker_args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let outcome = supervise::run(worker_args, &mut interrupt, &mut on_event, &mut backend_line).await;
    let report = match outcome {
        Outcome::Report(report) => *report,
        Outcome::SetupFailed(code) => return ExitCode::from(code),
        Outcome::Interrupted => return stopped(),
    };
    terminal.summary(&report);
    let bundle = reports::write_bundle(&report, &args.report_dir).and_then(|mut paths| {
        paths.push(reports::write_certificate(&args.report_dir, sign_key.as_deref())?);
        Ok(paths)
    });
    match bundle {
        Ok(paths) => out(&format!(
            "{:>12} {}",
            "Report",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )),
        Err(e) => return fail(e),
    }
    if let Some(lines) = lines.as_mut() {
        lines.finished(&report, &args.report_dir);
    }
    step_summary(&report);
    if report.summary.total == 0 {
        eprintln!("error: no case matched the filters");
        return ExitCode::from(2);
    }
    let complete = report.summary.complete() || !args.require_all;
    if report.summary.ok() && complete { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The worker: opens the session and runs its share of the trials, reporting events on stdout.
async fn work(args: RunArgs, registry: &Registry, share: Share) -> ExitCode {
    let (source, concurrency) = match source_of(&args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // One listener for the whole run, so a signal between phases is not lost. A supervisor
    // that died (even by SIGKILL) stops the worker as a signal would, so its backends go too.
    let mut interrupt = std::pin::pin!(async {
        tokio::select! {
            () = interrupted() => {}
            () = crate::worker::supervisor_gone() => {}
        }
    });
    let session = match open_session(source, registry, args.backends.as_deref(), &mut interrupt).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    for b in session.backends() {
        WorkerEvent::Backend { kind: b.kind.to_string(), provider: b.provider.into(), host: b.endpoint.host.clone() }
            .emit();
    }
    let rerun = rerun_prefix(&args, Some(&session.claims()));
    let jobs = share.jobs.or(args.jobs).unwrap_or(concurrency);
    let filter = Filter {
        patterns: args.filters,
        exact: args.exact,
        skip: args.skip,
        only: share.only,
        without: share.without,
        partition: args.partition,
    };
    let on_begin = |trial: &str| WorkerEvent::Started { trial: trial.to_owned() }.emit();
    let mut on_event = |e: Event<'_>| match e {
        Event::Started { trials } => WorkerEvent::Planned {
            trials: trials.to_vec(),
            source: session.source.clone(),
            components: session.components.clone(),
            rerun_prefix: rerun.clone(),
        }
        .emit(),
        Event::Finished { record, .. } => WorkerEvent::Finished { record: Box::new(record.clone()) }.emit(),
        // The worker says which trial began through `on_begin`, before its body runs.
        Event::Began { .. } => {}
    };
    let report = tokio::select! {
        report = crate::certify(&session, &filter, jobs, &rerun, &mut on_event, &on_begin) => report,
        () = &mut interrupt => {
            // Dropping the session stops the reference runtime and every backend it started.
            drop(session);
            return stopped();
        }
    };
    session.close().await;
    let ok = report.summary.ok();
    WorkerEvent::Done { report: Box::new(report) }.emit();
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// On GitHub Actions, adds the Markdown summary to the job's page (`GITHUB_STEP_SUMMARY`).
fn step_summary(report: &reports::Report) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else { return };
    let appended = std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut file| {
        use std::io::Write;
        writeln!(file, "{}", reports::summary_markdown(report))
    });
    if let Err(e) = appended {
        eprintln!(
            "warning: cannot add the summary to GITHUB_STEP_SUMMARY ({}): {e}",
            std::path::Path::new(&path).display()
        );
    }
}
