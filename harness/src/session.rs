//! A run's setup: the components built from the spec, the drivers that reach them, and for
//! the HTTP driver a reference runtime started on loopback (or a given sidecar). Everything it
//! starts stops when it is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use fixtures::{Backend, BackendError, BackendKind, Provider};

use contract::manifest::MetadataValue;
use contract::{Block, Component, ComponentManifest, Registry, SystemClock};
use reference_runtime::sidecar::{Sidecar, SidecarConfig};
use reports::{ComponentRecord, REDACTED};
use suites::Claim;
use suites::bindings::BindingInbox;

use crate::app::App;
use crate::faults::ProxiedBackends;
use crate::http_driver::{
    ConnectError, HttpConfigurationStore, HttpInvoker, HttpLockStore, HttpOutputBinding, HttpSecretStore,
    HttpStateStore,
};
use crate::http_pubsub::{HttpPubSub, TopicPool};
use crate::plan::{Blocked, Target};
use crate::runner::{BindingTarget, ConfigurationTarget, Drivers};
use crate::spec::{DriverKind, Spec};

/// What is certified.
#[derive(Debug, Clone)]
pub enum Source {
    /// A spec (the built-in one, or a file).
    Spec(Spec),
    /// A running sidecar, black-box.
    Sidecar(SidecarTarget),
    /// A pluggable component on a Unix socket, through the gRPC driver.
    Pluggable(PluggableTarget),
}

/// A pluggable component to certify over gRPC.
#[derive(Debug, Clone, Default)]
pub struct PluggableTarget {
    /// Its socket.
    pub socket: std::path::PathBuf,
    /// The instance name (`x-component-instance`); default: the socket's file name without its
    /// extension, as daprd names it.
    pub component: Option<String>,
    /// The Component metadata sent with `Init`.
    pub metadata: BTreeMap<String, String>,
    /// The claims; `None` takes them from the component's `Features`.
    pub claims: Option<BTreeSet<Claim>>,
}

/// A running sidecar and which of its components to certify.
#[derive(Debug, Clone, Default)]
pub struct SidecarTarget {
    /// Its base URL, e.g. `http://127.0.0.1:3500`.
    pub url: String,
    /// The state store to certify.
    pub state: Option<String>,
    /// The pub/sub component to certify; deliveries come to certify on `app_port`.
    pub pubsub: Option<String>,
    /// The port the sidecar delivers to (its `--app-port`); certify serves the app there.
    pub app_port: Option<u16>,
    /// The secret store to certify (seeded with `suites::secrets::SEEDED`).
    pub secrets: Option<String>,
    /// The lock store to certify.
    pub lock: Option<String>,
    /// The binding to certify; its input events come to the app on `app_port`.
    pub binding: Option<String>,
    /// Certify service invocation: calls go through the sidecar to its app, which certify
    /// serves on `app_port`.
    pub invoke: bool,
    /// The configuration store to certify; updates come to the app on `app_port`.
    pub configuration: Option<String>,
    /// A Component YAML of the same store as the sidecar's configuration store: certify builds
    /// it to write items behind the sidecar's back.
    pub configuration_writer: Option<std::path::PathBuf>,
    /// The claims; `None` takes them from the capabilities the sidecar advertises.
    pub claims: Option<BTreeSet<Claim>>,
    /// `DAPR_API_TOKEN`, if the sidecar wants one.
    pub token: Option<String>,
}

