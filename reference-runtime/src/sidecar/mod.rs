//! The Dapr-compatible HTTP sidecar: every route of the Dapr HTTP API over the components of
//! a registry, and the app channel that delivers messages, binding events, configuration
//! updates and invocations to the app.

pub(crate) mod actors_routes;
pub mod api_error;
mod app_channel;
mod bindings_routes;
pub mod cloudevents;
mod config_routes;
pub(crate) mod delivery;
pub(crate) mod invoke_routes;
pub(crate) mod jobs_routes;
mod lock_routes;
pub mod match_expr;
mod meta_routes;
pub(crate) mod pubsub_routes;
pub mod request;
mod secrets_routes;
mod state_routes;
mod stores;
pub mod subscriptions;
pub(crate) mod trace;
mod workflow_routes;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use contract::pubsub::Subscription;
use contract::{Block, Components};
use stores::{actor_state_store, scheduler_of, workflows_of};
use tokio::sync::Notify;

pub use app_channel::AppChannel;
use subscriptions::SubscriptionSpec;

/// The Dapr runtime version this sidecar reports.
pub const RUNTIME_VERSION: &str = concat!("certify-reference-", env!("CARGO_PKG_VERSION"));

/// How the sidecar is set up; the daprd flags map onto it.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    /// `--app-id`.
    pub app_id: String,
    /// `--app-port`: where the app listens, on loopback; `None` runs without an app.
    pub app_port: Option<u16>,
    /// `--app-protocol`: how the app is called.
    pub app_protocol: AppProtocol,
    /// `DAPR_API_TOKEN`: required on every API call but health checks.
    pub api_token: Option<String>,
    /// `APP_API_TOKEN`: sent to the app.
    pub app_api_token: Option<String>,
    /// `--max-body-size`: the largest request body accepted.
    pub max_body_size: usize,
    /// How long shutdown waits for in-flight deliveries.
    pub graceful_shutdown: Duration,
    /// Spans and their export (`--config` with `spec.tracing`); `None`: tracing off.
    pub tracer: Option<Arc<crate::otel::Tracer>>,
}

impl Default for SidecarConfig {
    fn default() -> Self {
        Self {
            app_id: String::new(),
            app_port: None,
            app_protocol: AppProtocol::Http,
            api_token: None,
            app_api_token: None,
            max_body_size: 4 << 20,
            graceful_shutdown: Duration::from_secs(5),
            tracer: None,
        }
    }
}

/// How the sidecar calls its app (`--app-protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AppProtocol {
    /// The app's HTTP routes (`/dapr/subscribe`, a route per subscription, …).
    #[default]
    Http,
    /// The app's `AppCallback` gRPC services.
    Grpc,
}

impl AppProtocol {
    /// Its name, as `--app-protocol` and metadata write it.
    pub fn as_str(self) -> &'static str {
        match self {
            AppProtocol::Http => "http",
            AppProtocol::Grpc => "grpc",
        }
    }
}

/// How a state store's keys are stored: Dapr's `keyPrefix` component metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScheme {
    /// `<prefix>||<key>`.
    Prefix(String),
    /// The key as given.
    None,
}

impl KeyScheme {
    fn for_component(loaded: &contract::registry::LoadedComponent, app_id: &str) -> Self {
        let value = loaded
            .manifest
            .metadata
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case("keyPrefix"))
            .and_then(|m| match &m.value {
                contract::manifest::MetadataValue::Plain(v) => Some(v.to_ascii_lowercase()),
                contract::manifest::MetadataValue::SecretRef { .. } => None,
            })
            .unwrap_or_else(|| "appid".to_owned());
        match value.as_str() {
            "none" => KeyScheme::None,
            "appid" | "" if app_id.is_empty() => KeyScheme::None,
            "appid" | "" => KeyScheme::Prefix(app_id.to_owned()),
            "name" => KeyScheme::Prefix(loaded.manifest.name.clone()),
            "namespace" => match std::env::var("NAMESPACE").ok().filter(|n| !n.is_empty()) {
                Some(ns) => KeyScheme::Prefix(format!("{ns}.{app_id}")),
                None if app_id.is_empty() => KeyScheme::None,
                None => KeyScheme::Prefix(app_id.to_owned()),
            },
            other => KeyScheme::Prefix(other.to_owned()),
        }
    }

    /// The stored key for an application key.
    pub fn wrap(&self, key: &str) -> String {
        match self {
            KeyScheme::Prefix(p) => format!("{p}||{key}"),
            KeyScheme::None => key.to_owned(),
        }
    }

    /// The application key for a stored key.
    pub fn unwrap<'k>(&self, stored: &'k str) -> &'k str {
        match self {
            KeyScheme::Prefix(_) => stored.split_once("||").map_or(stored, |(_, rest)| rest),
            KeyScheme::None => stored,
        }
    }
}

