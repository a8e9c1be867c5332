//! Pub/sub over gRPC, both ways: [`PluggablePubSub`] drives a pluggable broker as daprd does
//! (one `PullMessages` stream per subscription, an ack per delivery, bulk delivery on
//! daprd's side), and [`PubSubService`] serves a contract broker as one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use contract::pubsub::{
    BulkHandler, BulkPublishRequest, BulkPublishResponse, BulkSubscribeConfig, FailedEntry, Handler, Message, Outcome,
    PublishRequest, SubscribeRequest, Subscription,
};
use contract::{Error, FeatureSet, PubSub, PubSubFeature, Result};
use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::conventions::{from_status, to_status};
use crate::instances::{Factory, Instances};
use crate::proto::components as pb;
use crate::{Answer, feature_names, features_of, metadata_request, with_instance};
use pb::pub_sub_client::PubSubClient;

/// How many deliveries may wait in a stream before the sender waits.
const STREAM_DEPTH: usize = 64;

/// A pluggable component's broker, reached over its socket.
#[derive(Debug, Clone)]
pub struct PluggablePubSub {
    channel: Channel,
    instance: String,
    features: FeatureSet<PubSubFeature>,
    /// Feature names the component listed that this build does not know.
    pub unknown_features: Vec<String>,
    /// daprd's side of dead-lettering: after this many failed deliveries of a message, it
    /// goes to the subscription's dead-letter topic and is acked. `None`: never (the gRPC
    /// driver certifies the component alone, and dead letters are not the component's).
    dead_letter_after: Option<u32>,
}

impl PluggablePubSub {
    /// The same broker, with dead-letter topics honoured on daprd's side after `attempts`
    /// failed deliveries (a sidecar's job, not the component's).
    pub fn dead_lettering_after(mut self, attempts: u32) -> Self {
        self.dead_letter_after = Some(attempts.max(1));
        self
    }

    /// Initialises instance `instance` with `properties` and reads its features, as daprd does.
    pub async fn init(channel: Channel, instance: &str, properties: BTreeMap<String, String>) -> Result<Self> {
        let mut client = PubSubClient::new(channel.clone());
        let init = pb::PubSubInitRequest { metadata: metadata_request(properties) };
        client.init(with_instance(instance, init)).await.map_err(|s| from_status("", s))?;
        let listed = client
            .features(with_instance(instance, pb::FeaturesRequest {}))
            .await
            .map_err(|s| from_status("", s))?
            .into_inner()
            .features;
        let (features, unknown_features) = features_of(listed);
        Ok(Self { channel, instance: instance.to_owned(), features, unknown_features, dead_letter_after: None })
    }

    fn client(&self) -> PubSubClient<Channel> {
        PubSubClient::new(self.channel.clone())
    }
}

/// A subscription's deliveries as daprd settles them.
struct Settle {
    broker: PluggablePubSub,
    dead_letter_topic: Option<String>,
}

impl Settle {
    /// The ack for `message`, which the handler answered `outcome` for. As daprd's: a dropped
    /// message is acked, so never delivered again; a failed one is acked with its error, so the
    /// component delivers it again, until (when dead-lettering) its attempts are used up and it
    /// goes to the dead-letter topic instead.
    async fn ack(&self, message: &Message, outcome: Outcome) -> Option<pb::AckMessageError> {
        let reason = match outcome {
            Outcome::Success | Outcome::Drop(_) => return None,
            Outcome::Retry(reason) => reason,
        };
        let failed = Some(pb::AckMessageError { message: reason.clone() });
        let (Some(after), Some(topic)) = (self.broker.dead_letter_after, self.dead_letter_topic.as_ref()) else {
            return failed;
        };
        if message.attempt < after {
            return failed;
        }
        let forward = PublishRequest {
            topic: topic.clone(),
            data: message.data.clone(),
            metadata: message.metadata.clone(),
            content_type: message.content_type.clone(),
        };
        match self.broker.publish(forward).await {
            Ok(()) => None,
            Err(e) => Some(pb::AckMessageError { message: format!("{reason}; forwarding to `{topic}` failed: {e}") }),
        }
    }
}