/// Setting a run up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A component could not be built.
    #[error(transparent)]
    Load(#[from] contract::LoadError),
    /// The sidecar cannot be reached or lacks the store.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The pluggable component cannot be reached or discovered.
    #[error(transparent)]
    Pluggable(#[from] pluggable::socket::SocketError),
    /// The pluggable component refused `Init` or `Features`.
    #[error("the pluggable component `{component}` failed to initialise: {reason}")]
    PluggableInit {
        /// The instance.
        component: String,
        /// What it answered.
        reason: String,
    },
    /// The reference runtime for the HTTP driver could not start.
    #[error("cannot start the reference runtime for the http driver: {0}")]
    Sidecar(std::io::Error),
    /// The app certify plays for a sidecar could not listen.
    #[error("cannot serve the app on 127.0.0.1:{port}: {source} (is another app listening there?)")]
    AppPort {
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// A backend is required (`CERTIFY_REQUIRE_BACKENDS=1`) but unavailable.
    #[error("{0} (CERTIFY_REQUIRE_BACKENDS=1 makes this an error instead of skipping its cases)")]
    Backend(BackendError),
    /// The configuration writer's Component YAML is unusable.
    #[error("--configuration-writer {path}: {message}")]
    Writer {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A placeholder in a component's metadata is malformed.
    #[error("component `{component}`: metadata field `{field}`: {message}")]
    Placeholder {
        /// The component.
        component: String,
        /// The metadata field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// How a session is set up.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The spec path as given, for rerun commands.
    pub spec_arg: Option<String>,
    /// Where backends come from (`CERTIFY_BACKENDS`, default auto).
    pub provider: Provider,
    /// Fail instead of skipping when a backend is unavailable (`CERTIFY_REQUIRE_BACKENDS=1`).
    pub require_backends: bool,
    /// How long a backend may take to become ready (`CERTIFY_BACKEND_TIMEOUT` seconds, default 60).
    pub backend_timeout: Duration,
}

impl SessionOptions {
    /// Options from the environment.
    pub fn from_env() -> Result<Self, String> {
        let provider = match std::env::var("CERTIFY_BACKENDS") {
            Ok(v) if !v.is_empty() => v.parse().map_err(|e| format!("CERTIFY_BACKENDS: {e}"))?,
            _ => Provider::Auto,
        };
        let backend_timeout = match std::env::var("CERTIFY_BACKEND_TIMEOUT") {
            Ok(v) if !v.is_empty() => Duration::from_secs(
                v.parse().map_err(|_| format!("CERTIFY_BACKEND_TIMEOUT: `{v}` is not a number of seconds"))?,
            ),
            _ => Duration::from_secs(60),
        };
        Ok(Self {
            spec_arg: None,
            provider,
            require_backends: std::env::var("CERTIFY_REQUIRE_BACKENDS").is_ok_and(|v| v == "1"),
            backend_timeout,
        })
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            spec_arg: None,
            provider: Provider::Auto,
            require_backends: false,
            backend_timeout: Duration::from_secs(60),
        }
    }
}

/// A run's targets and drivers.
pub struct Session {
    /// What the run certifies, for the report.
    pub source: String,
    /// Every component × driver.
    pub targets: Vec<Target>,
    /// The drivers.
    pub drivers: Drivers,
    /// The components, for the report.
    pub components: Vec<ComponentRecord>,
    /// How to rerun one trial: this prefix, then `--exact '<trial>'`.
    pub rerun_prefix: String,
    sidecar: Option<(Arc<Sidecar>, tokio::task::JoinHandle<std::io::Result<()>>)>,
    // Declared last: servers stop after everything that talks to them.
    backends: Vec<Arc<Backend>>,
}

impl Session {
    /// The backends the run uses: kind, provider and endpoint.
    pub fn backends(&self) -> impl Iterator<Item = (BackendKind, &'static str, &str)> {
        self.backends.iter().map(|b| (b.kind, b.provider, b.endpoint.host.as_str()))
    }

    /// The backends with their client URLs, for raw-client baselines.
    pub fn backend_urls(&self) -> Vec<(BackendKind, &'static str, String, String)> {
        self.backends.iter().map(|b| (b.kind, b.provider, b.endpoint.host.clone(), b.endpoint.url.clone())).collect()
    }
}

impl Session {
    /// Stops in order: the reference runtime (waiting for its deliveries), then the clients,
    /// then the backends, so no client sees its server vanish. Dropping a session does the
    /// same without the waiting.
    pub async fn close(mut self) {
        if let Some((sidecar, task)) = self.sidecar.take() {
            sidecar.shutdown();
            drop(sidecar);
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.drivers = Drivers::default();
        // Clients close their connections on drop; give their IO tasks a moment to do so.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some((sidecar, _)) = &self.sidecar {
            sidecar.shutdown();
        }
    }
}

/// True for metadata names whose values are secrets even when written inline.
fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token", "connectionstring", "apikey", "credential", "privatekey"]
        .iter()
        .any(|s| n.contains(s))
}

/// The component's metadata as reports show it: secret values replaced.
pub fn redacted_metadata(manifest: &ComponentManifest) -> std::collections::BTreeMap<String, String> {
    manifest
        .metadata
        .iter()
        .map(|m| {
            let value = match &m.value {
                MetadataValue::SecretRef { .. } => REDACTED.to_owned(),
                MetadataValue::Plain(_) if looks_secret(&m.name) => REDACTED.to_owned(),
                MetadataValue::Plain(v) => v.clone(),
            };
            (m.name.clone(), value)
        })
        .collect()
}

fn claims_from_features(features: &contract::FeatureSet<contract::StateFeature>) -> BTreeSet<Claim> {
    let mut claims: BTreeSet<Claim> = features.iter().filter_map(|f| Claim::for_feature(*f)).collect();
    // Dapr has no feature flag for first-write; stores with ETags are expected to honour it.
    if claims.contains(&Claim::Etag) {
        claims.insert(Claim::FirstWrite);
    }
    claims
}

/// Claims for the pub/sub features a sidecar lists.
fn pubsub_claims(features: &contract::FeatureSet<contract::PubSubFeature>) -> BTreeSet<Claim> {
    use contract::PubSubFeature as F;
    features
        .iter()
        .filter_map(|f| match f {
            F::BulkPublish => Some(Claim::BulkPublish),
            F::BulkSubscribe => Some(Claim::BulkSubscribe),
            F::OrderedByKey => Some(Claim::Ordering),
            F::MessageTtl => Some(Claim::Ttl),
            _ => None,
        })
        .collect()
}

impl Session {
    /// Builds the components and drivers of `source`.
    pub async fn open(source: Source, registry: &Registry, options: &SessionOptions) -> Result<Session, SetupError> {
        match source {
            Source::Sidecar(target) => Self::open_sidecar(target, registry).await,
            Source::Spec(spec) => Self::open_spec(spec, registry, options).await,
            Source::Pluggable(target) => Self::open_pluggable(target).await,
        }
    }

    async fn open_sidecar(target: SidecarTarget, registry: &Registry) -> Result<Session, SetupError> {
        let SidecarTarget {
            url,
            state,
            pubsub,
            app_port,
            secrets,
            lock,
            binding,
            invoke,
            configuration,
            configuration_writer,
            claims,
            token,
        } = target;
        let mut drivers = Drivers::default();
        let mut targets = Vec::new();
        let mut components = Vec::new();
        let mut rerun = format!("certify run --sidecar {url}");
        let mut add = |name: &str, type_name: &str, claims: BTreeSet<Claim>| {
            // `--features` lists the claims of every component given; each keeps its block's.
            let block = Block::of_type(type_name);
            let claims: BTreeSet<Claim> =
                claims.into_iter().filter(|c| block.is_some_and(|b| c.blocks().contains(&b))).collect();
            targets.push(Target {
                component: name.to_owned(),
                type_name: type_name.into(),
                driver: DriverKind::Http,
                claims: claims.clone(),
                settings: Default::default(),
                blocked: None,
            });
            components.push(ComponentRecord {
                name: name.to_owned(),
                type_name: format!("{} (black-box)", type_name.trim_end_matches(".sidecar")),
                claims: claims.iter().map(|c| c.as_str().to_owned()).collect(),
                drivers: vec!["http".into()],
                metadata: Default::default(),
            });
        };
        let mut all_claims = BTreeSet::new();
        if let Some(state) = &state {
            let store = HttpStateStore::connect(&url, state, token.clone()).await?;
            let claims =
                claims.clone().unwrap_or_else(|| claims_from_features(&contract::StateStore::features(&store)));
            drivers.state.insert((state.clone(), DriverKind::Http), Arc::new(store));
            add(state, "state.sidecar", claims.clone());
            all_claims.extend(claims);
            rerun.push_str(&format!(" --state {state}"));
        }
        // Certify plays the app when the sidecar has something to deliver to it.
        let app = App::new(pubsub.iter().cloned().collect());
        let binding_inbox = binding.as_ref().filter(|_| app_port.is_some()).map(|name| app.add_binding(name));
        let wants_app = pubsub.is_some() || configuration.is_some() || invoke;
        if binding_inbox.is_some() || (wants_app && app_port.is_some()) || pubsub.is_some() {
            let port = app_port.unwrap_or(0);
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|source| SetupError::AppPort { port, source })?;
            app.serve_on(listener).map_err(|source| SetupError::AppPort { port, source })?;
        }
        if let Some(name) = &pubsub {
            let port = app_port.unwrap_or(0);
            let broker = HttpPubSub::connect(&url, name, token.clone(), app.clone()).await?;
            // The sidecar reads the app's subscriptions once the app listens.
            wait_for_app_subscriptions(&url).await?;
            let claims = claims.clone().unwrap_or_else(|| pubsub_claims(&contract::PubSub::features(&broker)));
            drivers.pubsub.insert((name.clone(), DriverKind::Http), Arc::new(broker));
            drivers.topics.insert((name.clone(), DriverKind::Http), Arc::new(TopicPool::default()));
            add(name, "pubsub.sidecar", claims.clone());
            all_claims.extend(claims);
            rerun.push_str(&format!(" --pubsub {name} --app-port {port}"));
        }
        if let Some(name) = &secrets {
            let store = HttpSecretStore::connect(&url, name, token.clone()).await?;
            let claims = claims.clone().unwrap_or_default();
            drivers.secrets.insert((name.clone(), DriverKind::Http), Arc::new(store));
            add(name, "secretstores.sidecar", claims.clone());
            all_claims.extend(claims);
            rerun.push_str(&format!(" --secrets {name}"));
        }
        if let Some(name) = &lock {
            let store = HttpLockStore::connect(&url, name, token.clone()).await?;
            drivers.lock.insert((name.clone(), DriverKind::Http), Arc::new(store));
            add(name, "lock.sidecar", BTreeSet::new());
            rerun.push_str(&format!(" --lock {name}"));
        }
        if let Some(name) = &binding {
            let output = HttpOutputBinding::connect(&url, name, token.clone()).await?;
            let claims = claims.clone().unwrap_or_default();
            let target = BindingTarget { output: Some(Arc::new(output)), inbox: binding_inbox, reading: None };
            drivers.bindings.insert((name.clone(), DriverKind::Http), target);
            add(name, "bindings.sidecar", claims.clone());
            all_claims.extend(claims);
            rerun.push_str(&format!(" --binding {name}"));
        }
        if let Some(name) = &configuration {
            let store = HttpConfigurationStore::connect(&url, name, token.clone(), app.clone()).await?;
            let updater = match &configuration_writer {
                None => None,
                Some(path) => Some(configuration_writer_from(path, registry).await?),
            };
            let target = ConfigurationTarget { store: Arc::new(store), updater };
            drivers.configuration.insert((name.clone(), DriverKind::Http), target);
            add(name, "configuration.sidecar", BTreeSet::new());
            rerun.push_str(&format!(" --configuration {name}"));
            if let Some(path) = &configuration_writer {
                rerun.push_str(&format!(" --configuration-writer {}", path.display()));
            }
        }
        if invoke {
            let invoker = HttpInvoker::connect(&url, token.clone()).await?;
            let name = invoker.app_id().to_owned();
            drivers.invokers.insert((name.clone(), DriverKind::Http), Arc::new(invoker));
            add(&name, "invocation.sidecar", BTreeSet::new());
            rerun.push_str(" --invoke");
        }
        if pubsub.is_none()
            && let Some(port) = app_port
        {
            rerun.push_str(&format!(" --app-port {port}"));
        }
        Ok(Session::black_box(url, targets, drivers, components, rerun, &all_claims))
    }

    /// A session over something certify did not start: the rerun command ends with the claims.
    fn black_box(
        source: String,
        targets: Vec<Target>,
        drivers: Drivers,
        components: Vec<ComponentRecord>,
        mut rerun: String,
        claims: &BTreeSet<Claim>,
    ) -> Session {
        let features = claims.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>().join(",");
        rerun.push_str(&format!(" --features {features}"));
        Session { source, targets, drivers, components, rerun_prefix: rerun, sidecar: None, backends: Vec::new() }
    }

    async fn open_pluggable(target: PluggableTarget) -> Result<Session, SetupError> {
        use pluggable::services as svc;
        let PluggableTarget { socket, component, metadata, claims } = target;
        let name = component.unwrap_or_else(|| {
            socket.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "pluggable".into())
        });
        let channel = pluggable::socket::dial(&socket).await?;
        let services = pluggable::socket::services(&socket, channel.clone()).await?;
        let has = |service: &str| services.iter().any(|s| s == service);
        let blocks: Vec<Block> = [
            (has(svc::STATE), Block::State),
            (has(svc::PUBSUB), Block::PubSub),
            (has(svc::INPUT_BINDING) || has(svc::OUTPUT_BINDING), Block::Bindings),
            (has(svc::SECRET_STORE), Block::SecretStores),
        ]
        .into_iter()
        .filter_map(|(served, block)| served.then_some(block))
        .collect();
        if blocks.is_empty() {
            return Err(SetupError::PluggableInit {
                component: name,
                reason: format!(
                    "it serves none of dapr.proto.components.v1's services through reflection (it lists: {})",
                    services.join(", ")
                ),
            });
        }
        // Each block is a component of its own, as each has its own Component resource; on a
        // socket serving several, the instances are told apart by a suffix.
        let several = blocks.len() > 1;
        let instance = |block: Block| match several {
            false => name.clone(),
            true => format!("{name}-{}", block.prefix()),
        };
        let failed = |instance: &str| {
            let instance = instance.to_owned();
            move |e: contract::Error| SetupError::PluggableInit { component: instance.clone(), reason: e.to_string() }
        };
        let warn_unknown = |instance: &str, unknown: &[String]| {
            if !unknown.is_empty() {
                tracing::warn!(%instance, features = ?unknown, "the component lists features certify does not know");
            }
        };
        let mut drivers = Drivers::default();
        let mut found: Vec<(Block, String, BTreeSet<Claim>)> = Vec::new();
        for block in blocks {
            let instance = instance(block);
            let key = (instance.clone(), DriverKind::Grpc);
            let listed = match block {
                Block::State => {
                    let store =
                        pluggable::state::PluggableStateStore::init(channel.clone(), &instance, metadata.clone())
                            .await
                            .map_err(failed(&instance))?;
                    warn_unknown(&instance, &store.unknown_features);
                    let listed = claims_from_features(&contract::StateStore::features(&store));
                    drivers.state.insert(key, Arc::new(store));
                    listed
                }
                Block::PubSub => {
                    let broker = pluggable::pubsub::PluggablePubSub::init(channel.clone(), &instance, metadata.clone())
                        .await
                        .map_err(failed(&instance))?;
                    warn_unknown(&instance, &broker.unknown_features);
                    let listed = pubsub_claims(&contract::PubSub::features(&broker));
                    drivers.pubsub.insert(key, Arc::new(broker));
                    listed
                }
                Block::Bindings => {
                    let mut target = BindingTarget::default();
                    let mut listed = BTreeSet::new();
                    if has(svc::OUTPUT_BINDING) {
                        let output = pluggable::bindings::PluggableOutputBinding::init(
                            channel.clone(),
                            &instance,
                            metadata.clone(),
                        )
                        .await
                        .map_err(failed(&instance))?;
                        let operations = contract::OutputBinding::operations(&output);
                        listed.extend(Claim::ALL.iter().copied().filter(|c| {
                            c.blocks().contains(&Block::Bindings) && operations.iter().any(|op| op == c.as_str())
                        }));
                        target.output = Some(Arc::new(output));
                    }
                    if has(svc::INPUT_BINDING) {
                        let input = pluggable::bindings::PluggableInputBinding::init(
                            channel.clone(),
                            &instance,
                            metadata.clone(),
                        )
                        .await
                        .map_err(failed(&instance))?;
                        // One reader for the run, as daprd has; trials listen to its inbox.
                        let inbox = Arc::new(BindingInbox::default());
                        let reading =
                            contract::InputBinding::read(&input, inbox.handler()).await.map_err(failed(&instance))?;
                        target.inbox = Some(inbox);
                        target.reading = Some(Arc::new(reading));
                        listed.insert(Claim::Read);
                    }
                    drivers.bindings.insert(key, target);
                    listed
                }
                Block::SecretStores => {
                    let store =
                        pluggable::secrets::PluggableSecretStore::init(channel.clone(), &instance, metadata.clone())
                            .await
                            .map_err(failed(&instance))?;
                    warn_unknown(&instance, &store.unknown_features);
                    let multi = contract::SecretStore::features(&store)
                        .contains(&contract::SecretFeature::MultipleKeyValuesPerSecret);
                    drivers.secrets.insert(key, Arc::new(store));
                    multi.then_some(Claim::MultiKeySecrets).into_iter().collect()
                }
                _ => continue,
            };
            let mut block_claims = claims.clone().unwrap_or(listed);
            block_claims.retain(|c| c.blocks().contains(&block));
            found.push((block, instance, block_claims));
        }
        let (mut targets, mut components, mut all_claims) = (Vec::new(), Vec::new(), BTreeSet::new());
        for (block, instance, block_claims) in found {
            let type_name = format!("{}.pluggable", block.prefix());
            targets.push(Target {
                component: instance.clone(),
                type_name: type_name.clone(),
                driver: DriverKind::Grpc,
                claims: block_claims.clone(),
                settings: Default::default(),
                blocked: None,
            });
            components.push(ComponentRecord {
                name: instance,
                type_name: format!("{type_name} ({})", socket.display()),
                claims: block_claims.iter().map(|c| c.as_str().to_owned()).collect(),
                drivers: vec!["grpc".into()],
                metadata: metadata.clone(),
            });
            all_claims.extend(block_claims);
        }
        let mut rerun = format!("certify run --pluggable {} --component {name}", socket.display());
        for (key, value) in &metadata {
            rerun.push_str(&format!(" --metadata {key}={value}"));
        }
        Ok(Session::black_box(socket.display().to_string(), targets, drivers, components, rerun, &all_claims))
    }

    async fn open_spec(spec: Spec, registry: &Registry, options: &SessionOptions) -> Result<Session, SetupError> {
        // 1. The backends the spec needs, from `${{kind.field}}` placeholders.
        let mut needs: BTreeMap<String, BTreeSet<BackendKind>> = BTreeMap::new();
        for entry in &spec.entries {
            let kinds = placeholders(&entry.manifest)?;
            needs.insert(entry.manifest.name.clone(), kinds.into_iter().map(|(k, _)| k).collect());
        }
        let wanted: BTreeSet<BackendKind> = needs.values().flatten().copied().collect();
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let fixture_options =
            fixtures::Options { ready_timeout: options.backend_timeout, run_id, settings: spec.backends.settings() };
        let mut backends: BTreeMap<BackendKind, Result<Arc<Backend>, BackendError>> = BTreeMap::new();
        for kind in wanted {
            let provided = fixtures::provision(kind, options.provider, &fixture_options).await.map(Arc::new);
            if let Err(e @ BackendError::Unavailable { .. }) = &provided
                && options.require_backends
            {
                return Err(SetupError::Backend(e.clone()));
            }
            backends.insert(kind, provided);
        }
        // 2. Each entry's manifest with its placeholders filled, or why it is blocked.
        let mut ready: Vec<(usize, ComponentManifest)> = Vec::new();
        let mut blocked: BTreeMap<String, Blocked> = BTreeMap::new();
        for (index, entry) in spec.entries.iter().enumerate() {
            let name = &entry.manifest.name;
            let failure = needs[name].iter().find_map(|kind| match &backends[kind] {
                Ok(_) => None,
                Err(e @ BackendError::Unavailable { .. }) => Some(Blocked::Unavailable(e.to_string())),
                Err(e @ BackendError::NeverReady { .. }) => Some(Blocked::SetupFailed(e.to_string())),
            });
            match failure {
                Some(b) => {
                    blocked.insert(name.clone(), b);
                }
                None => ready.push((index, substitute(&entry.manifest, &backend_values(&backends)))),
            }
        }
        let secret_stores: Vec<ComponentManifest> = ready
            .iter()
            .map(|(_, m)| m.clone())
            .filter(|m| Block::of_type(&m.type_name) == Some(Block::SecretStores))
            .collect();
        // Pluggable components: each socket's blocks become component types, as daprd
        // discovers them; a socket that does not answer fails its components' cases.
        let mut registry = registry.clone();
        for entry in &spec.entries {
            let Some(socket) = &entry.pluggable else { continue };
            if let Err(e) = pluggable::discovery::register_socket(&mut registry, socket).await {
                blocked.insert(entry.manifest.name.clone(), Blocked::SetupFailed(e.to_string()));
                ready.retain(|(index, _)| spec.entries[*index].manifest.name != entry.manifest.name);
            }
        }
        let registry = &registry;
        // 3. Build each component alone, so one that cannot start fails only its own cases.
        let build = |manifest: ComponentManifest| {
            let mut set: Vec<ComponentManifest> =
                secret_stores.iter().filter(|s| s.name != manifest.name).cloned().collect();
            set.push(manifest);
            async move { registry.build_all(&set, Arc::new(SystemClock)).await }
        };
        let mut drivers = Drivers::default();
        let mut served = contract::Components::default();
        let wants_http = spec.entries.iter().any(|e| e.drivers.contains(&DriverKind::Http));
        for (index, manifest) in &ready {
            let entry = &spec.entries[*index];
            let name = manifest.name.clone();
            // A pluggable component's own driver is gRPC; its instance has a name of its own,
            // so it does not share the sidecar's (each `Init` makes one per name).
            let (driver, own) = match entry.pluggable {
                Some(_) => (DriverKind::Grpc, ComponentManifest { name: format!("{name}-grpc"), ..manifest.clone() }),
                None => (DriverKind::InProcess, manifest.clone()),
            };
            let built = match build(own.clone()).await {
                Ok(b) => b,
                // A component that is configured right but cannot start fails its own cases;
                // a wrong type, field or value is a spec mistake and stops the run.
                Err(e @ contract::LoadError::Init { .. }) => {
                    blocked.insert(name.clone(), Blocked::SetupFailed(format!("the component could not start: {e}")));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let key = (name.clone(), driver);
            match built.by_name.get(&own.name).map(|c| &c.component) {
                Some(Component::State(store)) => {
                    drivers.state.insert(key, Arc::clone(store));
                }
                Some(Component::Lock(store)) => {
                    drivers.lock.insert(key, Arc::clone(store));
                }
                Some(Component::PubSub(broker)) => {
                    drivers.pubsub.insert(key, Arc::clone(broker));
                }
                Some(Component::Secrets(store)) => {
                    drivers.secrets.insert(key, Arc::clone(store));
                }
                Some(Component::Configuration { store, updater }) => {
                    let target = ConfigurationTarget { store: Arc::clone(store), updater: updater.clone() };
                    drivers.configuration.insert(key, target);
                }
                Some(Component::Binding { input, output }) => {
                    let mut target = BindingTarget { output: output.clone(), ..BindingTarget::default() };
                    // Only when certified in-process: a reader nobody listens to would compete
                    // with the sidecar's for the same events.
                    if let Some(input) = input.as_ref().filter(|_| entry.drivers.contains(&driver)) {
                        // One reader for the run, as a sidecar has; trials listen to its inbox.
                        let inbox = Arc::new(BindingInbox::default());
                        match input.read(inbox.handler()).await {
                            Ok(reading) => {
                                target.inbox = Some(inbox);
                                target.reading = Some(Arc::new(reading));
                            }
                            Err(e) => {
                                blocked.insert(
                                    name.clone(),
                                    Blocked::SetupFailed(format!("the input binding could not start reading: {e}")),
                                );
                            }
                        }
                    }
                    drivers.bindings.insert(key, target);
                }
                _ => {}
            }
            if wants_http && entry.drivers.contains(&DriverKind::Http) {
                // The reference runtime serves its own instance, as a sidecar would.
                match build(manifest.clone()).await {
                    Ok(b) => served.by_name.extend(b.by_name),
                    Err(e) => {
                        blocked
                            .insert(name.clone(), Blocked::SetupFailed(format!("the component could not start: {e}")));
                    }
                }
            }
        }
        // The faults driver: another instance of each such component, connected through a
        // fault proxy per backend it uses.
        for (index, _) in &ready {
            let entry = &spec.entries[*index];
            let name = &entry.manifest.name;
            if !entry.drivers.contains(&DriverKind::Faults) || blocked.contains_key(name) {
                continue;
            }
            let mut proxies = Vec::new();
            let mut values = BTreeMap::new();
            let mut used = Vec::new();
            for kind in &needs[name] {
                let Some(Ok(backend)) = backends.get(kind) else { continue };
                let proxy = match fixtures::FaultProxy::start(&backend.endpoint.host).await {
                    Ok(p) => p,
                    Err(e) => {
                        blocked.insert(name.clone(), Blocked::SetupFailed(format!("no fault proxy: {e}")));
                        break;
                    }
                };
                let via = proxy.addr().to_string();
                values.insert((*kind, "host"), via.clone());
                values.insert((*kind, "url"), backend.endpoint.url.replace(&backend.endpoint.host, &via));
                proxies.push((*kind, proxy));
                used.push(Arc::clone(backend));
            }
            if blocked.contains_key(name) {
                continue;
            }
            let key = (name.clone(), DriverKind::Faults);
            match build(substitute(&entry.manifest, &values))
                .await
                .map(|b| b.by_name.get(name).map(|c| c.component.clone()))
            {
                Ok(Some(Component::State(store))) => {
                    drivers.state.insert(key, store);
                }
                Ok(Some(Component::PubSub(broker))) => {
                    drivers.pubsub.insert(key, broker);
                }
                Ok(Some(Component::Binding { input, output })) => {
                    let mut target = BindingTarget { output, ..BindingTarget::default() };
                    if let Some(input) = input {
                        let inbox = Arc::new(BindingInbox::default());
                        match input.read(inbox.handler()).await {
                            Ok(reading) => {
                                target.inbox = Some(inbox);
                                target.reading = Some(Arc::new(reading));
                            }
                            Err(e) => {
                                let reason =
                                    format!("the input binding could not start reading through its fault proxy: {e}");
                                blocked.insert(name.clone(), Blocked::SetupFailed(reason));
                                continue;
                            }
                        }
                    }
                    drivers.bindings.insert(key, target);
                }
                Ok(_) => {}
                Err(e) => {
                    let reason = format!("the component could not start through its fault proxy: {e}");
                    blocked.insert(name.clone(), Blocked::SetupFailed(reason));
                    continue;
                }
            }
            drivers.faults.insert(name.clone(), Arc::new(ProxiedBackends { proxies, backends: used }));
        }
        let mut sidecar = None;
        if wants_http {
            // Pub/sub over HTTP needs an app for the sidecar to deliver to: certify plays it.
            let pubsubs: Vec<String> = spec
                .entries
                .iter()
                .filter(|e| e.drivers.contains(&DriverKind::Http) && !blocked.contains_key(&e.manifest.name))
                .filter(|e| Block::of_type(&e.manifest.type_name) == Some(Block::PubSub))
                .map(|e| e.manifest.name.clone())
                .collect();
            // Configuration subscriptions and input bindings deliver to the app too.
            let needs_app = !pubsubs.is_empty()
                || spec.entries.iter().any(|e| {
                    e.drivers.contains(&DriverKind::Http)
                        && matches!(Block::of_type(&e.manifest.type_name), Some(Block::Configuration | Block::Bindings))
                });
            let app = App::new(pubsubs.clone());
            let mut inboxes = BTreeMap::new();
            for entry in spec.entries.iter().filter(|e| {
                e.drivers.contains(&DriverKind::Http) && Block::of_type(&e.manifest.type_name) == Some(Block::Bindings)
            }) {
                inboxes.insert(entry.manifest.name.clone(), app.add_binding(&entry.manifest.name));
            }
            let app_port = match needs_app {
                false => None,
                true => Some(app.serve().await.map_err(SetupError::Sidecar)?.port()),
            };
            let config = SidecarConfig { app_id: "certify".into(), app_port, ..SidecarConfig::default() };
            let served_updaters: BTreeMap<String, Arc<dyn contract::ConfigurationUpdater>> = served
                .by_name
                .iter()
                .filter_map(|(name, c)| match &c.component {
                    Component::Configuration { updater: Some(u), .. } => Some((name.clone(), Arc::clone(u))),
                    _ => None,
                })
                .collect();
            let sidecar_components: BTreeMap<String, Component> =
                served.by_name.iter().map(|(name, c)| (name.clone(), c.component.clone())).collect();
            let runtime = Sidecar::new(config, served, Vec::new());
            let (url, serving) = Arc::clone(&runtime).serve_on_loopback().await.map_err(SetupError::Sidecar)?;
            if app_port.is_some() {
                wait_for_app_subscriptions(&url).await?;
            }
            for entry in spec
                .entries
                .iter()
                .filter(|e| e.drivers.contains(&DriverKind::Http) && !blocked.contains_key(&e.manifest.name))
            {
                let key = (entry.manifest.name.clone(), DriverKind::Http);
                match Block::of_type(&entry.manifest.type_name) {
                    Some(Block::State) => {
                        drivers
                            .state
                            .insert(key, Arc::new(HttpStateStore::connect(&url, &entry.manifest.name, None).await?));
                    }
                    Some(Block::Lock) => {
                        drivers
                            .lock
                            .insert(key, Arc::new(HttpLockStore::connect(&url, &entry.manifest.name, None).await?));
                    }
                    Some(Block::SecretStores) => {
                        let store = HttpSecretStore::connect(&url, &entry.manifest.name, None).await?;
                        drivers.secrets.insert(key, Arc::new(store));
                    }
                    Some(Block::Configuration) => {
                        let store =
                            HttpConfigurationStore::connect(&url, &entry.manifest.name, None, app.clone()).await?;
                        // Items are written behind the store's back: through the served instance.
                        let updater = served_updaters.get(&entry.manifest.name).cloned();
                        drivers.configuration.insert(key, ConfigurationTarget { store: Arc::new(store), updater });
                    }
                    Some(Block::Bindings) => {
                        let name = &entry.manifest.name;
                        let output = HttpOutputBinding::connect(&url, name, None).await?;
                        // The sidecar reads an input side only if the component has one.
                        let has_input =
                            matches!(sidecar_components.get(name), Some(Component::Binding { input: Some(_), .. }));
                        let inbox = inboxes.get(name).filter(|_| has_input).cloned();
                        drivers
                            .bindings
                            .insert(key, BindingTarget { output: Some(Arc::new(output)), inbox, reading: None });
                    }
                    Some(Block::PubSub) => {
                        let pubsub = HttpPubSub::connect(&url, &entry.manifest.name, None, app.clone()).await?;
                        drivers.pubsub.insert(key.clone(), Arc::new(pubsub));
                        drivers.topics.insert(key, Arc::new(TopicPool::default()));
                    }
                    _ => {}
                }
            }
            sidecar = Some((runtime, serving));
        }
        let targets = spec
            .entries
            .iter()
            .flat_map(|entry| {
                let blocked = blocked.get(&entry.manifest.name).cloned();
                entry.drivers.iter().map(move |driver| Target {
                    component: entry.manifest.name.clone(),
                    type_name: entry.manifest.type_name.clone(),
                    driver: *driver,
                    claims: entry.claims.clone(),
                    settings: entry.settings.clone(),
                    blocked: blocked.clone(),
                })
            })
            .collect();
        let components = spec
            .entries
            .iter()
            .map(|e| ComponentRecord {
                name: e.manifest.name.clone(),
                type_name: e.manifest.type_name.clone(),
                claims: e.claims.iter().map(|c| c.as_str().to_owned()).collect(),
                drivers: e.drivers.iter().map(|d| d.as_str().to_owned()).collect(),
                metadata: redacted_metadata(&e.manifest),
            })
            .collect();
        let rerun_prefix = match &options.spec_arg {
            Some(path) => format!("certify run --spec {path}"),
            None => "certify run".to_owned(),
        };
        let backends = backends.into_values().filter_map(Result::ok).collect();
        Ok(Session { source: spec.source.clone(), targets, drivers, components, rerun_prefix, sidecar, backends })
    }
}

/// The updater of the configuration store described by the Component YAML at `path`.
async fn configuration_writer_from(
    path: &std::path::Path,
    registry: &Registry,
) -> Result<Arc<dyn contract::ConfigurationUpdater>, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|e| SetupError::Writer {
        path: path.display().to_string(),
        message: format!("cannot read it: {e}"),
    })?;
    let resources = contract::Resources::parse(path, &text)?;
    let [manifest] = resources.components.as_slice() else {
        return Err(SetupError::Writer {
            path: path.display().to_string(),
            message: format!("it must hold exactly one Component, it holds {}", resources.components.len()),
        });
    };
    let built = registry.build_all(std::slice::from_ref(manifest), Arc::new(SystemClock)).await?;
    match built.by_name.get(&manifest.name).map(|c| &c.component) {
        Some(Component::Configuration { updater: Some(updater), .. }) => Ok(Arc::clone(updater)),
        _ => Err(SetupError::Writer {
            path: path.display().to_string(),
            message: format!(
                "`{}` ({}) is not a configuration store certify can write to",
                manifest.name, manifest.type_name
            ),
        }),
    }
}

