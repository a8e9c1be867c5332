//! `certify bench` as a user runs it: a component slowed on purpose breaks its budget and is
//! reported with the measured figure and the budget; a regression against a stored baseline
//! fails the run; the report files are written.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::state::{DeleteRequest, GetRequest, Item, SetRequest};
use contract::{Component, ComponentContext, FeatureSet, Result, StateFeature, StateStore};
use harness::{Filter, Session, Source, Spec};
use reference_runtime::in_memory::state_memory::InMemoryStateStore;
use reports::Verdict;

/// The in-memory store, 3 ms slower on every read.
struct Slow(InMemoryStateStore);

#[async_trait]
impl StateStore for Slow {
    fn features(&self) -> FeatureSet<StateFeature> {
        self.0.features()
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        tokio::time::sleep(Duration::from_millis(3)).await;
        self.0.get(request).await
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        self.0.set(request).await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.0.delete(request).await
    }
}

const SPEC: &str = r#"
components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: slow}, spec: {type: state.slow, version: v1}}
    drivers: [in-process]
    budgets:
      state.get: {p50: 1ms, p99: 2ms}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: fast}, spec: {type: state.in-memory, version: v1}}
    drivers: [in-process, http, grpc]
    budgets:
      state.get: {p99: 500ms}
bench:
  rate: 200
  concurrency: 4
  warmup: 100ms
  duration: 500ms
  operations: [state.get]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowed_component_breaks_its_budget_with_the_figure() {
    let mut registry = reference_runtime::builtin_registry();
    registry.register("state.slow", |ctx: ComponentContext| async move {
        Ok(Component::state(Arc::new(Slow(InMemoryStateStore::new(ctx.clock)))))
    });
    let spec = Spec::parse("budgets.yaml", Path::new("."), SPEC).expect("spec");
    let (budgets, profile) = (spec.budgets.clone(), spec.bench.clone());
    let session =
        Session::open(Source::Spec(spec), &registry, &harness::SessionOptions::default()).await.expect("session");
    let report = harness::bench::run(&session, &profile, &budgets, &Filter::default(), &mut |_| {}).await;
    let slow = report.records.iter().find(|r| r.component == "slow").expect("slow measured");
    assert_eq!(slow.verdict, Verdict::Fail, "{slow:?}");
    let reason = slow.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("p50") && reason.contains("over the budget of 1000.0 µs"), "{reason}");
    assert!(slow.p50_us > 3000.0, "the measured figure is the slowed one: {}", slow.p50_us);
    let fast = report.records.iter().find(|r| r.component == "fast").expect("fast measured");
    assert_eq!(fast.verdict, Verdict::Pass, "{fast:?}");
    assert!(report.records.iter().any(|r| r.component.starts_with("no-op")), "the harness baseline is measured");
    // Beside each sidecar, its protocol's floor: an empty handler through the same client, and
    // the sidecar's added latency as a multiple of it.
    for (floor, driver) in [("loopback HTTP echo", "http"), ("loopback gRPC echo", "grpc")] {
        let measured = report.records.iter().find(|r| r.component.starts_with(floor)).expect(floor);
        assert!(measured.samples > 0 && measured.errors == 0, "{measured:?}");
        let overhead = report.overheads.iter().find(|o| o.what.contains(&format!("{driver} (sidecar)")));
        let overhead = overhead.unwrap_or_else(|| panic!("{driver} overhead in {:?}", report.overheads));
        assert!(overhead.floor_ratio_p50.is_some_and(f64::is_finite), "{overhead:?}");
    }
    assert!(!report.ok());
    let dir = tempfile::tempdir().expect("tempdir");
    reports::write_bench(&report, dir.path()).expect("write");
    let html = std::fs::read_to_string(dir.path().join("bench.html")).expect("html");
    assert!(html.contains("<svg"), "plots are inline SVG");
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="), "no network assets");
}

#[test]
fn a_regression_against_the_baseline_fails_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "components:\n  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: s}, spec: {type: state.in-memory, version: v1}}\n    drivers: [in-process]\nbench:\n  rate: 200\n  concurrency: 2\n  warmup: 200ms\n  duration: 1s\n  operations: [state.get]\n",
    )
    .expect("write");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_certify"))
            .args(["bench", "--spec", spec.to_str().expect("utf8"), "--report-dir", dir.path().to_str().expect("utf8")])
            .args(extra)
            .output()
            .expect("runs");
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, stdout) = run(&[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("| s | in-process | state.get |"), "a table per component and operation:\n{stdout}");
    for file in ["bench.json", "bench.md", "bench.html", "summary.md"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    // A baseline that was a thousand times faster makes this run a regression (ten times was
    // not enough: one debug run can be ten times slower than the next on a busy machine).
    let mut baseline: reports::BenchReport =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bench.json")).expect("json")).expect("parse");
    for r in &mut baseline.records {
        r.p50_us /= 1000.0;
        r.p99_us /= 1000.0;
    }
    let stored = dir.path().join("baseline.json");
    std::fs::write(&stored, serde_json::to_string(&baseline).expect("json")).expect("write");
    let (code, stdout) = run(&["--baseline", stored.to_str().expect("utf8")]);
    assert_eq!(code, 1, "{stdout}");
    // Every figure above the 5 µs noise floor is judged, and each of them regressed.
    let now: reports::BenchReport =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bench.json")).expect("json")).expect("parse");
    let s = now.records.iter().find(|r| r.component == "s").expect("s measured");
    let judged: Vec<&str> = [("p50", s.p50_us), ("p99", s.p99_us)]
        .into_iter()
        .filter(|(_, us)| *us > 5.0)
        .map(|(figure, _)| figure)
        .collect();
    assert!(!judged.is_empty(), "a figure above the noise floor: {s:?}");
    for figure in judged {
        assert!(stdout.contains(&format!("REGRESSED s state.get [in-process] {figure}")), "{figure}:\n{stdout}");
    }
    let (code, _) = run(&["--baseline", "/nonexistent/bench.json"]);
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_without_its_backend_is_reported_skipped_not_dropped() {
    let spec = r#"
components:
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: redis-state}
      spec: {type: state.redis, version: v1, metadata: [{name: redisHost, value: "${{redis.host}}"}]}
    drivers: [in-process]
bench: {rate: 100, concurrency: 1, warmup: 10ms, duration: 50ms, operations: [state.get]}
"#;
    let spec = Spec::parse("missing.yaml", Path::new("."), spec).expect("spec");
    let (budgets, profile) = (spec.budgets.clone(), spec.bench.clone());
    // `external` with no URL set: the backend cannot be had.
    if std::env::var_os("CERTIFY_REDIS_URL").is_some() {
        eprintln!("not checked: CERTIFY_REDIS_URL is set, so the backend is available");
        return;
    }
    let options = harness::SessionOptions { provider: fixtures::Provider::External, ..Default::default() };
    let session = Session::open(Source::Spec(spec), &reference_runtime::builtin_registry(), &options)
        .await
        .expect("a missing backend skips, it does not stop the run");
    let report = harness::bench::run(&session, &profile, &budgets, &Filter::default(), &mut |_| {}).await;
    let redis = report.records.iter().find(|r| r.component == "redis-state").expect("the component is in the report");
    assert_eq!(redis.verdict, Verdict::Skipped, "{redis:?}");
    assert!(redis.reason.as_deref().unwrap_or_default().contains("CERTIFY_REDIS_URL"), "{redis:?}");
    assert_eq!(redis.samples, 0);
}
