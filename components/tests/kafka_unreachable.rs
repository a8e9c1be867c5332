//! Kafka clients while the broker cannot be reached: subscribers and an input binding's reader
//! dropped while the broker is frozen (connections open, nothing answering) must not take the
//! process down or hang it, and once the broker answers again new subscriptions work. Runs
//! against a real broker (tansu by the process provider, or a container).

#![cfg(feature = "kafka")]

use std::sync::Arc;
use std::time::Duration;

use components::bindings_kafka::{KafkaBinding, KafkaBindingSettings};
use components::pubsub_kafka::{KafkaPubSub, KafkaSettings};
use contract::pubsub::{Handler, Outcome, PublishRequest, SubscribeRequest};
use contract::{InputBinding, Properties, PubSub};
use fixtures::{BackendError, BackendKind, Options, Provider};
use tokio::sync::mpsc;

fn properties(pairs: &[(&str, &str)]) -> Properties {
    Properties::new(pairs.iter().copied())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_dropped_while_the_broker_is_unreachable_leave_the_process_working() {
    let required = std::env::var("CERTIFY_REQUIRE_BACKENDS").is_ok_and(|v| v == "1");
    let options = Options { run_id: "kafka-unreachable".into(), ..Options::default() };
    let backend = match fixtures::provision(BackendKind::Kafka, Provider::Auto, &options).await {
        Ok(b) => b,
        Err(BackendError::Unavailable { reason, .. }) if !required => {
            fixtures::skip_test(&reason);
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let brokers = backend.endpoint.host.clone();
    let settings = KafkaSettings::from_properties(&properties(&[("brokers", &brokers)])).expect("settings");
    let broker = KafkaPubSub::connect(settings).await.expect("connect");
    let binding_settings = KafkaBindingSettings::from_properties(&properties(&[
        ("brokers", &brokers),
        ("topics", "unreachable-binding"),
        ("consumerGroup", "unreachable-binding"),
    ]))
    .expect("binding settings");
    let binding = KafkaBinding::connect(binding_settings).await.expect("binding");
    let ignore: Handler = Arc::new(|_| Box::pin(async { Outcome::Success }));
    let mut subscriptions = Vec::new();
    for n in 0..6 {
        let request = SubscribeRequest::new(format!("unreachable-{n}"));
        subscriptions.push(broker.subscribe(request, Arc::clone(&ignore)).await.expect("subscribe"));
    }
    let reader = binding.read(Arc::new(|_| Box::pin(async { Ok(Vec::new()) }))).await.expect("read");
    // Let the consumers join their groups and start fetching.
    tokio::time::sleep(Duration::from_secs(2)).await;

    backend.pause().await.expect("freeze the broker");
    drop(subscriptions);
    drop(reader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    backend.resume().await.expect("thaw the broker");

    // The process is alive; a new subscription on a fresh topic gets what is published.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler: Handler = Arc::new(move |message| {
        let _ = tx.send(message.data);
        Box::pin(async { Outcome::Success })
    });
    let _fresh = broker.subscribe(SubscribeRequest::new("unreachable-after"), handler).await.expect("subscribe after");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        // The consumer may still be joining: publish until one arrives.
        broker.publish(PublishRequest::new("unreachable-after", b"after".to_vec())).await.expect("publish after");
        match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            Ok(Some(data)) => {
                assert_eq!(data, b"after");
                break;
            }
            _ => assert!(tokio::time::Instant::now() < deadline, "nothing delivered within 60 s after the thaw"),
        }
    }
}
