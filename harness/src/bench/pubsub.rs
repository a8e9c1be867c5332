//! Publish to delivery: the end-to-end latency of a message through a broker to its
//! subscriber.

use std::sync::Arc;
use std::time::Duration;

use super::BenchProfile;
use super::load::{Measured, drive};

/// Publishes message `i` and waits for the subscriber to see it: the end-to-end latency.
/// Publish-to-delivery on `topic` in a consumer group of its own, or, over HTTP (where topics
/// come from `topics`, as the sidecar was told them), on a leased topic with the app as the
/// subscriber.
pub(super) async fn measure_pubsub(
    broker: Arc<dyn contract::PubSub>,
    topics: Option<Arc<dyn suites::pubsub::TopicSource>>,
    profile: &BenchProfile,
    topic: &str,
) -> Result<Measured, String> {
    use contract::pubsub::{Handler, Message, Outcome, PublishRequest, SubscribeRequest};
    type Waiting = std::sync::Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Sender<()>>>;
    let waiting: Arc<Waiting> = Arc::new(Default::default());
    let w = Arc::clone(&waiting);
    let handler: Handler = Arc::new(move |m: Message| {
        let id = String::from_utf8_lossy(&m.data).split(':').next().unwrap_or_default().to_owned();
        if let Some(tx) = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id) {
            let _ = tx.send(());
        }
        Box::pin(async { Outcome::Success })
    });
    let (request, _lease) = match topics {
        Some(source) => {
            let set = source.lease(topic).await?;
            (SubscribeRequest::new(set.main.clone()), Some(set))
        }
        None => (SubscribeRequest::new(topic).in_group(format!("{topic}-bench")), None),
    };
    let topic = request.topic.clone();
    let subscription = broker.subscribe(request, handler).await.map_err(|e| e.to_string())?;
    let padding = "x".repeat(profile.payload_bytes);
    let measured = drive(profile.load, move |i| {
        let (broker, waiting, topic, padding) =
            (Arc::clone(&broker), Arc::clone(&waiting), topic.clone(), padding.clone());
        async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(i.to_string(), tx);
            broker.publish(PublishRequest::new(topic, format!("{i}:{padding}"))).await.map_err(|e| e.to_string())?;
            tokio::time::timeout(Duration::from_secs(10), rx)
                .await
                .map_err(|_| format!("message {i} not delivered within 10 s"))?
                .map_err(|e| e.to_string())
        }
    })
    .await;
    subscription.close();
    Ok(measured)
}