/// Waits until the sidecar at `url` has read the app's subscriptions (its health check answers
/// 204 only then), so no case publishes before anyone is subscribed.
pub async fn wait_for_app_subscriptions(url: &str) -> Result<(), SetupError> {
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = client.get(format!("{url}/v1.0/healthz")).timeout(Duration::from_secs(2)).send().await;
        if answer.is_ok_and(|r| r.status().as_u16() == 204) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(SetupError::Sidecar(std::io::Error::other(format!(
                "the sidecar at {url} did not report healthy (subscriptions read from the app) within 30 s"
            ))));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `${{kind.field}}` placeholders of a manifest's metadata, validated.
fn placeholders(manifest: &ComponentManifest) -> Result<Vec<(BackendKind, String)>, SetupError> {
    let mut found = Vec::new();
    for entry in &manifest.metadata {
        let MetadataValue::Plain(value) = &entry.value else { continue };
        let mut rest = value.as_str();
        while let Some(start) = rest.find("${{") {
            let after = &rest[start + 3..];
            let Some(end) = after.find("}}") else {
                return Err(SetupError::Placeholder {
                    component: manifest.name.clone(),
                    field: entry.name.clone(),
                    message: "`${{` without a closing `}}`".into(),
                });
            };
            let inner = &after[..end];
            let (kind, field) = inner.split_once('.').unwrap_or((inner, ""));
            let kind =
                BackendKind::ALL.iter().copied().find(|k| k.name() == kind).ok_or_else(|| SetupError::Placeholder {
                    component: manifest.name.clone(),
                    field: entry.name.clone(),
                    message: format!(
                        "`${{{{{inner}}}}}` names no backend (known: {})",
                        BackendKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                    ),
                })?;
            if !matches!(field, "host" | "url") {
                return Err(SetupError::Placeholder {
                    component: manifest.name.clone(),
                    field: entry.name.clone(),
                    message: format!("`${{{{{inner}}}}}`: a backend offers `host` and `url`"),
                });
            }
            found.push((kind, field.to_owned()));
            rest = &after[end + 2..];
        }
    }
    Ok(found)
}

/// Each provisioned backend's placeholder values: `(kind, field)` → value.
fn backend_values(
    backends: &BTreeMap<BackendKind, Result<Arc<Backend>, BackendError>>,
) -> BTreeMap<(BackendKind, &'static str), String> {
    let mut values = BTreeMap::new();
    for (kind, backend) in backends {
        let Ok(backend) = backend else { continue };
        for field in ["host", "url"] {
            if let Some(v) = backend.placeholder(field) {
                values.insert((*kind, field), v.to_owned());
            }
        }
    }
    values
}

/// The manifest with every placeholder replaced by its value.
fn substitute(
    manifest: &ComponentManifest,
    values: &BTreeMap<(BackendKind, &'static str), String>,
) -> ComponentManifest {
    let mut out = manifest.clone();
    for entry in &mut out.metadata {
        if let MetadataValue::Plain(value) = &mut entry.value {
            for ((kind, field), v) in values {
                *value = value.replace(&format!("${{{{{}.{field}}}}}", kind.name()), v);
            }
        }
    }
    out
}
