//! `certify bench`: latency and throughput of each component's operations under a load profile,
//! against budgets from the spec, beside baselines measured in the same run (a no-op component
//! for the harness's own cost, each backend's raw client, and each sidecar driver's (HTTP,
//! gRPC) cost over the in-process one).

mod floor;
pub mod load;
pub mod memory;
pub mod profile;
mod workflows;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use contract::actors::{ActorId, Invocation};
use contract::lock::{TryLockRequest, UnlockRequest};
use contract::state::{GetRequest, Item, SetRequest, TransactionOperation, TransactionRequest};
use contract::{FeatureSet, LockStore, PubSub, StateFeature, StateStore};
use fixtures::BackendKind;
use reports::{BenchRecord, BenchReport, Budget, Environment, Overhead, Verdict};
use suites::actors::PLAIN;
use suites::pubsub::TopicSource;

use crate::driver::DriverKind;
use crate::plan::Filter;
use crate::session::Session;
use load::{Load, Measured, Mode, drive};
pub use profile::{BenchProfile, Operation};

/// A component that does nothing: what is left is the harness's own cost per operation.
#[derive(Debug)]
struct NoOp;

#[async_trait]
impl StateStore for NoOp {
    fn features(&self) -> FeatureSet<StateFeature> {
        FeatureSet::new()
    }

    async fn get(&self, _: GetRequest) -> contract::Result<Option<Item>> {
        Ok(None)
    }

    async fn set(&self, _: SetRequest) -> contract::Result<()> {
        Ok(())
    }

    async fn delete(&self, _: contract::state::DeleteRequest) -> contract::Result<()> {
        Ok(())
    }
}

const KEYS: u64 = 256;

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn record(
    component: &str,
    driver: &str,
    operation: &str,
    load: &Load,
    m: &Measured,
    budget: Option<&Budget>,
) -> BenchRecord {
    let h = &m.histogram;
    let mut r = BenchRecord {
        component: component.to_owned(),
        driver: driver.to_owned(),
        operation: operation.to_owned(),
        mode: match load.mode {
            Mode::ClosedLoop => "closed-loop".into(),
            Mode::FixedRate(_) => "fixed-rate".into(),
        },
        rate: match load.mode {
            Mode::FixedRate(r) => Some(r),
            Mode::ClosedLoop => None,
        },
        concurrency: load.concurrency,
        samples: h.len(),
        errors: m.errors,
        first_error: m.first_error.clone(),
        throughput: m.throughput,
        mean_us: h.mean() / 1000.0,
        p50_us: us(h.value_at_quantile(0.5)),
        p90_us: us(h.value_at_quantile(0.9)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
        budget: budget.cloned(),
        verdict: Verdict::Pass,
        reason: None,
    };
    let mut problems = budget.map(|b| b.violations(&r)).unwrap_or_default();
    if m.errors > 0 {
        problems.push(format!(
            "{} of {} operations failed, first: {}",
            m.errors,
            m.errors + h.len(),
            m.first_error.clone().unwrap_or_default()
        ));
    }
    if h.is_empty() {
        problems.push("no operation completed".into());
    }
    if !problems.is_empty() {
        r.verdict = Verdict::Fail;
        r.reason = Some(problems.join("; "));
    }
    r
}

/// The record of a target that could not be measured at all, with the reason.
fn blocked_record(target: &crate::plan::Target, blocked: &crate::plan::Blocked, load: &Load) -> BenchRecord {
    let empty = Measured {
        histogram: hdrhistogram::Histogram::new(3).expect("3 significant figures is a valid precision"),
        errors: 0,
        first_error: None,
        throughput: 0.0,
    };
    let mut r = record(&target.component, target.driver.as_str(), "all operations", load, &empty, None);
    (r.verdict, r.reason) = match blocked {
        crate::plan::Blocked::Unavailable(why) => (Verdict::Skipped, Some(why.clone())),
        crate::plan::Blocked::SetupFailed(why) => (Verdict::Fail, Some(why.clone())),
    };
    r
}

/// Writes the keys a state operation reads and writes, with `profile`'s payload.
async fn prepare_state(
    store: &dyn StateStore,
    profile: &BenchProfile,
    prefix: &str,
) -> Result<(Arc<Vec<String>>, Arc<String>), String> {
    let value = format!("\"{}\"", "x".repeat(profile.payload_bytes.saturating_sub(2)));
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("{prefix}-{i}")).collect());
    for key in keys.iter() {
        store.set(SetRequest::new(key.clone(), value.clone())).await.map_err(|e| format!("preparing `{key}`: {e}"))?;
    }
    Ok((keys, Arc::new(value)))
}