#[async_trait]
impl PubSub for PluggablePubSub {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        self.features.clone()
    }

    async fn ping(&self) -> Result<()> {
        let ping = with_instance(&self.instance, pb::PingRequest {});
        self.client().ping(ping).await.map(drop).map_err(|s| from_status("", s))
    }

    async fn publish(&self, request: PublishRequest) -> Result<()> {
        let message = pb::PublishRequest {
            data: request.data,
            pubsub_name: self.instance.clone(),
            topic: request.topic,
            metadata: request.metadata.into_iter().collect(),
            content_type: request.content_type.unwrap_or_default(),
        };
        self.client().publish(with_instance(&self.instance, message)).await.map(drop).map_err(|s| from_status("", s))
    }

    async fn bulk_publish(&self, request: BulkPublishRequest) -> Result<BulkPublishResponse> {
        let message = pb::BulkPublishRequest {
            entries: request
                .entries
                .into_iter()
                .map(|e| pb::BulkMessageEntry {
                    entry_id: e.entry_id,
                    event: e.event,
                    content_type: e.content_type.unwrap_or_default(),
                    metadata: e.metadata.into_iter().collect(),
                })
                .collect(),
            pubsub_name: self.instance.clone(),
            topic: request.topic,
            metadata: request.metadata.into_iter().collect(),
        };
        let answer = self
            .client()
            .bulk_publish(with_instance(&self.instance, message))
            .await
            .map_err(|s| from_status("", s))?
            .into_inner();
        let failed_entries =
            answer.failed_entries.into_iter().map(|f| FailedEntry { entry_id: f.entry_id, error: f.error }).collect();
        Ok(BulkPublishResponse { failed_entries })
    }

    async fn subscribe(&self, request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        let (acks, outgoing) = mpsc::channel(STREAM_DEPTH);
        let topic = pb::Topic { name: request.topic.clone(), metadata: request.metadata.into_iter().collect() };
        let first = pb::PullMessagesRequest { topic: Some(topic), ..Default::default() };
        acks.send(first).await.map_err(|_| Error::Backend("the pull stream closed before it opened".into()))?;
        // The call answers once the component has subscribed (it sends its headers then).
        let mut deliveries = self
            .client()
            .pull_messages(with_instance(&self.instance, ReceiverStream::new(outgoing)))
            .await
            .map_err(|s| from_status("", s))?
            .into_inner();
        let settle = Arc::new(Settle { broker: self.clone(), dead_letter_topic: request.dead_letter_topic });
        let topic = request.topic;
        let pulling = tokio::spawn(async move {
            // The protocol has no attempt count: daprd's side counts deliveries of each id.
            let mut attempts: HashMap<String, u32> = HashMap::new();
            loop {
                let delivery = match deliveries.message().await {
                    Ok(Some(d)) => d,
                    Ok(None) => break,
                    Err(status) => {
                        tracing::warn!(%topic, %status, "the pull stream ended with an error");
                        break;
                    }
                };
                let attempt = attempts.entry(delivery.id.clone()).or_insert(0);
                *attempt += 1;
                let message = Message {
                    id: delivery.id,
                    topic: delivery.topic_name,
                    data: delivery.data,
                    metadata: delivery.metadata.into_iter().collect(),
                    content_type: Some(delivery.content_type).filter(|c| !c.is_empty()),
                    attempt: *attempt,
                };
                let (handler, acks, settle) = (Arc::clone(&handler), acks.clone(), Arc::clone(&settle));
                tokio::spawn(async move {
                    let outcome = handler(message.clone()).await;
                    let ack_error = settle.ack(&message, outcome).await;
                    let ack = pb::PullMessagesRequest { topic: None, ack_message_id: message.id, ack_error };
                    // The stream is gone only when the subscription was closed.
                    let _ = acks.send(ack).await;
                });
            }
        });
        Ok(Subscription::new(format!("grpc:{}", request_id()), move || pulling.abort()))
    }

    async fn bulk_subscribe(
        &self,
        request: SubscribeRequest,
        config: BulkSubscribeConfig,
        handler: BulkHandler,
    ) -> Result<Subscription> {
        // daprd batches for components without bulk delivery of their own; the protocol has none.
        let single = contract::pubsub_batching::batching_handler(config, handler, contract::system_clock());
        self.subscribe(request, single).await
    }
}

fn request_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Builds a broker for an instance from its Component metadata.
pub type BrokerFactory = Factory<Arc<dyn PubSub>>;

/// Serves contract brokers as a pluggable pub/sub, one per instance.
#[derive(Clone)]
pub struct PubSubService {
    instances: Arc<Instances<Arc<dyn PubSub>>>,
}

impl PubSubService {
    /// A service building brokers with `make`.
    pub fn new(make: BrokerFactory) -> Self {
        Self { instances: Arc::new(Instances::new(make)) }
    }
}

/// Deliveries waiting for their acks, by message id (a redelivery may overtake an ack).
type Waiting = Arc<Mutex<HashMap<String, VecDeque<oneshot::Sender<Option<String>>>>>>;

type Deliveries = Pin<Box<dyn Stream<Item = std::result::Result<pb::PullMessagesResponse, Status>> + Send>>;

