//! What the pluggable-component tests share: running certify, serving a socket, the in-memory
//! store as a pluggable one.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{StateStore, system_clock};
use pluggable::Services;
use pluggable::state::{StateService, StoreFactory};
use reference_runtime::in_memory::state_memory::InMemoryStateStore;
use reports::{Report, Verdict};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<Report>,
}

pub fn certify(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_certify"))
        .args(args)
        .args(["--report-dir", dir.path().to_str().expect("utf8")])
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    let report =
        std::fs::read_to_string(dir.path().join("report.json")).ok().map(|t| serde_json::from_str(&t).expect("json"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    }
}

pub fn socket(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// Serves `services` (with reflection) on `path` in the background.
pub fn serve(runtime: &tokio::runtime::Runtime, path: &Path, services: Services) {
    let served = path.to_owned();
    runtime.spawn(async move { pluggable::serve(&served, services, std::future::pending()).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() {
        assert!(Instant::now() < deadline, "the server did not bind");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn in_memory() -> Arc<dyn StateStore> {
    Arc::new(InMemoryStateStore::new(system_clock()))
}

/// The in-memory store served as a pluggable one, a fresh store per instance.
pub fn in_memory_service() -> StateService {
    let factory: StoreFactory = Arc::new(|_| Box::pin(async { Ok(in_memory()) }));
    StateService::new(factory)
}

pub fn secrets_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/fixtures/secrets.json")
}

pub fn passed(report: &Report, component: &str) -> usize {
    report.cases.iter().filter(|c| c.component == component && c.verdict == Verdict::Pass).count()
}

pub fn trial(report: &Report, id: &str) -> (Verdict, String) {
    let case = report.cases.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no {id}"));
    (case.verdict, case.reason.clone().unwrap_or_default())
}

/// Component resources using the pluggable component `memref` for every block it serves.
pub const PLUGGABLE_RESOURCES: &str = "apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: plugstate}
spec: {type: state.memref, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: plugpubsub}
spec:
  type: pubsub.memref
  version: v1
  metadata:
  - {name: maxDeliveryAttempts, value: \"3\"}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: plugbinding}
spec: {type: bindings.memref, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: plugsecrets}
spec: {type: secretstores.memref, version: v1}
";

/// Starts the reference sidecar over the pluggable components in `sockets` and the Component
/// resources `yaml`, as `reference-runtime` does with `DAPR_COMPONENTS_SOCKETS_FOLDER`.
pub fn start_sidecar(runtime: &tokio::runtime::Runtime, sockets: &Path, yaml: &str, app_port: Option<u16>) -> String {
    runtime.block_on(async {
        let (registry, found) = reference_runtime::registry_with_pluggables(sockets).await.expect("discovery");
        assert_eq!(found.len(), 1, "{found:?}");
        let resources = contract::Resources::parse(Path::new("pluggable.yaml"), yaml).expect("yaml");
        let components = registry.build_all(&resources.components, system_clock()).await.expect("build");
        let config =
            reference_runtime::sidecar::SidecarConfig { app_id: "plugapp".into(), app_port, ..Default::default() };
        let sidecar = reference_runtime::sidecar::Sidecar::new(config, components, Vec::new());
        sidecar.serve_on_loopback().await.expect("serve").0
    })
}
