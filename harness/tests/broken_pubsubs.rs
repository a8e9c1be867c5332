//! Deliberately broken brokers in the test tree: one acknowledges before the handler returns,
//! one drops a message its handler asked to retry, one reorders messages within a partition
//! key, one hands every member of a consumer group every message. The harness must report the cases of those rules failed, through both drivers (the
//! HTTP one with certify as the sidecar's app), with reasons that name what went wrong.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::pubsub::{Handler, Message, Outcome, PARTITION_KEY, PublishRequest, SubscribeRequest, Subscription};
use contract::{Component, ComponentContext, FeatureSet, PubSub, PubSubFeature, Registry, Result};
use futures::FutureExt;
use harness::Filter;
use reference_runtime::in_memory::pubsub_memory::{DeliveryConfig, InMemoryPubSub};
use reports::Verdict;

mod common;

#[derive(Clone, Copy)]
enum Defect {
    /// Acknowledges each message as soon as it is handed over; the handler's answer is lost.
    AcksBeforeHandler,
    /// Treats RETRY (and handler errors) as done: the message is never seen again.
    DropsAfterRetry,
    /// Ignores partition keys, so messages of one key overtake each other.
    ReordersWithinKey,
    /// Puts every subscription in a group of its own, so a group's members each get everything.
    IgnoresGroups,
}

struct Broken {
    inner: InMemoryPubSub,
    defect: Defect,
}

#[async_trait]
impl PubSub for Broken {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        self.inner.features()
    }

    async fn publish(&self, mut request: PublishRequest) -> Result<()> {
        if let Defect::ReordersWithinKey = self.defect {
            request.metadata.remove(PARTITION_KEY);
        }
        self.inner.publish(request).await
    }

    async fn subscribe(&self, mut request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        let defect = self.defect;
        if let Defect::IgnoresGroups = defect {
            request.metadata.insert(contract::pubsub::CONSUMER_ID.into(), uuid::Uuid::new_v4().to_string());
        }
        let wrapped: Handler = Arc::new(move |message: Message| {
            let handler = Arc::clone(&handler);
            async move {
                match defect {
                    Defect::AcksBeforeHandler => {
                        tokio::spawn(handler(message));
                        Outcome::Success
                    }
                    Defect::DropsAfterRetry => match handler(message).await {
                        Outcome::Retry(_) => Outcome::Success,
                        other => other,
                    },
                    Defect::ReordersWithinKey | Defect::IgnoresGroups => handler(message).await,
                }
            }
            .boxed()
        });
        self.inner.subscribe(request, wrapped).await
    }
}

fn registry() -> Registry {
    let mut registry = reference_runtime::builtin_registry();
    for (type_name, defect) in [
        ("pubsub.broken-early-ack", Defect::AcksBeforeHandler),
        ("pubsub.broken-drops-retry", Defect::DropsAfterRetry),
        ("pubsub.broken-reorders", Defect::ReordersWithinKey),
        ("pubsub.broken-groups", Defect::IgnoresGroups),
    ] {
        registry.register(type_name, move |ctx: ComponentContext| async move {
            let config =
                DeliveryConfig { max_attempts: 3, backoff: Duration::from_millis(20), ..DeliveryConfig::default() };
            Ok(Component::pubsub(Arc::new(Broken { inner: InMemoryPubSub::new(config, ctx.clock), defect })))
        });
    }
    registry
}

const SPEC: &str = r#"
components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: early-ack}, spec: {type: pubsub.broken-early-ack, version: v1}}
    claims: [ordering]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: drops-retry}, spec: {type: pubsub.broken-drops-retry, version: v1}}
    claims: [ordering]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: reorders}, spec: {type: pubsub.broken-reorders, version: v1}}
    claims: [ordering]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: no-groups}, spec: {type: pubsub.broken-groups, version: v1}}
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
    drivers: [in-process]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_brokers_are_caught_through_both_drivers() {
    let patterns = ["redelivery", "ordering", "all-delivered", "groups"].map(String::from).to_vec();
    let report = common::certify(&registry(), SPEC, &Filter { patterns, ..Filter::default() }).await;
    let verdict = |trial: &str| common::record(&report, trial).verdict;
    for prefix in ["", "@http"] {
        let t = |component: &str, case: &str| format!("{component}{prefix}::{case}");
        for broken in ["early-ack", "drops-retry"] {
            common::expect_fail(&report, &t(broken, "pubsub.redelivery.retry-redelivered"), "never delivered again");
            common::expect_fail(&report, &t(broken, "pubsub.redelivery.error-redelivered"), "never delivered again");
            common::expect_fail(
                &report,
                &t(broken, "pubsub.redelivery.dead-letter-after-max-attempts"),
                "never reached the dead-letter topic",
            );
            // What they do not break still passes.
            assert_eq!(verdict(&t(broken, "pubsub.delivery.all-delivered")), Verdict::Pass);
        }
        common::expect_fail(
            &report,
            &t("reorders", "pubsub.ordering.per-partition-key"),
            "was delivered before message",
        );
        assert_eq!(verdict(&t("reorders", "pubsub.redelivery.retry-redelivered")), Verdict::Pass);
    }
    common::expect_fail(&report, "no-groups::pubsub.groups.competing-consumers", "fans out instead of competing");
    assert_eq!(verdict("no-groups::pubsub.groups.fan-out"), Verdict::Pass);
    assert!(!report.summary.ok());
}
