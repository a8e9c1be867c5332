//! Configuration over gRPC (dapr-grpc-api.md §3.5): get; a subscription is a server stream
//! whose first message carries only its id, closing the stream unsubscribes, and
//! `UnsubscribeConfiguration` ends the stream.

use std::sync::Arc;

use contract::configuration::{
    ConfigurationItem, GetConfigurationRequest as Get, SubscribeConfigurationRequest as Subscribe,
};
use contract::{Block, Component, ConfigurationStore};
use runtime_api::common;
use runtime_api::runtime::*;
use tonic::{Code, Response, Status};

use super::status::rich;
use super::{Answer, Stream};
use crate::sidecar::{Sidecar, locked};

fn store(sc: &Sidecar, name: &str) -> Result<Arc<dyn ConfigurationStore>, Status> {
    if !sc.components.has_block(Block::CONFIGURATION) {
        let message = "configuration stores not configured";
        return Err(rich(Code::FailedPrecondition, "ERR_CONFIGURATION_STORE_NOT_CONFIGURED", message, &[]));
    }
    match sc.components.get(name, Block::CONFIGURATION).and_then(Component::as_configuration) {
        Some(store) => Ok(Arc::clone(store)),
        None => {
            let message = format!("configuration store {name} not found");
            Err(rich(Code::InvalidArgument, "ERR_CONFIGURATION_STORE_NOT_FOUND", message, &[]))
        }
    }
}

fn items(
    items: impl IntoIterator<Item = (String, ConfigurationItem)>,
) -> std::collections::HashMap<String, common::ConfigurationItem> {
    items
        .into_iter()
        .map(|(key, item)| {
            let item = common::ConfigurationItem {
                value: item.value,
                version: item.version,
                metadata: item.metadata.into_iter().collect(),
            };
            (key, item)
        })
        .collect()
}

pub(super) async fn get(sc: &Sidecar, r: GetConfigurationRequest) -> Answer<GetConfigurationResponse> {
    let s = store(sc, &r.store_name)?;
    let found = s.get(Get { keys: r.keys.clone(), metadata: r.metadata.into_iter().collect() }).await.map_err(|e| {
        let message = format!("failed to get {:?} from Configuration store {}: {e}", r.keys, r.store_name);
        rich(Code::Internal, "ERR_CONFIGURATION_GET", message, &[])
    })?;
    Ok(Response::new(GetConfigurationResponse { items: items(found) }))
}

pub(super) async fn subscribe(
    sc: &Arc<Sidecar>,
    r: SubscribeConfigurationRequest,
) -> Answer<Stream<SubscribeConfigurationResponse>> {
    let s = store(sc, &r.store_name)?;
    let mut subscription =
        s.subscribe(Subscribe { keys: r.keys, metadata: r.metadata.into_iter().collect() }).await.map_err(|e| {
            let message = format!("failed to subscribe to Configuration store {}: {e}", r.store_name);
            rich(Code::Internal, "ERR_CONFIGURATION_SUBSCRIBE", message, &[])
        })?;
    let id = subscription.id.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let first = SubscribeConfigurationResponse { id: id.clone(), items: Default::default() };
    // The channel has room: the id-only message goes first.
    let _ = tx.try_send(Ok(first));
    let (store_name, task_id) = (r.store_name.clone(), id.clone());
    let task = tokio::spawn(async move {
        while let Some(update) = subscription.updates.recv().await {
            let message = SubscribeConfigurationResponse { id: task_id.clone(), items: items(update.items) };
            if tx.send(Ok(message)).await.is_err() {
                break;
            }
        }
        // The client went away (or the store ended it): nothing more to watch.
        if let Err(e) = s.unsubscribe(&task_id).await {
            tracing::debug!(store = %store_name, id = %task_id, error = %e, "unsubscribe after the stream closed");
        }
    });
    locked(&sc.config_subscriptions).insert((r.store_name, id), task);
    // The stream ends when the sidecar stops, so shutdown does not wait on the client.
    let stream = futures::StreamExt::take_until(tokio_stream::wrappers::ReceiverStream::new(rx), sc.stopped());
    Ok(Response::new(Box::pin(stream)))
}

pub(super) async fn unsubscribe(
    sc: &Sidecar,
    r: UnsubscribeConfigurationRequest,
) -> Answer<UnsubscribeConfigurationResponse> {
    let s = store(sc, &r.store_name)?;
    let answer = match s.unsubscribe(&r.id).await {
        Ok(()) => UnsubscribeConfigurationResponse { ok: true, message: String::new() },
        Err(e) => UnsubscribeConfigurationResponse {
            ok: false,
            message: format!("failed to unsubscribe to configuration request {}: {e}", r.id),
        },
    };
    if let Some(task) = locked(&sc.config_subscriptions).remove(&(r.store_name, r.id)) {
        task.abort();
    }
    Ok(Response::new(answer))
}