/// Counts deliveries to the app in flight, so shutdown can wait for them.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Marks one delivery in flight until dropped.
pub struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    /// Marks a delivery as started.
    pub fn start(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self)
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The sidecar's shared state.
pub struct Sidecar {
    /// The configuration.
    pub config: SidecarConfig,
    /// The components, by name.
    pub components: Components,
    pub(crate) key_schemes: HashMap<String, KeyScheme>,
    app: Option<AppChannel>,
    grpc_app: Option<crate::grpc::app_callback::GrpcApp>,
    declarative: Vec<SubscriptionSpec>,
    pub(crate) active: Mutex<Vec<(SubscriptionSpec, Subscription)>>,
    /// The gRPC API's streaming subscriptions while they are open, by key.
    pub(crate) streams: Mutex<BTreeMap<u64, SubscriptionSpec>>,
    input_bindings: Mutex<Vec<Subscription>>,
    pub(crate) config_subscriptions: Mutex<HashMap<(String, String), tokio::task::JoinHandle<()>>>,
    pub(crate) extended: Mutex<BTreeMap<String, String>>,
    app_ready: AtomicBool,
    /// Deliveries to the app in flight.
    pub in_flight: InFlight,
    shutdown: Notify,
    shutting_down: AtomicBool,
    /// True once the servers are asked to stop: long-lived streams end on it.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The Jobs API's scheduler.
    pub(crate) jobs: Arc<crate::jobs::Scheduler>,
    /// The actors the app hosts.
    pub(crate) actors: Arc<crate::actors::Engine>,
    /// The workflows its workers run.
    pub(crate) workflows: Arc<crate::workflows::Engine>,
    /// What the APIs served, for `--metrics-port`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

pub(crate) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sidecar {
    /// A sidecar over `components`, with the declarative subscriptions of the resources.
    pub fn new(config: SidecarConfig, components: Components, declarative: Vec<SubscriptionSpec>) -> Arc<Self> {
        let key_schemes = components
            .by_name
            .iter()
            .filter(|(_, c)| c.component.block() == Block::STATE)
            .map(|(name, c)| (name.clone(), KeyScheme::for_component(c, &config.app_id)))
            .collect();
        let (http, grpc) = (config.app_protocol == AppProtocol::Http, config.app_protocol == AppProtocol::Grpc);
        let app = config.app_port.filter(|_| http).map(|port| AppChannel::new(port, config.app_api_token.clone()));
        let grpc_app = config
            .app_port
            .filter(|_| grpc)
            .map(|port| crate::grpc::app_callback::GrpcApp::new(port, config.app_api_token.clone()));
        let jobs = scheduler_of(&components, &config.app_id);
        // daprd hosts actors for an HTTP app; a gRPC app's actor stream is not served here.
        let host: Arc<dyn crate::actors::ActorApp> = match &app {
            Some(channel) => Arc::new(actors_routes::HttpHost(channel.clone())),
            None => Arc::new(crate::actors::NoApp),
        };
        let actors = crate::actors::Engine::new(&config.app_id, host, actor_state_store(&components));
        let workflows = workflows_of(&components, &config.app_id);
        Arc::new(Self {
            components,
            key_schemes,
            app,
            grpc_app,
            declarative,
            active: Mutex::new(Vec::new()),
            streams: Mutex::new(BTreeMap::new()),
            input_bindings: Mutex::new(Vec::new()),
            config_subscriptions: Mutex::new(HashMap::new()),
            extended: Mutex::new(BTreeMap::new()),
            app_ready: AtomicBool::new(false),
            in_flight: InFlight::default(),
            shutdown: Notify::new(),
            shutting_down: AtomicBool::new(false),
            stopping: tokio::sync::watch::Sender::new(false),
            jobs,
            actors,
            workflows,
            metrics: crate::metrics::Metrics::new(&config.app_id),
            config,
        })
    }

    /// The HTTP API.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .merge(state_routes::routes())
            .merge(pubsub_routes::routes())
            .merge(bindings_routes::routes())
            .merge(secrets_routes::routes())
            .merge(config_routes::routes())
            .merge(lock_routes::routes())
            .merge(jobs_routes::routes())
            .merge(actors_routes::routes())
            .merge(workflow_routes::routes())
            .merge(meta_routes::routes())
            .merge(invoke_routes::routes())
            .fallback(invoke_routes::fallback)
            .layer(axum::middleware::from_fn_with_state(Arc::clone(self), meta_routes::require_api_token))
            .layer(axum::middleware::from_fn_with_state(self.config.tracer.clone(), trace::trace_context))
            .layer(axum::middleware::from_fn_with_state(Arc::clone(&self.metrics), count_http))
            .layer(DefaultBodyLimit::max(self.config.max_body_size))
            .with_state(Arc::clone(self))
    }

