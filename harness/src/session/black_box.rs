//! A running sidecar, certified black-box: each named component reached through the sidecar's
//! HTTP API (or its gRPC API, for a `grpc://` address), with certify serving the app on the sidecar's app port where the sidecar delivers
//! (pub/sub, configuration updates, input bindings, invocation's echo). Claims default to what
//! the sidecar advertises.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use contract::{Parts, Registry, SystemClock};
use reports::ComponentRecord;
use suites::Claim;
use suites::http_api::SidecarHttp;

use super::reference::wait_for_app_subscriptions;
use super::{Session, SetupError, SidecarSource};
use crate::app::App;
use crate::blocks::{Catalogue, GrpcLink, HttpLink};
use crate::driver::DriverKind;
use crate::grpc::GrpcSidecar;
use crate::http::{ConnectError, SidecarClient};
use crate::plan::Target;
use reference_runtime::sidecar::AppProtocol;

/// Opens a session over the sidecar `source` names.
pub(super) async fn open(
    source: SidecarSource,
    registry: &Registry,
    catalogue: &Catalogue,
) -> Result<Session, SetupError> {
    // `grpc://HOST:PORT` is the Dapr gRPC API; anything else the HTTP API.
    let kind = if source.url.starts_with("grpc://") { DriverKind::Grpc } else { DriverKind::Http };
    let app = App::new();
    // With an app port, what the sidecar delivers comes to certify's app there; but over gRPC,
    // pub/sub takes streaming subscriptions unless the app is served as `AppCallback`.
    let app_delivers = match kind {
        DriverKind::Grpc => source.app_port.is_some() && source.app_protocol == AppProtocol::Grpc,
        _ => true,
    };
    let mut needs_app = false;
    for (block, name) in &source.components {
        let wanted = match *block {
            contract::Block::PUBSUB => app_delivers,
            _ => source.app_port.is_some(),
        };
        if let Some(driver) = catalogue.driver(*block)
            && wanted
        {
            needs_app |= driver.declare(&app, name, None);
        }
    }
    if needs_app {
        let port = source.app_port.unwrap_or(0);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| SetupError::AppPort { port, source })?;
        let served = match source.app_protocol {
            AppProtocol::Http => app.serve_on(listener),
            AppProtocol::Grpc => app.serve_grpc_on(listener),
        };
        served.map_err(|source| SetupError::AppPort { port, source })?;
    }
    let grpc = match kind {
        DriverKind::Grpc => Some(GrpcSidecar::connect(&source.url, source.token.clone()).await?),
        _ => None,
    };
    if needs_app && app.declares_pubsub() {
        // The sidecar reads the app's subscriptions once the app listens.
        match &grpc {
            Some(sidecar) => sidecar.wait_for_app_subscriptions().await?,
            None => wait_for_app_subscriptions(&source.url).await?,
        }
    }
    let metrics = source.metrics.as_deref();
    let link = HttpLink { url: &source.url, token: source.token.clone(), app: &app, metrics };
    let (mut targets, mut components) = (Vec::new(), Vec::new());
    for (block, name) in &source.components {
        let no_form = || no_driver(kind, *block, name);
        let driver = catalogue.driver(*block).ok_or_else(no_form)?;
        let name = match (name.is_empty(), &grpc) {
            // The app's own block (invocation): the component is the app, named by its id.
            (true, None) => app_id(&source).await?,
            (true, Some(sidecar)) => sidecar.metadata().await?.id,
            (false, _) => name.clone(),
        };
        let mut handles = match &grpc {
            Some(sidecar) => {
                let link = GrpcLink { sidecar, app: &app, app_delivers, metrics };
                driver.dapr_grpc(&link, &name, None).await.ok_or_else(|| no_driver(kind, *block, &name))??
            }
            None => {
                let handles = driver.http(&link, &name, None).await.ok_or_else(|| no_driver(kind, *block, &name))??;
                let wire: Arc<dyn SidecarHttp> = Arc::new(SidecarClient::new(&source.url, source.token.clone())?);
                handles.with(wire)
            }
        };
        if let Some(path) = source.behind.get(&name) {
            let local = build_behind(path, registry, *block).await?;
            if handles.fill(&local) == 0 {
                return Err(writer_error(path, "it gives certify nothing to work behind the sidecar with".into()));
            }
        }
        // `--features` lists the claims of every component given; each keeps its block's.
        let claims: BTreeSet<Claim> = match &source.claims {
            Some(given) => given.iter().copied().filter(|c| c.blocks().contains(block)).collect(),
            None => driver.advertised(&handles),
        };
        components.push(ComponentRecord {
            name: name.clone(),
            type_name: format!("{} (black-box)", block.prefix()),
            claims: claims.iter().map(|c| c.as_str().to_owned()).collect(),
            drivers: vec![kind.as_str().into()],
            metadata: Default::default(),
            claims_from: claims_from(source.claims.is_some()),
        });
        targets.push(Target {
            component: name,
            type_name: format!("{}.sidecar", block.prefix()),
            block: *block,
            driver: kind,
            claims,
            settings: Default::default(),
            blocked: None,
            handles,
        });
    }
    Ok(Session::black_box(source.url.clone(), targets, components, catalogue))
}

/// Where a black-box or pluggable component's claims came from, for the report.
pub(super) fn claims_from(given: bool) -> String {
    if given { "--features" } else { "advertised" }.into()
}

fn no_driver(kind: DriverKind, block: contract::Block, name: &str) -> SetupError {
    SetupError::Connect(ConnectError::NotASidecar {
        url: String::new(),
        reason: format!("certify has no {} driver for `{name}`'s block `{block}`", kind.as_str()),
    })
}

/// The sidecar's app id: the name of its app's own block.
async fn app_id(source: &SidecarSource) -> Result<String, SetupError> {
    let (_, metadata) = SidecarClient::metadata(&source.url, source.token.clone()).await?;
    match metadata["id"].as_str() {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(SetupError::Connect(ConnectError::NotASidecar {
            url: source.url.clone(),
            reason: "its metadata names no app id (`id`), so there is no app to invoke".into(),
        })),
    }
}

fn writer_error(path: &Path, message: String) -> SetupError {
    SetupError::Writer { path: path.display().to_string(), message }
}

/// Builds the one component of the Component YAML at `path`, of `block`, in this process.
async fn build_behind(path: &Path, registry: &Registry, block: contract::Block) -> Result<Parts, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|e| writer_error(path, format!("cannot read it: {e}")))?;
    let resources = contract::Resources::parse(path, &text)?;
    let [manifest] = resources.components.as_slice() else {
        let held = resources.components.len();
        return Err(writer_error(path, format!("it must hold exactly one Component, it holds {held}")));
    };
    if !block.owns(&manifest.type_name) {
        let what = format!("`{}` ({}) is not a {block} store certify can write to", manifest.name, manifest.type_name);
        return Err(writer_error(path, what));
    }
    let built = registry.build_all(std::slice::from_ref(manifest), Arc::new(SystemClock)).await?;
    let component = built.by_name.get(&manifest.name).map(|c| &c.component);
    component
        .map(|c| c.parts().clone())
        .ok_or_else(|| writer_error(path, format!("`{}` ({}) could not be built", manifest.name, manifest.type_name)))
}
