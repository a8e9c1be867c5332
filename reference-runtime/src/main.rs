//! `reference-runtime`: the zero-dependency local sidecar, with daprd's flags.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use contract::{Resources, SystemClock};
use reference_runtime::sidecar::{self, Sidecar, SidecarConfig, subscriptions};

/// A Dapr-compatible sidecar (HTTP and gRPC APIs) over in-memory components.
#[derive(Debug, Parser)]
#[command(name = "reference-runtime", version, about)]
struct Args {
    /// The app's id.
    #[arg(long = "app-id", default_value = "")]
    app_id: String,
    /// The port the app listens on (loopback); without it the sidecar runs without an app.
    #[arg(long = "app-port")]
    app_port: Option<u16>,
    /// How the app is called: `http` (its routes) or `grpc` (its `AppCallback` services).
    #[arg(long = "app-protocol", default_value = "http")]
    app_protocol: String,
    /// The port of the Dapr HTTP API.
    #[arg(long = "dapr-http-port", default_value_t = 3500)]
    dapr_http_port: u16,
    /// The port of the Dapr gRPC API (`dapr.proto.runtime.v1.Dapr`); 0 takes a free port.
    #[arg(long = "dapr-grpc-port", default_value_t = 50001)]
    dapr_grpc_port: u16,
    /// The addresses the HTTP and gRPC APIs listen on, comma-separated.
    #[arg(long = "dapr-listen-addresses", default_value = "127.0.0.1", value_delimiter = ',', value_parser = parse_ip)]
    listen_addresses: Vec<IpAddr>,
    /// A Component or Subscription YAML file, or a directory of them; repeatable. Without it
    /// the in-memory `statestore`, `pubsub`, `lockstore`, `configstore` and `secretstore` start.
    #[arg(long = "resources-path", alias = "components-path")]
    resources_path: Vec<PathBuf>,
    /// The largest request body, e.g. `4Mi`, `16Mi`, or a number of bytes.
    #[arg(long = "max-body-size", default_value = "4Mi", value_parser = parse_size)]
    max_body_size: usize,
    /// Also serve the in-memory state store, pub/sub broker and binding as one pluggable
    /// component (gRPC, dapr.proto.components.v1) on this Unix socket.
    #[arg(long = "pluggable-socket")]
    pluggable_socket: Option<PathBuf>,
    /// With --pluggable-socket: also serve a secret store reading this JSON file (as
    /// secretstores.local.file, multi-valued unless `Init` says otherwise).
    #[arg(long = "pluggable-secrets", requires = "pluggable_socket")]
    pluggable_secrets: Option<PathBuf>,
    /// A daprd Configuration file: its `spec.tracing` (`samplingRate`, `otel.endpointAddress`)
    /// turns spans and their OTLP/HTTP export on.
    #[arg(long = "config")]
    config: Option<PathBuf>,
    /// The port of the Prometheus metrics (`GET /metrics`), on the first listen address.
    #[arg(long = "metrics-port", default_value_t = 9090)]
    metrics_port: u16,
    /// Serve metrics (`--enable-metrics=false` turns them off, as with daprd).
    #[arg(long = "enable-metrics", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    enable_metrics: bool,
    /// debug, info, warn or error.
    #[arg(long = "log-level", default_value = "info")]
    log_level: String,
    /// Log JSON lines instead of text, as daprd does with this flag.
    #[arg(long = "log-as-json")]
    log_as_json: bool,
}

/// An IP address, IPv6 in brackets too (`[::1]`, as daprd's injector writes it).
fn parse_ip(text: &str) -> Result<IpAddr, String> {
    let bare = text.trim().trim_start_matches('[').trim_end_matches(']');
    bare.parse().map_err(|_| format!("`{text}` is not an IP address (e.g. 127.0.0.1, [::1])"))
}

fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: usize = digits.parse().map_err(|_| format!("`{text}` is not a size such as `4Mi` or `4194304`"))?;
    let factor = match unit {
        "" | "B" => 1,
        "Ki" | "K" | "KB" => 1 << 10,
        "Mi" | "M" | "MB" => 1 << 20,
        "Gi" | "G" | "GB" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` (use Ki, Mi or Gi)")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("`{text}` is too large"))
}

fn main() -> ExitCode {
    // daprd's habits: `-app-id x` as well as `--app-id x`, and its flags this runtime does not
    // implement accepted with a warning.
    let command = <Args as clap::CommandFactory>::command();
    let known: Vec<&str> = command
        .get_arguments()
        .flat_map(|a| a.get_long().into_iter().chain(a.get_all_aliases().into_iter().flatten()))
        .collect();
    let (argv, ignored) = reference_runtime::daprd_flags::normalize(std::env::args_os(), &known);
    let args = Args::parse_from(argv);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(args.log_level.to_ascii_lowercase()));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_as_json {
        true => logs.json().init(),
        false => logs.init(),
    }
    for warning in ignored {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let app_protocol = match args.app_protocol.to_ascii_lowercase().as_str() {
        "http" => sidecar::AppProtocol::Http,
        "grpc" => sidecar::AppProtocol::Grpc,
        other => anyhow::bail!(
            "--app-protocol `{other}` is not supported; the reference runtime talks to apps over http or grpc (no TLS: https, grpcs; no h2c)"
        ),
    };
    let resources = if args.resources_path.is_empty() {
        reference_runtime::default_resources()?
    } else {
        Resources::load(&args.resources_path)?
    };
    let declarative = subscriptions::parse_declarative(&resources.others).map_err(anyhow::Error::msg)?;
    let folder = pluggable::discovery::sockets_folder();
    let (registry, _) = reference_runtime::registry_with_pluggables(&folder).await.with_context(|| {
        format!(
            "cannot discover the pluggable components in {} (set {} to another folder, or remove stale sockets)",
            folder.display(),
            pluggable::discovery::SOCKETS_FOLDER_ENV
        )
    })?;
    let components = registry.build_all(&resources.components, Arc::new(SystemClock)).await.map_err(|e| {
        // A type no builtin has may be a pluggable component whose socket is not where daprd looks.
        let hint = match &e {
            contract::LoadError::UnknownType { type_name, .. } => type_name.split_once('.').map(|(_, name)| {
                format!(
                    "; if it is a pluggable component, its socket `{name}.sock` must be in {} (set {})",
                    folder.display(),
                    pluggable::discovery::SOCKETS_FOLDER_ENV
                )
            }),
            _ => None,
        };
        anyhow::anyhow!("{e}{}", hint.unwrap_or_default())
    })?;
    let tracing = match &args.config {
        Some(path) => reference_runtime::otel::TracingConfig::from_configuration(path).map_err(anyhow::Error::msg)?,
        None => None,
    };
    let tracer = match tracing {
        Some(t) => {
            tracing::info!(endpoint = %t.endpoint, sampling_rate = t.sampling_rate, "spans exported over OTLP/HTTP");
            Some(reference_runtime::otel::Tracer::start(&t, &args.app_id).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let config = SidecarConfig {
        tracer,
        app_id: args.app_id,
        app_port: args.app_port,
        app_protocol,
        api_token: std::env::var("DAPR_API_TOKEN").ok().filter(|t| !t.is_empty()),
        app_api_token: std::env::var("APP_API_TOKEN").ok().filter(|t| !t.is_empty()),
        max_body_size: args.max_body_size,
        ..SidecarConfig::default()
    };
    if let Some(socket) = args.pluggable_socket.clone() {
        tracing::info!(socket = %socket.display(), "serving the in-memory components as a pluggable component");
        let services = reference_runtime::pluggable_services(args.pluggable_secrets.clone());
        tokio::spawn(async move {
            if let Err(e) = pluggable::serve(&socket, services, std::future::pending()).await {
                tracing::error!(socket = %socket.display(), error = %e, "the pluggable component stopped");
            }
        });
    }
    let on =
        |port: u16| -> Vec<SocketAddr> { args.listen_addresses.iter().map(|ip| SocketAddr::new(*ip, port)).collect() };
    let sidecar = Sidecar::new(config, components, declarative);
    if args.enable_metrics {
        let ip = args.listen_addresses.first().copied().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        serve_metrics(&sidecar, SocketAddr::new(ip, args.metrics_port)).await;
    }
    Ok(sidecar::run(sidecar, &on(args.dapr_http_port), &on(args.dapr_grpc_port)).await?)
}

/// Serves the metrics on `addr`. Metrics are a side service: a port in use is a warning that says
/// how to move or turn them off, not a reason to refuse to start.
async fn serve_metrics(sidecar: &Arc<Sidecar>, addr: SocketAddr) {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            tracing::info!(%addr, "metrics served on /metrics");
            sidecar.serve_metrics(listener);
        }
        Err(e) => tracing::warn!(
            %addr,
            "no metrics: cannot listen on {addr} ({e}); pick another --metrics-port, or --enable-metrics=false"
        ),
    }
}
