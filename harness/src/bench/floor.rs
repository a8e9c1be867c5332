//! The loopback floors: what any sidecar pays before it does anything, measured beside it.
//!
//! - HTTP: an empty axum handler on 127.0.0.1, called by the client the HTTP sidecar driver
//!   uses.
//! - gRPC: a `Dapr` service whose `GetState` answers an empty response at once, called by the
//!   gRPC driver's client (its channel, its request metadata).
//!
//! Each is served on a [`ServerRuntime`], as the reference sidecar is, so that a call crosses
//! threads exactly as a call to the sidecar does; the sidecar's added latency is read against
//! these, measured in alternating slices with the sidecar's state get where the run has one.

use std::future::IntoFuture;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::serve::ListenerExt;
use futures::FutureExt;
use futures::future::BoxFuture;
use runtime_api::runtime::dapr_server::{Dapr, DaprServer};
use runtime_api::runtime::{GetStateRequest, GetStateResponse};
use runtime_api::tonic;

use crate::driver::DriverKind;
use crate::grpc::GrpcSidecar;
use crate::http::SidecarClient;
use crate::server_runtime::ServerRuntime;

/// The HTTP floor's name in the report.
const HTTP: &str = "loopback HTTP echo (floor)";

/// The gRPC floor's name in the report.
const GRPC: &str = "loopback gRPC echo (floor)";

/// The name in the report of sidecar driver `driver`'s floor (gRPC's for any but HTTP).
pub(super) fn name_of(driver: DriverKind) -> &'static str {
    if driver == DriverKind::Http { HTTP } else { GRPC }
}

/// One call of a floor.
type Call = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A floor, serving until dropped, and a client of it.
pub(super) struct Floor {
    /// The sidecar driver it is the floor of.
    pub(super) driver: DriverKind,
    _servers: ServerRuntime,
    call: Call,
}

impl Floor {
    /// The floor of sidecar driver `driver` (HTTP or gRPC), serving on loopback.
    pub(super) async fn start(driver: DriverKind) -> Result<Floor, String> {
        let (servers, call) = match driver {
            DriverKind::Http => http_echo().await?,
            DriverKind::Grpc => grpc_echo().await?,
            other => return Err(format!("no loopback floor for the {} driver", other.as_str())),
        };
        Ok(Floor { driver, _servers: servers, call })
    }

    /// Its name in the report.
    pub(super) fn name(&self) -> &'static str {
        name_of(self.driver)
    }

    /// The operation it measures, in the report.
    pub(super) fn operation(&self) -> &'static str {
        if self.driver == DriverKind::Http { "http.get" } else { "grpc.GetState" }
    }

    /// The operation as the load generator takes it.
    pub(super) fn op(&self) -> impl Fn(u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static {
        let call = Arc::clone(&self.call);
        move |_| call()
    }
}

/// Serves the HTTP echo and answers a call of it through the HTTP driver's client.
async fn http_echo() -> Result<(ServerRuntime, Call), String> {
    let (servers, base) = on_own_runtime(serve_http_echo()).await?;
    let client = Arc::new(SidecarClient::new(&base, None).map_err(|e| e.to_string())?);
    let call: Call = Arc::new(move || {
        let client = Arc::clone(&client);
        async move {
            let answer = client.send(client.get("/echo")).await.map_err(|e| e.to_string())?;
            match answer.status().is_success() {
                true => Ok(()),
                false => Err(format!("the echo answered {}", answer.status())),
            }
        }
        .boxed()
    });
    Ok((servers, call))
}

/// Runs `serve` (a floor's bind-and-serve) on a [`ServerRuntime`] of its own; answers the
/// runtime, which serves until dropped, and the floor's URL.
async fn on_own_runtime(
    serve: impl std::future::Future<Output = Result<String, String>> + Send + 'static,
) -> Result<(ServerRuntime, String), String> {
    let servers = ServerRuntime::new("certify-floor").map_err(|e| e.to_string())?;
    let url = servers.spawn(serve).await.map_err(|e| e.to_string())??;
    Ok((servers, url))
}

/// Binds the HTTP echo and serves it in the background on the runtime this runs on.
async fn serve_http_echo() -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    // As the reference sidecar serves: TCP_NODELAY on every accepted connection.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let router = axum::Router::new().route("/echo", axum::routing::get(|| async { StatusCode::NO_CONTENT }));
    tokio::spawn(axum::serve(listener, router).into_future());
    Ok(base)
}

/// Answers `GetState` with nothing, at once; every other method is unimplemented.
struct GrpcEcho;

#[tonic::async_trait]
impl Dapr for GrpcEcho {
    async fn get_state(
        &self,
        _: tonic::Request<GetStateRequest>,
    ) -> Result<tonic::Response<GetStateResponse>, tonic::Status> {
        Ok(tonic::Response::new(GetStateResponse::default()))
    }
}

/// Serves the gRPC echo and answers a call of it through the gRPC driver's client.
async fn grpc_echo() -> Result<(ServerRuntime, Call), String> {
    let (servers, url) = on_own_runtime(serve_grpc_echo()).await?;
    // Not `GrpcSidecar::connect`: it reads the sidecar's metadata, which the echo has not.
    let sidecar = GrpcSidecar::dial(&url, None).await.map_err(|e| e.to_string())?;
    let call: Call = Arc::new(move || {
        let sidecar = sidecar.clone();
        async move {
            let request = sidecar.request(GetStateRequest { key: "k".into(), ..Default::default() });
            sidecar.client().get_state(request).await.map(drop).map_err(|s| format!("the echo answered {s}"))
        }
        .boxed()
    });
    Ok((servers, call))
}

/// Binds the gRPC echo and serves it in the background on the runtime this runs on.
async fn serve_grpc_echo() -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    // As the reference sidecar serves: TCP_NODELAY on every accepted connection.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder().add_service(DaprServer::new(GrpcEcho));
    tokio::spawn(server.serve_with_incoming(incoming));
    Ok(url)
}
