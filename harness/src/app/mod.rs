//! The app certify plays for a sidecar: one module per block, mirroring the reference
//! runtime's `sidecar/*_routes.rs` — pub/sub deliveries (`pubsub`), configuration updates
//! (`configuration`), input binding events (`bindings`), service invocation's echo
//! (`invocation`). Each keeps its own state in the app, found by type. The app speaks HTTP, or
//! gRPC (`grpc`: `AppCallback` over the same state and routes).

mod actors;
mod bindings;
mod configuration;
mod grpc;
mod invocation;
mod jobs;
mod pubsub;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use contract::Metadata;

pub use configuration::configuration_items;
pub use pubsub::{RegisterError, SLOTS, slot_topics};
pub(crate) use pubsub::{bulk_subscribe_through, subscribe_through};

/// The app: every block's routes, and each block's state, by type.
#[derive(Clone, Default)]
pub struct App {
    state: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
    /// Served as `AppCallback` rather than HTTP routes.
    over_grpc: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    /// An app with nothing declared yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once the app is served over gRPC (`AppCallback`).
    pub fn over_grpc(&self) -> bool {
        self.over_grpc.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A block's state in the app (created empty the first time it is asked for).
    pub(crate) fn part<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let part = state.entry(TypeId::of::<T>()).or_insert_with(|| Arc::new(T::default()));
        // The entry of `T` holds a `T`: it was made here.
        Arc::clone(part).downcast::<T>().unwrap_or_else(|_| Arc::new(T::default()))
    }

    /// The app's HTTP routes: every block's.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/dapr/config", get(|| async { axum::Json(suites::actors::ActorHost::config()) }))
            .merge(pubsub::routes())
            .merge(configuration::routes())
            .merge(invocation::routes())
            .merge(jobs::routes())
            .merge(actors::routes())
            // Last: its `/{binding}` route matches any single segment.
            .merge(bindings::routes())
            .with_state(self.clone())
    }

    /// Serves the app on a free loopback port; it stops when the runtime does.
    pub async fn serve(&self) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        self.serve_on(listener)
    }

    /// Serves the app on `listener`.
    pub fn serve_on(&self, listener: tokio::net::TcpListener) -> std::io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        let router = self.router();
        // TCP_NODELAY, or each delivery waits on the sidecar's delayed ACK.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(addr)
    }
}

pub(crate) fn header_metadata(headers: &HeaderMap) -> Metadata {
    headers
        .iter()
        .filter(|(k, _)| !TRANSPORT_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// Headers that are transport, not message metadata.
const TRANSPORT_HEADERS: &[&str] =
    &["content-type", "content-length", "host", "user-agent", "accept", "accept-encoding", "connection"];