/// A get of key `i` of `keys`, as the load generator takes it.
fn state_get(
    store: Arc<dyn StateStore>,
    keys: Arc<Vec<String>>,
) -> impl Fn(u64) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync + 'static {
    use futures::FutureExt;
    move |i| {
        let (store, k) = (Arc::clone(&store), keys[(i % KEYS) as usize].clone());
        async move { store.get(GetRequest::new(k)).await.map(|_| ()).map_err(|e| e.to_string()) }.boxed()
    }
}

/// A sidecar's state get and its protocol's floor, measured in alternating slices: the floor's
/// figures first.
async fn measure_state_get_beside(
    store: Arc<dyn StateStore>,
    floor: &floor::Floor,
    profile: &BenchProfile,
    prefix: &str,
) -> Result<(Measured, Measured), String> {
    let (keys, _) = prepare_state(store.as_ref(), profile, prefix).await?;
    Ok(load::drive_alternating(profile.load, floor.op(), state_get(store, keys)).await)
}

async fn measure_state(
    store: Arc<dyn StateStore>,
    op: Operation,
    profile: &BenchProfile,
    prefix: &str,
) -> Result<Measured, String> {
    let (keys, value) = prepare_state(store.as_ref(), profile, prefix).await?;
    let key = move |i: u64, keys: &Arc<Vec<String>>| keys[(i % KEYS) as usize].clone();
    Ok(match op {
        Operation::StateGet => drive(profile.load, state_get(store, keys)).await,
        Operation::StateSet => {
            drive(profile.load, move |i| {
                let (store, k, v) = (Arc::clone(&store), key(i, &keys), Arc::clone(&value));
                async move { store.set(SetRequest::new(k, v.as_str())).await.map_err(|e| e.to_string()) }
            })
            .await
        }
        Operation::StateBulkGet => {
            drive(profile.load, move |i| {
                let store = Arc::clone(&store);
                let batch: Vec<GetRequest> = (0..10).map(|j| GetRequest::new(key(i + j, &keys))).collect();
                async move { store.bulk_get(batch).await.map(|_| ()).map_err(|e| e.to_string()) }
            })
            .await
        }
        Operation::StateTransaction => {
            drive(profile.load, move |i| {
                let (store, v) = (Arc::clone(&store), Arc::clone(&value));
                let operations = (0..2)
                    .map(|j| TransactionOperation::Set(SetRequest::new(key(i * 2 + j, &keys), v.as_str())))
                    .collect();
                async move {
                    store
                        .transact(TransactionRequest { operations, metadata: Default::default() })
                        .await
                        .map_err(|e| e.to_string())
                }
            })
            .await
        }
        Operation::LockUnlock | Operation::PublishToDelivery | Operation::ActorCall | Operation::WorkflowChain => {
            return Err("not a state operation".into());
        }
    })
}

