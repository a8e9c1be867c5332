//! An actor method call, its turn included, beside Dapr's published figure for one.

use std::sync::Arc;

use contract::actors::{ActorId, Invocation};
use reports::{BenchRecord, Verdict};
use suites::actors::PLAIN;

use super::load::{Measured, drive};
use super::{BenchProfile, KEYS, Operation};

/// Calls method `echo` of actors `<prefix>-0…255` in turn (each call a turn of its actor).
pub(super) async fn measure_actor(actors: Arc<dyn contract::Actors>, profile: &BenchProfile, prefix: &str) -> Measured {
    let ids: Arc<Vec<ActorId>> = Arc::new((0..KEYS).map(|i| ActorId::new(PLAIN, format!("{prefix}-{i}"))).collect());
    let body = Arc::new(vec![b'x'; profile.payload_bytes.min(64)]);
    drive(profile.load, move |i| {
        let (actors, ids, body) = (Arc::clone(&actors), Arc::clone(&ids), Arc::clone(&body));
        async move {
            let call = Invocation { method: "echo".into(), body: body.to_vec(), reentrancy_id: None };
            let answer = actors.invoke(&ids[(i % KEYS) as usize], call).await.map_err(|e| e.to_string())?;
            match answer.status {
                200 => Ok(()),
                status => Err(format!("the actor answered {status}")),
            }
        }
    })
    .await
}

/// Dapr's published figure for an actor call, beside the measured ones
/// (conformance-rules.md: daprd's perf tests, actor activation at 500 QPS).
pub(super) fn published_actor_figure() -> BenchRecord {
    BenchRecord {
        component: "daprd (published: actor activation at 500 QPS)".into(),
        driver: "published".into(),
        operation: Operation::ActorCall.name().into(),
        mode: "fixed-rate".into(),
        rate: Some(500.0),
        concurrency: 0,
        samples: 0,
        errors: 0,
        first_error: None,
        throughput: 500.0,
        mean_us: 0.0,
        p50_us: 2300.0,
        p90_us: 2980.0,
        p99_us: 6890.0,
        p999_us: 0.0,
        max_us: 0.0,
        budget: None,
        verdict: Verdict::Skipped,
        reason: Some("Dapr's published figure, not measured in this run".into()),
    }
}
