//! `certify bench`: latency and throughput of each component's operations under a load profile,
//! against budgets from the spec, beside baselines measured in the same run (a no-op component
//! for the harness's own cost, each backend's raw client, and each sidecar driver's (HTTP,
//! gRPC) cost over the in-process one).

mod actors;
mod floor;
pub mod load;
pub mod memory;
pub mod profile;
mod pubsub;
mod raw;
mod stores;
mod workflows;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use contract::{LockStore, PubSub, StateStore};
use reports::{BenchRecord, BenchReport, Budget, Environment, Overhead, Verdict};
use suites::pubsub::TopicSource;

use crate::driver::DriverKind;
use crate::plan::Filter;
use crate::session::Session;
use actors::{measure_actor, published_actor_figure};
use load::{Load, Measured, Mode, drive};
pub use profile::{BenchProfile, Operation};
use pubsub::measure_pubsub;
use raw::measure_raw;
use stores::{NoOp, measure_lock, measure_state, measure_state_get_beside};

/// Keys (state, lock resources, actors) each measurement cycles through.
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
        if !beside || !filter.keeps(floor::name_of(driver)) {
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
        let name =
            floor::name_of(if driver == DriverKind::Http.as_str() { DriverKind::Http } else { DriverKind::Grpc });
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
