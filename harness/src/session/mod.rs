//! A run's setup: the components built from the spec (or reached black-box), the handles each
//! driver gives them, and for the HTTP driver a reference runtime started on loopback (or a
//! given sidecar). One module per responsibility: backends (`provision`), `${{…}}`
//! placeholders, redaction, the in-process build, the fault build, the reference runtime,
//! black-box sidecars and pluggable sockets. Everything it starts stops when it is dropped.

mod black_box;
mod faults;
mod in_process;
mod placeholders;
mod pluggable;
mod provision;
mod redaction;
mod reference;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use contract::{Block, Registry};
use fixtures::{Backend, BackendError, BackendKind, Provider};
use reports::ComponentRecord;
use suites::Claim;

use crate::blocks::Catalogue;
use crate::http::ConnectError;
use crate::plan::Target;
use crate::spec::Spec;

pub use redaction::redacted_metadata;
pub use reference::wait_for_app_subscriptions;

/// What is certified.
// Built once per run: the size of the spec variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Source {
    /// A spec (the built-in one, or a file).
    Spec(Spec),
    /// A running sidecar, black-box.
    Sidecar(SidecarSource),
    /// A pluggable component on a Unix socket, through the gRPC driver.
    Pluggable(PluggableSource),
}

/// A pluggable component to certify over gRPC.
#[derive(Debug, Clone, Default)]
pub struct PluggableSource {
    /// Its socket.
    pub socket: PathBuf,
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
pub struct SidecarSource {
    /// Its base URL, e.g. `http://127.0.0.1:3500`.
    pub url: String,
    /// The components to certify, by block and name; service invocation's is the app itself
    /// (an empty name: the sidecar's app id).
    pub components: Vec<(Block, String)>,
    /// The port the sidecar delivers to (its `--app-port`); certify serves the app there.
    pub app_port: Option<u16>,
    /// How the sidecar calls the app there (its `--app-protocol`).
    pub app_protocol: reference_runtime::sidecar::AppProtocol,
    /// Component YAMLs of the same stores as the sidecar's, by the sidecar's component name:
    /// certify builds them to work behind the sidecar's back (a configuration writer).
    pub behind: BTreeMap<String, PathBuf>,
    /// The claims; `None` takes them from the capabilities the sidecar advertises.
    pub claims: Option<BTreeSet<Claim>>,
    /// `DAPR_API_TOKEN`, if the sidecar wants one.
    pub token: Option<String>,
    /// Its Prometheus endpoint (`--metrics`).
    pub metrics: Option<String>,
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
    Pluggable(#[from] ::pluggable::socket::SocketError),
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
    /// A component certify builds itself to work behind a sidecar's back (a configuration
    /// writer) is unusable.
    #[error("--configuration-writer {path}: {message}")]
    Writer {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A component's type belongs to no block the run knows how to drive.
    #[error(
        "component `{component}`: type `{type_name}` belongs to no building block certify can drive (a new block needs its driver in the harness catalogue)"
    )]
    UnknownBlock {
        /// The component.
        component: String,
        /// Its type.
        type_name: String,
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
    /// The blocks and suites the run knows.
    pub catalogue: Catalogue,
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
            catalogue: Catalogue::builtin(),
            provider,
            require_backends: std::env::var("CERTIFY_REQUIRE_BACKENDS").is_ok_and(|v| v == "1"),
            backend_timeout,
        })
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            catalogue: Catalogue::builtin(),
            provider: Provider::Auto,
            require_backends: false,
            backend_timeout: Duration::from_secs(60),
        }
    }
}

use reference::Reference;

/// A run's targets (component × driver, each with its handles) and what keeps them alive.
pub struct Session {
    /// What the run certifies, for the report.
    pub source: String,
    /// The spec's digest, when the run had one.
    pub spec_digest: Option<String>,
    /// Every component × driver.
    pub targets: Vec<Target>,
    /// The components, for the report.
    pub components: Vec<ComponentRecord>,
    /// The blocks and suites the run knows.
    pub catalogue: Catalogue,
    reference: Option<Reference>,
    // Declared last: servers stop after everything that talks to them.
    backends: Vec<Arc<Backend>>,
}

impl Session {
    /// Builds the components and drivers of `source`.
    pub async fn open(source: Source, registry: &Registry, options: &SessionOptions) -> Result<Session, SetupError> {
        match source {
            Source::Sidecar(target) => black_box::open(target, registry, &options.catalogue).await,
            Source::Spec(spec) => Self::open_spec(spec, registry, options).await,
            Source::Pluggable(target) => pluggable::open(target, &options.catalogue).await,
        }
    }

    /// A spec's components: backends provisioned, each component built alone (so one that
    /// cannot start fails only its own cases), each through the drivers it names.
    async fn open_spec(spec: Spec, registry: &Registry, options: &SessionOptions) -> Result<Session, SetupError> {
        let catalogue = &options.catalogue;
        let backends = provision::backends(&spec, options).await?;
        let mut built = in_process::build(&spec, registry, catalogue, &backends).await?;
        faults::build(&spec, catalogue, &backends, &mut built).await;
        let reference = reference::start(&spec, catalogue, &mut built).await?;
        let targets = built.targets(&spec, catalogue);
        let components = spec.entries.iter().map(redaction::record).collect();
        Ok(Session {
            source: spec.source.clone(),
            spec_digest: Some(spec.digest.clone()),
            targets,
            components,
            catalogue: catalogue.clone(),
            reference,
            backends: backends.started(),
        })
    }

    /// A session over something certify did not start.
    fn black_box(
        source: String,
        targets: Vec<Target>,
        components: Vec<ComponentRecord>,
        catalogue: &Catalogue,
    ) -> Self {
        Session {
            source,
            spec_digest: None,
            targets,
            components,
            catalogue: catalogue.clone(),
            reference: None,
            backends: Vec::new(),
        }
    }

    /// The backends the run uses: kind, provider and endpoint.
    pub fn backends(&self) -> impl Iterator<Item = &Backend> {
        self.backends.iter().map(|b| &**b)
    }

    /// The backends with their client URLs, for raw-client baselines.
    pub fn backend_urls(&self) -> Vec<(BackendKind, &'static str, String, String)> {
        self.backends.iter().map(|b| (b.kind, b.provider, b.endpoint.host.clone(), b.endpoint.url.clone())).collect()
    }

    /// The claims of every target, for a black-box run's rerun command.
    pub fn claims(&self) -> BTreeSet<Claim> {
        self.targets.iter().flat_map(|t| t.claims.iter().copied()).collect()
    }

    /// Stops in order: the reference runtime (waiting for its deliveries), then the clients,
    /// then the backends, so no client sees its server vanish. Dropping a session asks the
    /// reference runtime to stop and then ends its runtime's tasks at once: deliveries in
    /// flight are cut, not waited for.
    pub async fn close(mut self) {
        if let Some(Reference { sidecar, serving, runtime }) = self.reference.take() {
            sidecar.shutdown();
            drop(sidecar);
            let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
            drop(runtime);
        }
        self.targets.clear();
        // Clients close their connections on drop; give their IO tasks a moment to do so.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(reference) = &self.reference {
            reference.sidecar.shutdown();
        }
    }
}
