//! The pub/sub suite: every P-rule of Dapr's suite, and what it leaves out. Redelivery is
//! required (with the attempt count visible), DROP and 404 are not redelivered, a dead-letter
//! topic receives what used up its attempts, per-key order is actually checked, and consumer
//! groups compete within and fan out across. Duplicates that at-least-once allows are counted
//! and reported, never hidden.

mod delivery;
mod envelope;
mod groups;
mod inbox;

use std::sync::Arc;
use std::time::Duration;

use contract::pubsub::{Handler, SubscribeRequest, Subscription};
use contract::{Block, Parts, PubSub};
use futures::future::BoxFuture;

use crate::case;
use crate::case::{Case, Claim, Ctx, DriverCapability, Finding, Reach, Requirement};
use crate::suite::Suite;

pub use inbox::{
    Delivery, HANDLER_ERROR, Inbox, NOT_FOUND, NamespacedTopics, Policy, TopicSet, TopicSource, always_succeed,
};
pub(crate) use inbox::{published, settle};

pub(crate) const BLOCK: Block = Block::PUBSUB;
/// The broker every pub/sub case publishes to and subscribes through.
pub const BROKER: Reach = Reach::of::<dyn PubSub>("broker");
/// The trial's topics, leased when it starts.
pub const TOPICS: Reach = Reach::of::<TopicSet>("topics");

/// Deliveries reach an app whose request headers (HTTP) or metadata (gRPC) the case sees.
#[derive(Debug)]
pub struct AppDeliveries;
/// Deliveries through an app, where trace context travels beside the event (O6).
pub const APP_DELIVERIES: Reach = Reach::of::<AppDeliveries>("deliveries through an app")
    .hinted("deliveries here have no headers (in-process, or a gRPC streaming subscription)")
    .inherent();

/// The pub/sub suite.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[BROKER], cases, prepare: Some(lease_topics) };

impl Ctx {
    /// The broker, through the driver.
    pub fn pubsub(&self) -> Result<&Arc<dyn PubSub>, Finding> {
        self.reach(BROKER)
    }

    /// The topics this trial may use.
    pub fn topics(&self) -> Result<&TopicSet, Finding> {
        self.reach::<TopicSet>(TOPICS).map(|t| &**t)
    }
}

/// Leases the trial's topics from the driver's source (named after the trial when the driver
/// has none; leased from a pool over HTTP, where a sidecar reads subscriptions once). The wait
/// for a free lease counts against the case's timeout.
pub(crate) fn lease_topics(handles: Parts, namespace: String) -> BoxFuture<'static, Result<Parts, Finding>> {
    Box::pin(async move {
        let source: Arc<dyn TopicSource> =
            handles.get::<dyn TopicSource>().cloned().unwrap_or_else(|| Arc::new(NamespacedTopics));
        let topics = source.lease(&namespace).await.map_err(Finding::Fail)?;
        Ok(Parts::default().with(Arc::new(topics)))
    })
}

const GROUPS: Requirement = Requirement::Driver(DriverCapability::ConsumerGroups);
const UNSUBSCRIBE: Requirement = Requirement::Driver(DriverCapability::Unsubscribe);
const CLOUDEVENTS: Requirement = Requirement::Driver(DriverCapability::CloudEvents);
const STATUS_CODES: Requirement = Requirement::Driver(DriverCapability::AppStatusCodes);

