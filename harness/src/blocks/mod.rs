//! The building blocks as the harness drives them: one module per block, each a
//! [`BlockDriver`] saying how a component of the block is reached through each driver (the
//! handles a case gets), and the [`Catalogue`] of blocks and suites a run knows. Adding a
//! block is one module here and one line in [`Catalogue::builtin`]; nothing else in the
//! harness names blocks.

mod actors;
mod bindings;
mod configuration;
mod invocation;
mod jobs;
mod lock;
mod observability;
mod pubsub;
mod secrets;
mod state;
mod workflows;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, Parts};
use suites::{Case, Claim, Suite};

use crate::app::App;
use crate::grpc::GrpcSidecar;
use crate::http::ConnectError;

/// A sidecar's HTTP API as the session reaches it, and the app certify plays for it.
pub struct HttpLink<'a> {
    /// Its base URL.
    pub url: &'a str,
    /// `DAPR_API_TOKEN`, if it wants one.
    pub token: Option<String>,
    /// The app the sidecar delivers to.
    pub app: &'a App,
    /// Its Prometheus endpoint, when known.
    pub metrics: Option<&'a str>,
}

/// A sidecar's gRPC API as the session reaches it, and the app certify plays for it.
pub struct GrpcLink<'a> {
    /// The client of its API.
    pub sidecar: &'a GrpcSidecar,
    /// The app the sidecar delivers to.
    pub app: &'a App,
    /// Whether pub/sub deliveries go to `app` (served as `AppCallback` on the sidecar's app
    /// port); otherwise they come on streaming subscriptions.
    pub app_delivers: bool,
    /// Its Prometheus endpoint, when known.
    pub metrics: Option<&'a str>,
}

/// A pluggable component's socket: the channel to it and the services it lists.
pub struct PluggableSocket<'a> {
    /// The channel.
    pub channel: &'a pluggable::Channel,
    /// The services reflection lists.
    pub services: &'a [String],
    /// The Component metadata sent with `Init`.
    pub metadata: &'a BTreeMap<String, String>,
}

impl PluggableSocket<'_> {
    /// True when it serves `service`.
    pub fn serves(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

/// How one building block is driven. Only [`BlockDriver::block`] is required: a block that
/// has no HTTP or gRPC form leaves those out, and the planner skips its cases there with the
/// reason.
#[async_trait]
pub trait BlockDriver: Send + Sync {
    /// The block.
    fn block(&self) -> Block;

    /// In-process (and through fault proxies): the handles of `component`, built in this
    /// process. `reads`: start reading its input side, once for the run.
    async fn local(&self, component: &Component, _reads: bool) -> Result<Parts, String> {
        Ok(component.parts().clone())
    }

    /// Over HTTP, before the sidecar starts: declares what the app must serve for component
    /// `name` (the sidecar's own instance is `served`, when certify started it); true when the
    /// sidecar will deliver to the app for it.
    fn declare(&self, _app: &App, _name: &str, _served: Option<&Component>) -> bool {
        false
    }

    /// Over HTTP: the handles of component `name` through the sidecar; `None` when the block
    /// has no HTTP form. `served` is the sidecar's own instance, when certify started it.
    async fn http(
        &self,
        _link: &HttpLink<'_>,
        _name: &str,
        _served: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        None
    }

    /// Over the Dapr gRPC API: the handles of component `name` through the sidecar; `None`
    /// when the block has no gRPC form. The app is declared as for HTTP ([`BlockDriver::declare`]);
    /// `served` as for [`BlockDriver::http`].
    async fn dapr_grpc(
        &self,
        _link: &GrpcLink<'_>,
        _name: &str,
        _served: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        None
    }

    /// The pluggable components' services (`dapr.proto.components.v1.…`) of this block.
    fn pluggable_services(&self) -> &'static [&'static str] {
        &[]
    }

    /// Over its socket: the handles of a pluggable component's `instance`, on a socket that
    /// serves one of [`BlockDriver::pluggable_services`].
    async fn pluggable(&self, _socket: &PluggableSocket<'_>, _instance: &str) -> Result<Parts, String> {
        Err(format!("certify has no pluggable driver for block `{}`", self.block()))
    }

    /// The claims the handles advertise (a black-box run's default claims).
    fn advertised(&self, _handles: &Parts) -> BTreeSet<Claim> {
        BTreeSet::new()
    }
}

/// The blocks and suites a run knows.
#[derive(Clone)]
pub struct Catalogue {
    blocks: Vec<Arc<dyn BlockDriver>>,
    suites: Vec<Suite>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.blocks.iter().map(|b| b.block())).finish()
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Catalogue {
    /// Every block this build drives, with its suites: one line per block.
    pub fn builtin() -> Self {
        let blocks: Vec<Arc<dyn BlockDriver>> = vec![
            Arc::new(state::State),
            Arc::new(lock::Lock),
            Arc::new(pubsub::PubSub),
            Arc::new(secrets::Secrets),
            Arc::new(configuration::Configuration),
            Arc::new(bindings::Bindings),
            Arc::new(invocation::Invocation),
            Arc::new(observability::Observability),
            Arc::new(jobs::Jobs),
            Arc::new(actors::Actors),
            Arc::new(workflows::Workflows),
        ];
        Catalogue { blocks, suites: suites::suites() }
    }

    /// Adds a block's driver.
    pub fn add_block(&mut self, block: Arc<dyn BlockDriver>) {
        self.blocks.push(block);
    }

    /// Adds a suite.
    pub fn add_suite(&mut self, suite: Suite) {
        self.suites.push(suite);
    }

    /// The driver of the block `type_name` (e.g. `state.redis`) belongs to.
    pub fn block_of(&self, type_name: &str) -> Option<&Arc<dyn BlockDriver>> {
        self.blocks.iter().find(|b| b.block().owns(type_name))
    }

    /// The driver of `block`.
    pub fn driver(&self, block: Block) -> Option<&Arc<dyn BlockDriver>> {
        self.blocks.iter().find(|b| b.block() == block)
    }

    /// Every block.
    pub fn blocks(&self) -> &[Arc<dyn BlockDriver>] {
        &self.blocks
    }

    /// Every suite.
    pub fn suites(&self) -> &[Suite] {
        &self.suites
    }

    /// Every case of every suite.
    pub fn cases(&self) -> Vec<Case> {
        self.suites.iter().flat_map(|s| (s.cases)()).collect()
    }
}

/// The handles of one client, or why it could not connect.
fn one<T: ?Sized + Send + Sync + 'static, E>(client: Result<Arc<T>, E>) -> Result<Parts, E> {
    client.map(|c| Parts::default().with(c))
}

/// The handles of a pluggable client once `init` answers, saying which features it lists that
/// certify does not know.
async fn pluggable_part<C, T: ?Sized + Send + Sync + 'static>(
    instance: &str,
    init: impl std::future::Future<Output = contract::Result<C>>,
    unknown: impl FnOnce(&C) -> &[String],
    part: impl FnOnce(C) -> Arc<T>,
) -> Result<Parts, String> {
    let client = init.await.map_err(|e| e.to_string())?;
    let unknown = unknown(&client);
    if !unknown.is_empty() {
        tracing::warn!(%instance, features = ?unknown, "the component lists features certify does not know");
    }
    Ok(Parts::default().with(part(client)))
}
