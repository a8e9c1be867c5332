//! A component whose library kills the process costs the trial that was running, not the run:
//! the supervisor runs the trials that were in flight again one at a time, fails the one during
//! which the worker dies again (with the signal as its reason), and every other trial still
//! gets its verdict. A crash that does not come back leaves those trials inconclusive: none of
//! them may pass. This binary is its own `certify` (`harness::cli::main` with a registry holding the
//! crashing store): the test starts it as a supervisor, which starts it again as the worker.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;

use async_trait::async_trait;
use contract::state::{DeleteRequest, GetRequest, Item, SetRequest};
use contract::{Component, ComponentContext, FeatureSet, Registry, Result, StateFeature, StateStore, SystemClock};
use libtest_mimic::{Arguments, Trial};
use reference_runtime::in_memory::state_memory::InMemoryStateStore;
use reports::{Report, Verdict};

/// Set on the copies of this binary that act as `certify`.
const AS_CERTIFY: &str = "CERTIFY_CRASH_TEST_AS_CERTIFY";
/// The in-memory store, except that it aborts the process: on every write of a key named
/// `overwrite` (`state.crud.overwrite-replaces` writes one), or on the first write of all when
/// given a marker file (which it creates, so it happens once).
struct Crashing {
    inner: InMemoryStateStore,
    once: Option<PathBuf>,
}

#[async_trait]
impl StateStore for Crashing {
    fn features(&self) -> FeatureSet<StateFeature> {
        [StateFeature::Etag].into()
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        self.inner.get(request).await
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        let crash = match &self.once {
            Some(marker) => std::fs::File::create_new(marker).is_ok(),
            None => request.key.ends_with("-overwrite"),
        };
        if crash {
            // What a segfaulting native library amounts to: the process is gone, at once.
            std::process::abort();
        }
        self.inner.set(request).await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.inner.delete(request).await
    }
}

fn registry() -> Registry {
    let mut registry = reference_runtime::builtin_registry();
    registry.register("state.crashing", |ctx: ComponentContext| async move {
        let once = ctx.properties.get("once").map(PathBuf::from);
        let inner = InMemoryStateStore::new(Arc::new(SystemClock));
        Ok(Component::state(Arc::new(Crashing { inner, once })))
    });
    registry
}

fn main() -> ExitCode {
    if std::env::var_os(AS_CERTIFY).is_some() {
        return harness::cli::main(registry());
    }
    let tests = vec![
        Trial::test("a_crashing_component_fails_its_trial_and_the_run_goes_on", || {
            a_crashing_component_fails_its_trial_and_the_run_goes_on();
            Ok(())
        }),
        Trial::test("a_crash_that_does_not_come_back_leaves_its_suspects_inconclusive", || {
            a_crash_that_does_not_come_back_leaves_its_suspects_inconclusive();
            Ok(())
        }),
    ];
    libtest_mimic::run(&Arguments::from_args(), tests).exit_code()
}

/// Runs this binary as `certify run` over one `state.crashing` store with `metadata` (YAML
/// flow items); answers the exit code, stdout and the report.
fn certify(metadata: &str) -> (Option<i32>, String, Report) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("spec.yaml");
    let component = format!(
        "components:\n  - component:\n      apiVersion: dapr.io/v1alpha1\n      kind: Component\n      metadata: {{name: fragile}}\n      spec:\n        type: state.crashing\n        version: v1\n        metadata: [{metadata}]\n    claims: [etag, first-write]\n    drivers: [in-process]\n"
    );
    std::fs::write(&spec, component).expect("spec");
    let report_dir = dir.path().join("report");
    let out = Command::new(std::env::current_exe().expect("this binary"))
        .args(["run", "--spec", spec.to_str().expect("utf8"), "--report-dir", report_dir.to_str().expect("utf8")])
        .env(AS_CERTIFY, "1")
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = std::fs::read_to_string(report_dir.join("report.json"))
        .unwrap_or_else(|e| panic!("no report ({e})\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), stdout, serde_json::from_str(&text).expect("parse"))
}

fn a_crashing_component_fails_its_trial_and_the_run_goes_on() {
    let (code, stdout, report) = certify("");
    assert_eq!(code, Some(1), "a failed trial, not a dead run\n{stdout}");
    let failed: Vec<_> = report.cases.iter().filter(|c| c.verdict == Verdict::Fail).collect();
    assert_eq!(failed.len(), 1, "only the trial that crashed fails\n{stdout}");
    assert_eq!(failed[0].trial, "fragile::state.crud.overwrite-replaces");
    let reason = failed[0].reason.as_deref().unwrap_or_default();
    assert!(reason.contains("killed by SIGABRT") && reason.contains("the only trial running"), "{reason}");
    assert!(failed[0].rerun.as_deref().is_some_and(|r| r.contains("--exact")), "{:?}", failed[0].rerun);
    assert_eq!(report.cases.iter().filter(|c| c.verdict == Verdict::Inconclusive).count(), 0, "{stdout}");
    // Every other trial ran and has its own verdict.
    let planned = report.cases.len();
    assert!(planned > 40 && report.cases.iter().filter(|c| c.verdict == Verdict::Pass).count() > 30, "{stdout}");
    assert!(stdout.contains(&format!("[{planned}/{planned}]")), "numbered to the end\n{stdout}");
}

fn a_crash_that_does_not_come_back_leaves_its_suspects_inconclusive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("crashed");
    let (code, stdout, report) = certify(&format!("{{name: once, value: \"{}\"}}", marker.display()));
    assert!(marker.exists(), "it crashed\n{stdout}");
    assert_eq!(code, Some(1), "{stdout}");
    let doubted: Vec<_> = report.cases.iter().filter(|c| c.verdict == Verdict::Inconclusive).collect();
    assert!(!doubted.is_empty(), "{stdout}");
    for case in doubted {
        let reason = case.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("killed by SIGABRT") && reason.contains("cannot be traced to one trial"), "{reason}");
    }
    assert_eq!(report.cases.iter().filter(|c| c.verdict == Verdict::Fail).count(), 0, "{stdout}");
}