/// Every pub/sub case.
fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "pubsub.features.claims-advertised",
            "certify",
            "A broker claiming `ttl` MUST advertise MESSAGE_TTL and one claiming `bulkpublish` BULK_PUBSUB: daprd hands a broker the TTL, and bulk publishes whole, only when it advertises them.",
            [],
            ["features"],
            10,
            claims_advertised
        ),
        case!(
            BLOCK,
            "pubsub.basic.ping",
            "P2",
            "Ping, and a publish after it, MUST succeed against a reachable broker.",
            [],
            [],
            15,
            delivery::ping
        ),
        case!(
            BLOCK,
            "pubsub.delivery.all-delivered",
            "P3,P4,P6",
            "Every message published to a subscribed topic MUST reach the subscriber.",
            [],
            [],
            90,
            delivery::all_delivered
        ),
        case!(
            BLOCK,
            "pubsub.redelivery.retry-redelivered",
            "certify",
            "A message the handler answers RETRY for MUST be delivered again, with the same id.",
            [],
            ["redelivery"],
            90,
            delivery::retry_redelivered
        ),
        case!(
            BLOCK,
            "pubsub.redelivery.attempts-grow",
            "certify",
            "Each redelivery of a message MUST carry a higher attempt count than the one before, starting at 1.",
            [Requirement::Driver(DriverCapability::DeliveryAttempts)],
            ["redelivery"],
            90,
            delivery::attempts_grow
        ),
        case!(
            BLOCK,
            "pubsub.redelivery.error-redelivered",
            "P5",
            "A message whose handler fails MUST be delivered again (Dapr's suite only allows it).",
            [],
            ["redelivery"],
            90,
            delivery::error_redelivered
        ),
        case!(
            BLOCK,
            "pubsub.redelivery.drop-not-redelivered",
            "certify",
            "A message the handler answers DROP for MUST NOT be delivered again.",
            [],
            ["redelivery"],
            90,
            delivery::drop_not_redelivered
        ),
        case!(
            BLOCK,
            "pubsub.redelivery.not-found-not-redelivered",
            "certify",
            "A message the app answers 404 for MUST NOT be delivered again.",
            [STATUS_CODES],
            ["redelivery"],
            90,
            delivery::not_found_not_redelivered
        ),
        case!(
            BLOCK,
            "pubsub.redelivery.dead-letter-after-max-attempts",
            "certify",
            "A message retried until its attempts are used up MUST go to the dead-letter topic, after exactly the configured attempts.",
            [Requirement::Driver(DriverCapability::DeadLetterTopics)],
            ["redelivery"],
            120,
            delivery::dead_letter
        ),
        case!(
            BLOCK,
            "pubsub.ordering.per-partition-key",
            "P7",
            "Messages with one partition key MUST be handled in publish order, a retried one before any later one.",
            [Requirement::Claimed(Claim::Ordering)],
            ["ordering"],
            120,
            groups::per_key_order
        ),
        case!(
            BLOCK,
            "pubsub.groups.competing-consumers",
            "certify",
            "Within one consumer group, each message MUST be handled once, by one subscriber, none lost (at-least-once allows a duplicate after a failed delivery; this case fails none).",
            [GROUPS],
            ["groups"],
            90,
            groups::competing_consumers
        ),
        case!(
            BLOCK,
            "pubsub.groups.kept-for-next-subscriber",
            "certify",
            "A consumer group MUST keep a message its subscriber left without acknowledging, and the messages published while it has no subscriber, and deliver them to its next subscriber.",
            [GROUPS, UNSUBSCRIBE, Requirement::Claimed(Claim::DurableGroups)],
            ["groups"],
            90,
            groups::kept_for_next_subscriber
        ),
        case!(
            BLOCK,
            "pubsub.groups.fan-out",
            "certify",
            "Every consumer group MUST receive every message.",
            [GROUPS],
            ["groups"],
            90,
            groups::fan_out
        ),
        case!(
            BLOCK,
            "pubsub.topics.isolated",
            "P11",
            "Each subscriber MUST receive exactly the messages of its own topic.",
            [],
            [],
            90,
            groups::topics_isolated
        ),
        case!(
            BLOCK,
            "pubsub.subscription.unsubscribe-stops-delivery",
            "P12",
            "A closed subscription MUST receive nothing more, and other subscriptions MUST go on.",
            [UNSUBSCRIBE],
            [],
            90,
            groups::unsubscribe_stops
        ),
        case!(
            BLOCK,
            "pubsub.payload.binary-byte-exact",
            "certify",
            "A binary payload MUST arrive byte-exact.",
            [],
            [],
            60,
            envelope::binary_byte_exact
        ),
        case!(
            BLOCK,
            "pubsub.payload.one-mebibyte",
            "certify",
            "A 1 MiB message MUST arrive byte-exact.",
            [],
            ["large"],
            90,
            envelope::one_mebibyte
        ),
        case!(
            BLOCK,
            "pubsub.payload.metadata-and-content-type",
            "certify",
            "Publish metadata and the content type MUST reach the subscriber.",
            [Requirement::Driver(DriverCapability::DeliveryMetadata)],
            [],
            60,
            envelope::metadata_and_content_type
        ),
        case!(
            BLOCK,
            "pubsub.cloudevent.envelope",
            "certify",
            "A delivery MUST be a CloudEvent 1.0 with id, source, type, datacontenttype, topic, pubsubname and the publisher's trace id.",
            [CLOUDEVENTS],
            ["cloudevents"],
            60,
            envelope::cloudevent_envelope
        ),
        case!(
            BLOCK,
            "pubsub.trace.delivered",
            "O6",
            "A delivery to the app MUST carry the publisher's trace context beside the event: `traceparent` (gRPC: `grpc-trace-bin`) with its trace id, and its `tracestate`.",
            [CLOUDEVENTS, Requirement::Reach(APP_DELIVERIES)],
            ["cloudevents", "observability"],
            60,
            envelope::trace_delivered
        ),
        case!(
            BLOCK,
            "pubsub.cloudevent.raw-payload",
            "certify",
            "With rawPayload the published bytes MUST reach a rawPayload subscriber byte-exact, never wrapped at publish.",
            [CLOUDEVENTS],
            ["cloudevents"],
            60,
            envelope::raw_payload
        ),
        case!(
            BLOCK,
            "pubsub.bulk.publish-delivered",
            "P10",
            "Every entry of a bulk publish MUST be delivered to a regular subscriber, with no entry failed.",
            [Requirement::Claimed(Claim::BulkPublish)],
            ["bulk"],
            90,
            envelope::bulk_publish
        ),
        case!(
            BLOCK,
            "pubsub.bulk.publish-per-entry-failure",
            "certify",
            "A bulk publish MUST report a malformed entry as failed, by its id, and still publish the others.",
            [Requirement::Claimed(Claim::BulkPublish), Requirement::Driver(DriverCapability::KeyedBulkErrors)],
            ["bulk"],
            90,
            envelope::bulk_publish_partial
        ),
        case!(
            BLOCK,
            "pubsub.bulk.subscribe-batches",
            "P8,P9",
            "A bulk subscriber MUST receive every message in batches no larger than maxMessagesCount (more than one when several wait), a lone message held for maxAwaitDurationMs, failed entries again.",
            [Requirement::Claimed(Claim::BulkSubscribe)],
            ["bulk"],
            90,
            envelope::bulk_subscribe
        ),
        case!(
            BLOCK,
            "pubsub.ttl.expired-not-delivered",
            "certify",
            "A message whose ttlInSeconds passed before delivery MUST NOT be delivered; one without a TTL still is.",
            [Requirement::Claimed(Claim::Ttl), UNSUBSCRIBE],
            ["ttl", "slow"],
            60,
            envelope::ttl_expired
        ),
        case!(
            BLOCK,
            "pubsub.ttl.expired-not-redelivered",
            "HTTP 2.1, 2.5",
            "A message whose ttlInSeconds passes while its subscriber holds it (and then answers RETRY) MUST NOT be delivered again.",
            [Requirement::Claimed(Claim::Ttl)],
            ["ttl", "slow"],
            60,
            envelope::ttl_not_redelivered
        ),
    ]
    .into_iter()
    .chain(crate::http_api::pubsub::cases())
    .collect()
}