#[async_trait]
impl pb::pub_sub_server::PubSub for PubSubService {
    async fn init(&self, request: Request<pb::PubSubInitRequest>) -> Answer<pb::PubSubInitResponse> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata, false).await?;
        Ok(Response::new(pb::PubSubInitResponse {}))
    }

    async fn features(&self, request: Request<pb::FeaturesRequest>) -> Answer<pb::FeaturesResponse> {
        let broker = self.instances.get(&request)?;
        let features = feature_names(&broker.features());
        Ok(Response::new(pb::FeaturesResponse { features }))
    }

    async fn publish(&self, request: Request<pb::PublishRequest>) -> Answer<pb::PublishResponse> {
        let broker = self.instances.get(&request)?;
        let m = request.into_inner();
        let publish = PublishRequest {
            topic: m.topic,
            data: m.data,
            metadata: m.metadata.into_iter().collect(),
            content_type: Some(m.content_type).filter(|c| !c.is_empty()),
        };
        broker.publish(publish).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::PublishResponse {}))
    }

    async fn bulk_publish(&self, request: Request<pb::BulkPublishRequest>) -> Answer<pb::BulkPublishResponse> {
        let broker = self.instances.get(&request)?;
        let m = request.into_inner();
        let bulk = BulkPublishRequest {
            topic: m.topic,
            entries: m
                .entries
                .into_iter()
                .map(|e| contract::pubsub::BulkMessageEntry {
                    entry_id: e.entry_id,
                    event: e.event,
                    content_type: Some(e.content_type).filter(|c| !c.is_empty()),
                    metadata: e.metadata.into_iter().collect(),
                })
                .collect(),
            metadata: m.metadata.into_iter().collect(),
        };
        let answer = broker.bulk_publish(bulk).await.map_err(|e| to_status(&e))?;
        let failed_entries = answer
            .failed_entries
            .into_iter()
            .map(|f| pb::BulkPublishResponseFailedEntry { entry_id: f.entry_id, error: f.error })
            .collect();
        Ok(Response::new(pb::BulkPublishResponse { failed_entries }))
    }

    type PullMessagesStream = Deliveries;

    async fn pull_messages(
        &self,
        request: Request<Streaming<pb::PullMessagesRequest>>,
    ) -> Answer<Self::PullMessagesStream> {
        let broker = self.instances.get(&request)?;
        let mut acks = request.into_inner();
        let topic = match acks.message().await? {
            Some(pb::PullMessagesRequest { topic: Some(topic), .. }) => topic,
            Some(_) => return Err(Status::invalid_argument("the first message of PullMessages must name the topic")),
            None => return Err(Status::cancelled("the stream closed before naming a topic")),
        };
        let (sender, deliveries) = mpsc::channel(STREAM_DEPTH);
        let waiting: Waiting = Arc::default();
        let handler: Handler = {
            let waiting = Arc::clone(&waiting);
            Arc::new(move |message: Message| {
                let (sender, waiting) = (sender.clone(), Arc::clone(&waiting));
                Box::pin(async move {
                    let (acked, ack) = oneshot::channel();
                    waiting
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(message.id.clone())
                        .or_default()
                        .push_back(acked);
                    let delivery = pb::PullMessagesResponse {
                        data: message.data,
                        topic_name: message.topic,
                        metadata: message.metadata.into_iter().collect(),
                        content_type: message.content_type.unwrap_or_default(),
                        id: message.id,
                    };
                    if sender.send(Ok(delivery)).await.is_err() {
                        return Outcome::Retry("the subscriber's stream closed".into());
                    }
                    match ack.await {
                        Ok(None) => Outcome::Success,
                        Ok(Some(error)) => Outcome::Retry(error),
                        Err(_) => Outcome::Retry("the stream closed before the delivery was acked".into()),
                    }
                })
            })
        };
        let subscribe = SubscribeRequest {
            topic: topic.name,
            metadata: topic.metadata.into_iter().collect(),
            dead_letter_topic: None,
        };
        let subscription = broker.subscribe(subscribe, handler).await.map_err(|e| to_status(&e))?;
        tokio::spawn(async move {
            while let Ok(Some(ack)) = acks.message().await {
                let acked = waiting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_mut(&ack.ack_message_id)
                    .and_then(VecDeque::pop_front);
                match acked {
                    Some(acked) => {
                        let _ = acked.send(ack.ack_error.map(|e| e.message));
                    }
                    None => tracing::warn!(id = %ack.ack_message_id, "an ack for no delivery in flight"),
                }
            }
            // The subscriber left: stop delivering; deliveries in flight are retried.
            subscription.close();
            waiting.lock().unwrap_or_else(PoisonError::into_inner).clear();
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(deliveries))))
    }

    async fn pause(&self, _: Request<pb::PauseRequest>) -> Answer<pb::PauseResponse> {
        Err(Status::unimplemented("pause is not supported; close the stream instead"))
    }

    async fn resume(&self, _: Request<pb::ResumeRequest>) -> Answer<pb::ResumeResponse> {
        Err(Status::unimplemented("resume is not supported; open a new stream instead"))
    }

    async fn ping(&self, request: Request<pb::PingRequest>) -> Answer<pb::PingResponse> {
        self.instances.get(&request)?.ping().await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::PingResponse {}))
    }
}