async fn measure_lock(store: Arc<dyn LockStore>, profile: &BenchProfile, prefix: &str) -> Measured {
    let prefix = prefix.to_owned();
    drive(profile.load, move |i| {
        let (store, resource) = (Arc::clone(&store), format!("{prefix}-lock-{}", i % KEYS));
        async move {
            let owner = format!("owner-{i}");
            if !store
                .try_lock(TryLockRequest {
                    resource_id: resource.clone(),
                    lock_owner: owner.clone(),
                    expiry_in_seconds: 10,
                })
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("`{resource}` was not granted"));
            }
            store
                .unlock(UnlockRequest { resource_id: resource, lock_owner: owner })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await
}

/// Publishes message `i` and waits for the subscriber to see it: the end-to-end latency.
/// Publish-to-delivery on `topic` in a consumer group of its own, or, over HTTP (where topics
/// come from `topics`, as the sidecar was told them), on a leased topic with the app as the
/// subscriber.
async fn measure_pubsub(
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

/// Calls method `echo` of actors `<prefix>-0…255` in turn (each call a turn of its actor).
async fn measure_actor(actors: Arc<dyn contract::Actors>, profile: &BenchProfile, prefix: &str) -> Measured {
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
fn published_actor_figure() -> BenchRecord {
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

/// Measures each backend's own client on the same load: the floor a component builds on.
async fn measure_raw(kind: BackendKind, url: &str, profile: &BenchProfile, prefix: &str) -> Result<Measured, String> {
    let value = vec![b'x'; profile.payload_bytes];
    match kind {
        BackendKind::Redis => {
            let client = redis::Client::open(url).map_err(|e| e.to_string())?;
            let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
            let key = format!("{prefix}-raw");
            redis::cmd("SET").arg(&key).arg(&value).query_async::<()>(&mut conn).await.map_err(|e| e.to_string())?;
            Ok(drive(profile.load, move |_| {
                let (mut conn, key) = (conn.clone(), key.clone());
                async move {
                    redis::cmd("GET")
                        .arg(&key)
                        .query_async::<Vec<u8>>(&mut conn)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .await)
        }
        BackendKind::Postgres => {
            let (client, connection) =
                tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS certify_raw_bench (key TEXT PRIMARY KEY, value BYTEA NOT NULL)",
                )
                .await
                .map_err(|e| e.to_string())?;
            let key = format!("{prefix}-raw");
            client
                .execute("INSERT INTO certify_raw_bench VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", &[&key, &value])
                .await
                .map_err(|e| e.to_string())?;
            let statement = client
                .prepare("SELECT value FROM certify_raw_bench WHERE key = $1")
                .await
                .map_err(|e| e.to_string())?;
            let client = Arc::new(client);
            Ok(drive(profile.load, move |_| {
                let (client, statement, key) = (Arc::clone(&client), statement.clone(), key.clone());
                async move { client.query_opt(&statement, &[&key]).await.map(|_| ()).map_err(|e| e.to_string()) }
            })
            .await)
        }
        // Brokers have no key-value read to compare with; their baseline is publish-to-delivery.
        BackendKind::RabbitMq | BackendKind::Kafka => Err(format!("no raw-client baseline for {kind}")),
    }
}

/// Runs the profile against every target `filter` keeps, calling `on_record` as each
/// measurement finishes.
pub async fn run(
    session: &Session,
    profile: &BenchProfile,
    budgets: &BTreeMap<String, BTreeMap<String, Budget>>,
    filter: &Filter,
    on_record: &mut dyn FnMut(&BenchRecord),
) -> BenchReport {
    let started_at = contract::clock::rfc3339(SystemTime::now());
    let seed = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut records = Vec::new();
    let mut push = |r: BenchRecord, records: &mut Vec<BenchRecord>| {
        on_record(&r);
        records.push(r);
    };
    let state_ops: Vec<Operation> =
        profile.operations.iter().copied().filter(|o| *o != Operation::LockUnlock).collect();
    // The harness's own cost: a component that answers at once.
    if profile.operations.contains(&Operation::StateGet) && filter.keeps("no-op state.get") {
        let m = measure_state(Arc::new(NoOp), Operation::StateGet, profile, &format!("bench-{seed}-noop")).await;
        if let Ok(m) = m {
            push(record("no-op (harness overhead)", "in-process", "state.get", &profile.load, &m, None), &mut records);
        }
    }
    // The floors beside sidecars: an empty handler through the same client, measured in
    // alternating slices with the first state get over that driver (or alone, after the
    // targets, when the run has none).
    let mut floors = Vec::new();
    for driver in [DriverKind::Http, DriverKind::Grpc] {
        let beside = profile.operations.contains(&Operation::StateGet)
            && session.targets.iter().any(|t| t.driver == driver && t.blocked.is_none());
        if !beside || !filter.keeps(if driver == DriverKind::Http { floor::HTTP } else { floor::GRPC }) {
            continue;
        }
        match floor::Floor::start(driver).await {
            Ok(floor) => floors.push(floor),
            Err(e) => tracing::warn!(error = %e, driver = driver.as_str(), "the loopback floor could not start"),
        }
    }
    let floor_record =
        |floor: &floor::Floor, m: &Measured| record(floor.name(), "raw", floor.operation(), &profile.load, m, None);
    for (n, target) in session.targets.iter().enumerate() {
        if let Some(blocked) = &target.blocked {
            // Never drop a component silently: its backend is missing (skipped) or broken (failed).
            let named = |op: &Operation| format!("{} {} [{}]", target.component, op.name(), target.driver.as_str());
            if profile.operations.iter().any(|op| filter.keeps(&named(op))) {
                push(blocked_record(target, blocked, &profile.load), &mut records);
            }
            continue;
        }
        let handles = &target.handles;
        let (state, lock, broker) =
            (handles.get::<dyn StateStore>(), handles.get::<dyn LockStore>(), handles.get::<dyn PubSub>());
        let actors = handles.get::<dyn contract::Actors>();
        let worker = handles.get::<suites::workflows::Worker>();
        let component_budgets = budgets.get(&target.component);
        let ops: Vec<Operation> = if state.is_some() {
            state_ops.clone()
        } else if lock.is_some() && profile.operations.contains(&Operation::LockUnlock) {
            vec![Operation::LockUnlock]
        } else if broker.is_some() && profile.operations.contains(&Operation::PublishToDelivery) {
            vec![Operation::PublishToDelivery]
        } else if actors.is_some() && profile.operations.contains(&Operation::ActorCall) {
            vec![Operation::ActorCall]
        } else if worker.is_some() && profile.operations.contains(&Operation::WorkflowChain) {
            vec![Operation::WorkflowChain]
        } else {
            Vec::new()
        };
        for op in ops {
            let name = format!("{} {} [{}]", target.component, op.name(), target.driver.as_str());
            if !filter.keeps(&name) {
                continue;
            }
            let budget = component_budgets.and_then(|b| b.get(op.name()));
            let prefix = format!("bench-{seed}-{n}-{}", op.name());
            let load = match op {
                Operation::WorkflowChain => workflows::load(&profile.load),
                _ => profile.load,
            };
            let measured = match (op, state, lock) {
                (Operation::WorkflowChain, _, _) => match worker {
                    Some(worker) => Ok(workflows::measure(Arc::clone(worker), load, &prefix).await),
                    None => continue,
                },
                (Operation::ActorCall, _, _) => match actors {
                    Some(actors) => Ok(measure_actor(Arc::clone(actors), profile, &prefix).await),
                    None => continue,
                },
                (Operation::PublishToDelivery, _, _) => match broker {
                    Some(broker) => {
                        let topics = handles.get::<dyn TopicSource>().cloned();
                        measure_pubsub(Arc::clone(broker), topics, profile, &prefix).await
                    }
                    None => continue,
                },
                (Operation::LockUnlock, _, Some(lock)) => Ok(measure_lock(Arc::clone(lock), profile, &prefix).await),
                (Operation::StateGet, Some(state), _)
                    if let Some(at) = floors.iter().position(|f| f.driver == target.driver) =>
                {
                    let floor = floors.swap_remove(at);
                    match measure_state_get_beside(Arc::clone(state), &floor, profile, &prefix).await {
                        Ok((at_floor, m)) => {
                            push(floor_record(&floor, &at_floor), &mut records);
                            Ok(m)
                        }
                        Err(e) => {
                            floors.push(floor); // measured alone, after the targets
                            Err(e)
                        }
                    }
                }
                (_, Some(state), _) => measure_state(Arc::clone(state), op, profile, &prefix).await,
                _ => continue,
            };
            let r = match measured {
                Ok(m) => record(&target.component, target.driver.as_str(), op.name(), &load, &m, budget),
                Err(e) => {
                    let empty = Measured {
                        histogram: hdrhistogram::Histogram::new(3).expect("valid"),
                        errors: 1,
                        first_error: Some(e),
                        throughput: 0.0,
                    };
                    record(&target.component, target.driver.as_str(), op.name(), &load, &empty, budget)
                }
            };
            push(r, &mut records);
        }
    }
    for floor in floors {
        let m = drive(profile.load, floor.op()).await;
        push(floor_record(&floor, &m), &mut records);
    }
    if records.iter().any(|r| r.operation == Operation::ActorCall.name() && r.samples > 0) {
        push(published_actor_figure(), &mut records);
    }
    // Each backend's raw client beside the components built on it.
    if profile.operations.contains(&Operation::StateGet) {
        for (kind, _, _, url) in session.backend_urls() {
            let component = format!("{kind} (raw client)");
            if !filter.keeps(&format!("{component} state.get [raw]")) {
                continue;
            }
            if let Ok(m) = measure_raw(kind, &url, profile, &format!("bench-{seed}")).await {
                push(record(&component, "raw", "state.get", &profile.load, &m, None), &mut records);
            }
        }
    }
    let overheads = overheads(&records);
    BenchReport {
        schema: reports::BENCH_SCHEMA_VERSION.into(),
        spec: session.source.clone(),
        started_at,
        environment: Environment {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            certify_version: env!("CARGO_PKG_VERSION").into(),
            spec_digest: None,
        },
        records,
        overheads,
        memory: Vec::new(),
    }
}

/// Each sidecar driver's (HTTP, gRPC) added latency over the in-process one, per component and
/// operation; for the state operations (one call each, as the floors are) also as a multiple of
/// the protocol's loopback floor, when that was measured without errors.
fn overheads(records: &[BenchRecord]) -> Vec<Overhead> {
    let floor_of = |driver: &str| {
        let name = if driver == DriverKind::Http.as_str() { floor::HTTP } else { floor::GRPC };
        records
            .iter()
            .find(|r| r.component == name && r.samples > 0 && r.errors == 0 && r.p50_us > 0.0 && r.p99_us > 0.0)
    };
    let sidecar = [DriverKind::Http.as_str(), DriverKind::Grpc.as_str()];
    records
        .iter()
        .filter(|r| sidecar.contains(&r.driver.as_str()) && r.samples > 0)
        .filter_map(|remote| {
            let local = records.iter().find(|r| {
                r.component == remote.component
                    && r.operation == remote.operation
                    && r.driver == "in-process"
                    && r.samples > 0
            })?;
            let (added_p50_us, added_p99_us) = (remote.p50_us - local.p50_us, remote.p99_us - local.p99_us);
            let floor = floor_of(&remote.driver).filter(|_| remote.operation.starts_with("state."));
            Some(Overhead {
                what: format!("{} {}: {} (sidecar) over in-process", remote.component, remote.operation, remote.driver),
                added_p50_us,
                added_p99_us,
                floor_ratio_p50: floor.map(|f| added_p50_us / f.p50_us),
                floor_ratio_p99: floor.map(|f| added_p99_us / f.p99_us),
            })
        })
        .collect()
}