/// How long deliveries may take.
pub(crate) fn patience(ctx: &Ctx) -> Duration {
    Duration::from_secs(ctx.settings.delivery_timeout_seconds.max(1))
}

/// Subscribes `handler` to `topic` (with the trial's dead-letter topic when it is `main`).
pub(crate) async fn subscribe(
    ctx: &Ctx,
    topic: &str,
    group: Option<&str>,
    handler: Handler,
) -> Result<Subscription, Finding> {
    let mut request = SubscribeRequest::new(topic);
    if topic == ctx.topics()?.main {
        request.dead_letter_topic = Some(ctx.topics()?.dead_letter.clone());
    }
    if let Some(group) = group {
        request = request.in_group(group);
    }
    ctx.pubsub()?
        .subscribe(request, handler)
        .await
        .map_err(|e| Finding::Fail(format!("subscribing to `{topic}` failed: {e}")))
}

/// The numbers in `expected` that `handled` lacks, for a failure message.
pub(crate) fn missing(
    expected: impl IntoIterator<Item = u64>,
    handled: &std::collections::BTreeMap<u64, u32>,
) -> Vec<u64> {
    expected.into_iter().filter(|n| !handled.contains_key(n)).collect()
}

async fn claims_advertised(ctx: Ctx) -> crate::CaseResult {
    use contract::PubSubFeature;
    let advertised = ctx.pubsub()?.features();
    let missing: Vec<String> =
        [(Claim::Ttl, PubSubFeature::MessageTtl), (Claim::BulkPublish, PubSubFeature::BulkPublish)]
            .into_iter()
            .filter(|(claim, feature)| ctx.claims.contains(claim) && !advertised.contains(feature))
            .map(|(claim, feature)| format!("`{claim}` without {}", feature.as_str()))
            .collect();
    ctx.evidence.set(serde_json::json!({"advertised": advertised.iter().map(|f| f.as_str()).collect::<Vec<_>>()}));
    crate::ensure!(missing.is_empty(), "claimed but not advertised: {}", missing.join(", "));
    Ok(())
}
