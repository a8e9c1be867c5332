//! What the broken-component tests share: certify a spec of components from a test registry,
//! and look trials up in the report.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::Path;

use contract::Registry;
use harness::{Filter, Session, Source, Spec};
use reports::{CaseRecord, Report};

/// Certifies the components of spec `yaml`, built from `registry`, through the trials `filter`
/// keeps, 16 at a time.
pub async fn certify(registry: &Registry, yaml: &str, filter: &Filter) -> Report {
    let spec = Spec::parse("broken.yaml", Path::new("."), yaml).expect("spec");
    let session =
        Session::open(Source::Spec(spec), registry, &harness::SessionOptions::default()).await.expect("session");
    let report = harness::certify(&session, filter, 16, "certify run", &mut |_| {}, &|_| {}).await;
    session.close().await;
    report
}

/// Certifies the `components` (block, name; an empty name is the sidecar's app) of the running
/// sidecar at `url`, whose app certify serves on `app_port`, through the trials `filter` keeps.
pub async fn certify_sidecar(
    url: String,
    components: &[(contract::Block, &str)],
    app_port: u16,
    filter: &Filter,
) -> Report {
    let source = harness::session::SidecarSource {
        url,
        components: components.iter().map(|(b, n)| (*b, (*n).to_owned())).collect(),
        app_port: Some(app_port),
        ..Default::default()
    };
    certify_source(source, filter).await
}

/// Certifies the sidecar `source` names, through the trials `filter` keeps.
pub async fn certify_source(source: harness::session::SidecarSource, filter: &Filter) -> Report {
    let registry = reference_runtime::builtin_registry();
    let session =
        Session::open(Source::Sidecar(source), &registry, &harness::SessionOptions::default()).await.expect("session");
    let report = harness::certify(&session, filter, 16, "certify run", &mut |_| {}, &|_| {}).await;
    session.close().await;
    report
}

/// The record of `trial`; a missing one fails the test with its name.
pub fn record(report: &Report, trial: &str) -> CaseRecord {
    report.cases.iter().find(|c| c.trial == trial).unwrap_or_else(|| panic!("no trial {trial}")).clone()
}

/// Asserts `trial` failed with a reason containing `reason_part`.
pub fn expect_fail(report: &Report, trial: &str, reason_part: &str) {
    let record = record(report, trial);
    assert_eq!(record.verdict, reports::Verdict::Fail, "{trial}: {record:?}");
    let reason = record.reason.clone().unwrap_or_default();
    assert!(reason.contains(reason_part), "{trial}: reason `{reason}` lacks `{reason_part}`");
}

/// The reference sidecar the lying proxies stand in front of: one in-memory component of each
/// block with wire cases (`store`, `locks`, `broker`, `queue`, `actors`, and `vault` over the shipped
/// secrets file), app id `liar`, delivering to the app on `app_port`.
pub async fn liar_sidecar(app_port: u16) -> std::sync::Arc<reference_runtime::sidecar::Sidecar> {
    let secrets = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/fixtures/secrets.json");
    let component = |name: &str, type_name: &str| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}}}\nspec: {{type: {type_name}, version: v1}}\n"
        )
    };
    let yaml = [
        component("store", "state.in-memory"),
        component("locks", "lock.in-memory"),
        component("broker", "pubsub.in-memory"),
        component("queue", "bindings.in-memory"),
        component("actors", "actors.in-memory"),
        format!("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: vault}}\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata: [{{name: secretsFile, value: \"{secrets}\"}}]\n"),
    ]
    .join("---\n");
    let manifests = contract::Resources::parse(Path::new("components.yaml"), &yaml).expect("components").components;
    let clock = std::sync::Arc::new(contract::SystemClock);
    let components = reference_runtime::builtin_registry().build_all(&manifests, clock).await.expect("build");
    let config = reference_runtime::sidecar::SidecarConfig {
        app_id: "liar".into(),
        app_port: Some(app_port),
        ..Default::default()
    };
    reference_runtime::sidecar::Sidecar::new(config, components, Vec::new())
}

/// A port free on loopback for a server a test tells about before it listens (an app port).
/// Picked below the ephemeral range, where no `bind(…:0)` of a concurrent test can take it
/// between the pick and the listen; each process has a block of its own.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 100) as u16 * 100;
    for _ in 0..100 {
        let port = base + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port()
}
