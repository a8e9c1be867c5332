//! Criterion benchmarks of the in-memory components' hot paths: state get and set, and
//! publish-to-delivery through the pub/sub broker.

#![allow(missing_docs)]

use std::sync::Arc;

use contract::pubsub::{Handler, Message, Outcome, PublishRequest, SubscribeRequest};
use contract::state::{GetRequest, SetRequest};
use contract::{PubSub, StateStore, system_clock};
use criterion::{Criterion, criterion_group, criterion_main};
use reference_runtime::in_memory::pubsub_memory::{DeliveryConfig, InMemoryPubSub};
use reference_runtime::in_memory::state_memory::InMemoryStateStore;
use tokio::sync::mpsc;

fn state(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let store = rt.block_on(async { InMemoryStateStore::new(system_clock()) });
    let value = vec![b'x'; 1024];
    rt.block_on(async {
        for i in 0..10_000 {
            store.set(SetRequest::new(format!("key-{i}"), value.clone())).await.expect("seed");
        }
    });
    let mut group = c.benchmark_group("state.in-memory");
    group.bench_function("get 1 KiB (10k keys)", |b| {
        let mut i = 0u32;
        b.to_async(&rt).iter(|| {
            i = (i + 7919) % 10_000;
            let request = GetRequest::new(format!("key-{i}"));
            let store = &store;
            async move { store.get(request).await.expect("get") }
        })
    });
    group.bench_function("set 1 KiB (10k keys)", |b| {
        let mut i = 0u32;
        b.to_async(&rt).iter(|| {
            i = (i + 7919) % 10_000;
            let request = SetRequest::new(format!("key-{i}"), value.clone());
            let store = &store;
            async move { store.set(request).await.expect("set") }
        })
    });
    group.finish();
}

fn publish_to_delivery(c: &mut Criterion) {
    for (name, rt) in [
        ("current-thread", tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")),
        (
            "multi-thread",
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime"),
        ),
    ] {
        publish_to_delivery_on(c, name, &rt);
    }
}

fn publish_to_delivery_on(c: &mut Criterion, runtime_name: &str, rt: &tokio::runtime::Runtime) {
    let broker = InMemoryPubSub::new(DeliveryConfig::default(), system_clock());
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let handler: Handler = Arc::new(move |_m: Message| {
        let _ = tx.send(());
        Box::pin(async { Outcome::Success })
    });
    let _subscription = rt.block_on(broker.subscribe(SubscribeRequest::new("bench"), handler)).expect("subscribe");
    let payload = vec![b'x'; 1024];
    c.bench_function(&format!("pubsub.in-memory/publish-to-delivery 1 KiB ({runtime_name})"), |b| {
        // One message in flight at a time: the figure is the latency from publish to the
        // handler, not throughput.
        b.to_async(rt).iter_custom(|iters| {
            let broker = broker.clone();
            let rx = Arc::clone(&rx);
            let payload = payload.clone();
            async move {
                let mut rx = rx.lock().await;
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    broker.publish(PublishRequest::new("bench", payload.clone())).await.expect("publish");
                    rx.recv().await.expect("delivered");
                }
                start.elapsed()
            }
        })
    });
}

criterion_group!(benches, state, publish_to_delivery);
criterion_main!(benches);
