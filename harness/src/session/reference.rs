//! The sidecar drivers of a spec (`http`, `grpc`): a reference runtime on loopback serving the
//! components' own instances over both APIs, with certify as its app (for deliveries,
//! configuration updates and input binding events), and each component's handles as clients
//! of the API its driver names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use contract::Component;
use reference_runtime::sidecar::{Sidecar, SidecarConfig};
use suites::http_api::SidecarHttp;

use super::SetupError;
use super::in_process::Built;
use crate::app::App;
use crate::blocks::{Catalogue, GrpcLink, HttpLink};
use crate::driver::DriverKind;
use crate::grpc::GrpcSidecar;
use crate::http::SidecarClient;
use crate::server_runtime::ServerRuntime;
use crate::spec::Spec;

/// The reference runtime serving the sidecar drivers, on a runtime of its own.
pub(super) struct Reference {
    pub sidecar: Arc<Sidecar>,
    /// Ends once the APIs stopped and the deliveries in flight were waited for.
    pub serving: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Declared last: dropped once the sidecar was asked to stop.
    pub runtime: ServerRuntime,
}

/// Starts the reference runtime for the spec's components that name a sidecar driver, and
/// gives each its handles through it; `None` when none names one.
pub(super) async fn start(
    spec: &Spec,
    catalogue: &Catalogue,
    built: &mut Built,
) -> Result<Option<Reference>, SetupError> {
    // The build made the sidecar's runtime (and the instances it serves on it) only if some
    // component names a sidecar driver.
    let Some(runtime) = built.sidecar_runtime.take() else { return Ok(None) };
    let entries: Vec<_> = spec
        .entries
        .iter()
        .filter(|e| !built.blocked.contains_key(&e.manifest.name))
        .filter_map(|e| Some((e, catalogue.block_of(&e.manifest.type_name)?)))
        .filter(|(e, _)| e.drivers.iter().any(|d| d.through_sidecar()))
        .collect();
    // What the app serves must be declared before the sidecar reads it.
    let app = App::new();
    let served: BTreeMap<String, Component> =
        built.served.by_name.iter().map(|(name, c)| (name.clone(), c.component.clone())).collect();
    let mut needs_app = false;
    for (entry, block) in &entries {
        needs_app |= block.declare(&app, &entry.manifest.name, served.get(&entry.manifest.name));
    }
    let app_port = match needs_app {
        false => None,
        true => Some(app.serve().await.map_err(SetupError::Sidecar)?.port()),
    };
    let config = SidecarConfig { app_id: "certify".into(), app_port, ..SidecarConfig::default() };
    let sidecar = Sidecar::new(config, std::mem::take(&mut built.served), Vec::new());
    let (url, grpc_url, metrics, serving) =
        runtime.spawn(serve(Arc::clone(&sidecar))).await.map_err(|e| SetupError::Sidecar(e.into()))??;
    let reference = Reference { sidecar, serving, runtime };
    if app_port.is_some() {
        wait_for_app_subscriptions(&url).await?;
    }
    let link = HttpLink { url: &url, token: None, app: &app, metrics: Some(&metrics) };
    let wire: Arc<dyn SidecarHttp> = Arc::new(SidecarClient::new(&url, None)?);
    let grpc = GrpcSidecar::connect(&grpc_url, None).await?;
    let grpc_link = GrpcLink { sidecar: &grpc, app: &app, app_delivers: false, metrics: Some(&metrics) };
    for (entry, block) in entries {
        let name = &entry.manifest.name;
        let own = served.get(name);
        for driver in entry.drivers.iter().copied().filter(|d| d.through_sidecar()) {
            let handles = match driver {
                DriverKind::Http => block.http(&link, name, own).await.map(|h| h.map(|h| h.with(Arc::clone(&wire)))),
                _ => block.dapr_grpc(&grpc_link, name, own).await,
            };
            if let Some(handles) = handles {
                built.handles.insert((name.clone(), driver), handles?);
            }
        }
    }
    Ok(Some(reference))
}

/// Binds and serves the sidecar's HTTP, gRPC and metrics endpoints on the runtime this runs
/// on; answers their URLs and the serving task.
async fn serve(
    sidecar: Arc<Sidecar>,
) -> Result<(String, String, String, tokio::task::JoinHandle<std::io::Result<()>>), SetupError> {
    let (url, grpc_url, serving) = Arc::clone(&sidecar).serve_both_on_loopback().await.map_err(SetupError::Sidecar)?;
    let metrics_listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(SetupError::Sidecar)?;
    let metrics = format!("http://{}/metrics", metrics_listener.local_addr().map_err(SetupError::Sidecar)?);
    sidecar.serve_metrics(metrics_listener);
    Ok((url, grpc_url, metrics, serving))
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
