//! Serving contract components as one pluggable component: any of the state, pub/sub,
//! bindings and secret-store services on one socket (multiplexed, as daprd allows), with
//! gRPC reflection listing exactly the services served.

use std::future::Future;
use std::path::Path;

use crate::bindings::BindingService;
use crate::proto::components as pb;
use crate::pubsub::PubSubService;
use crate::secrets::SecretService;
use crate::services;
use crate::state::StateService;

/// The services one socket serves.
#[derive(Clone, Default)]
pub struct Services {
    /// The state store (with its transactional, queriable and multi-max-size services).
    pub state: Option<StateService>,
    /// Pub/sub.
    pub pubsub: Option<PubSubService>,
    /// Input and output bindings.
    pub bindings: Option<BindingService>,
    /// The secret store.
    pub secrets: Option<SecretService>,
}

impl Services {
    /// The names reflection lists.
    fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.state.is_some() {
            names.extend([
                services::STATE,
                "dapr.proto.components.v1.TransactionalStateStore",
                "dapr.proto.components.v1.QueriableStateStore",
                "dapr.proto.components.v1.TransactionalStoreMultiMaxSize",
            ]);
        }
        if self.pubsub.is_some() {
            names.push(services::PUBSUB);
        }
        if let Some(bindings) = &self.bindings {
            if bindings.has_input() {
                names.push(services::INPUT_BINDING);
            }
            names.push(services::OUTPUT_BINDING);
        }
        if self.secrets.is_some() {
            names.push(services::SECRET_STORE);
        }
        names
    }
}

/// Serves `services` (and reflection) on `socket` until `shutdown` resolves.
pub async fn serve(
    socket: &Path,
    services: Services,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let incoming = crate::socket::bind(socket)?;
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(crate::socket::reflection(&services.names())?);
    if let Some(state) = services.state {
        routes.add_service(pb::state_store_server::StateStoreServer::new(state.clone()));
        routes.add_service(pb::transactional_state_store_server::TransactionalStateStoreServer::new(state.clone()));
        routes.add_service(pb::queriable_state_store_server::QueriableStateStoreServer::new(state.clone()));
        routes.add_service(pb::transactional_store_multi_max_size_server::TransactionalStoreMultiMaxSizeServer::new(
            state,
        ));
    }
    if let Some(pubsub) = services.pubsub {
        routes.add_service(pb::pub_sub_server::PubSubServer::new(pubsub));
    }
    if let Some(bindings) = services.bindings {
        if bindings.has_input() {
            routes.add_service(pb::input_binding_server::InputBindingServer::new(bindings.clone()));
        }
        routes.add_service(pb::output_binding_server::OutputBindingServer::new(bindings));
    }
    if let Some(secrets) = services.secrets {
        routes.add_service(pb::secret_store_server::SecretStoreServer::new(secrets));
    }
    tonic::transport::Server::builder()
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