    /// Serves the API on a free loopback port until shutdown, in the background; answers the
    /// base URL (`http://127.0.0.1:PORT`) and the serving task.
    pub async fn serve_on_loopback(
        self: Arc<Self>,
    ) -> std::io::Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok((url, tokio::spawn(self.serve(listener, std::future::pending()))))
    }

    /// [`Sidecar::serve_on_loopback`] with the gRPC API too, on a port of its own; answers
    /// both base URLs (`http://127.0.0.1:PORT`) and the serving task.
    pub async fn serve_both_on_loopback(
        self: Arc<Self>,
    ) -> std::io::Result<(String, String, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let urls = (format!("http://{}", http.local_addr()?), format!("http://{}", grpc.local_addr()?));
        let serving = tokio::spawn(self.serve_apis(vec![http], vec![grpc], std::future::pending()));
        Ok((urls.0, urls.1, serving))
    }

    /// Serves the API on `listener` until shutdown is asked for (by `/v1.0/shutdown`,
    /// [`Sidecar::shutdown`] or `signal`), then stops deliveries and waits for the ones in
    /// flight.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_all(vec![listener], signal).await
    }

    /// [`Sidecar::serve`] on several listeners at once (`--dapr-listen-addresses`): one app
    /// connection, one stop for all.
    pub async fn serve_all(
        self: Arc<Self>,
        listeners: Vec<tokio::net::TcpListener>,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_apis(listeners, Vec::new(), signal).await
    }

    /// Serves the HTTP API on `http` and the gRPC API on `grpc` until shutdown is asked for,
    /// then stops deliveries and waits for the ones in flight.
    pub async fn serve_apis(
        self: Arc<Self>,
        http: Vec<tokio::net::TcpListener>,
        grpc: Vec<tokio::net::TcpListener>,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Kept jobs are back before the APIs serve, so no call sees the scheduler without them;
        // their triggers wait for the app to listen (`AppTarget`).
        let target = Arc::new(crate::sidecar::jobs_routes::AppTarget(Arc::downgrade(&self)));
        match self.jobs.restore(target).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "jobs kept from an earlier run taken up"),
            Err(why) => tracing::error!(%why, "the jobs kept from an earlier run cannot be taken up"),
        }
        // Kept workflows too: their work waits for a worker to connect.
        match self.workflows.restore().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(workflows = n, "workflows kept from an earlier run taken up"),
            Err(why) => tracing::error!(%why, "the workflows kept from an earlier run cannot be taken up"),
        }
        if self.config.app_port.is_some() {
            let this = Arc::clone(&self);
            tokio::spawn(async move { this.connect_app().await });
        }
        // Kept reminders fire, and idle actors go, once the app can be called.
        let this = Arc::clone(&self);
        tokio::spawn(async move {
            this.app_listening().await;
            if !this.shutting_down.load(Ordering::SeqCst) {
                this.actors.start().await;
            }
        });
        let this = Arc::clone(&self);
        tokio::spawn(async move {
            tokio::select! {
                () = signal => {}
                () = this.shutdown.notified() => {}
            }
            this.stopping.send_replace(true);
        });
        type Serving = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>;
        let mut servers: Vec<Serving> = Vec::new();
        // Without TCP_NODELAY a reply split over two writes waits on the peer's delayed ACK
        // (40 ms on Linux): every request-response on a kept-alive connection would pay it.
        for listener in http {
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let serving = axum::serve(listener, self.router()).with_graceful_shutdown(self.stopped());
            servers.push(Box::pin(serving.into_future()));
        }
        for listener in grpc {
            let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let serving = tonic::transport::Server::builder()
                .layer(
                    tower::ServiceBuilder::new()
                        .layer(tower::util::MapResponseLayer::new(crate::grpc::daprd_codes))
                        .layer(crate::grpc::TraceLayer(self.config.tracer.clone()))
                        .layer(crate::grpc::MetricsLayer(Arc::clone(&self.metrics))),
                )
                .add_routes(crate::grpc::routes(&self))
                .serve_with_incoming_shutdown(incoming, self.stopped());
            servers.push(Box::pin(async move { serving.await.map_err(std::io::Error::other) }));
        }
        let result = futures::future::try_join_all(servers).await.map(drop);
        self.stop_deliveries().await;
        result
    }

    /// Serves the metrics on `listener` (`--metrics-port`) until the APIs stop.
    pub fn serve_metrics(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<std::io::Result<()>> {
        tokio::spawn(Arc::clone(&self.metrics).serve(listener, self.stopped()))
    }

    /// Resolves once the app listens and is set up (at once without an app, or when the
    /// runtime stops first).
    pub(crate) async fn app_listening(&self) {
        while self.config.app_port.is_some()
            && !self.app_ready.load(Ordering::SeqCst)
            && !self.shutting_down.load(Ordering::SeqCst)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resolves once the servers are asked to stop (at once if they already were).
    pub(crate) fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|s| *s).await;
        }
    }

    /// Every subscription in force: the app's and declarative ones, then open streams.
    pub(crate) fn subscription_specs(&self) -> Vec<SubscriptionSpec> {
        let mut specs: Vec<SubscriptionSpec> = locked(&self.active).iter().map(|(spec, _)| spec.clone()).collect();
        specs.extend(locked(&self.streams).values().cloned());
        specs
    }

    /// Asks the server to shut down.
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.notify_one();
    }

    async fn stop_deliveries(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.jobs.stop();
        self.actors.stop().await;
        for (_, subscription) in locked(&self.active).drain(..) {
            subscription.close();
        }
        for subscription in locked(&self.input_bindings).drain(..) {
            subscription.close();
        }
        for (_, task) in locked(&self.config_subscriptions).drain() {
            task.abort();
        }
        if tokio::time::timeout(self.config.graceful_shutdown, self.in_flight.wait_idle()).await.is_err() {
            tracing::warn!("deliveries still in flight after the grace period");
        }
        // The exporter sends what it has queued; it blocks, so off the async threads.
        if let Some(tracer) = self.config.tracer.clone() {
            let _ = tokio::task::spawn_blocking(move || tracer.shutdown()).await;
        }
    }

    /// Waits for the app's port, then subscribes and starts input bindings, as daprd does.
    async fn connect_app(self: Arc<Self>) {
        let Some(port) = self.config.app_port else { return };
        let mut waited = Duration::ZERO;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            if waited.as_secs() > 0 && waited.as_millis().is_multiple_of(5000) {
                tracing::info!(port, "waiting for the app to listen");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
        let mut specs = match (&self.app, &self.grpc_app) {
            (Some(app), _) => subscriptions::load_programmatic(app, &self.config.app_id).await,
            (None, Some(app)) => app.subscriptions().await.unwrap_or_else(|status| {
                tracing::warn!(%status, "the app's ListTopicSubscriptions failed; no subscriptions");
                Vec::new()
            }),
            (None, None) => Vec::new(),
        };
        // A gRPC app names the input bindings it wants; an HTTP app answers `OPTIONS` for each.
        let wanted_bindings = match &self.grpc_app {
            Some(app) => Some(app.input_bindings().await),
            None => None,
        };
        specs.extend(self.declarative.iter().filter(|s| s.applies_to(&self.config.app_id)).cloned());
        for spec in specs {
            match delivery::subscribe(&self, spec.clone()).await {
                Ok(subscription) => locked(&self.active).push((spec, subscription)),
                Err(e) => {
                    tracing::error!(topic = %spec.topic, pubsub = %spec.pubsub, error = %e, "subscription failed")
                }
            }
        }
        for (name, loaded) in &self.components.by_name {
            if let Some(input) = loaded.component.as_input_binding() {
                if wanted_bindings.as_ref().is_some_and(|wanted| !wanted.contains(name)) {
                    continue;
                }
                match delivery::start_input_binding(&self, name, &loaded.manifest, Arc::clone(input)).await {
                    Ok(Some(subscription)) => locked(&self.input_bindings).push(subscription),
                    Ok(None) => {}
                    Err(e) => tracing::error!(binding = %name, error = %e, "input binding failed to start"),
                }
            }
        }
        self.app_ready.store(true, Ordering::SeqCst);
    }

    pub(crate) fn app(&self) -> Option<&AppChannel> {
        self.app.as_ref()
    }

    /// The app's `AppCallback` services, with `--app-protocol grpc`.
    pub(crate) fn grpc_app(&self) -> Option<&crate::grpc::app_callback::GrpcApp> {
        self.grpc_app.as_ref()
    }
}

/// Binds every address of `http` and `grpc` and serves `sidecar`'s HTTP and gRPC APIs on them
/// until Ctrl-C, SIGTERM or a shutdown call.
pub async fn run(sidecar: Arc<Sidecar>, http: &[SocketAddr], grpc: &[SocketAddr]) -> std::io::Result<()> {
    let (mut http_listeners, mut grpc_listeners) = (Vec::new(), Vec::new());
    for (addrs, api, listeners) in [(http, "HTTP", &mut http_listeners), (grpc, "gRPC", &mut grpc_listeners)] {
        for addr in addrs {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot serve the {api} API on {addr}: {e}")))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, app_id = %sidecar.config.app_id, "dapr {api} API listening");
            listeners.push(listener);
        }
    }
    sidecar.serve_apis(http_listeners, grpc_listeners, termination()).await
}

async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Counts every HTTP API request by verb and status, with its latency.
async fn count_http(
    axum::extract::State(metrics): axum::extract::State<Arc<crate::metrics::Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    metrics.http_served(method.as_str(), response.status(), started.elapsed());
    response
}
