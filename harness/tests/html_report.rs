//! `report.html` in a real browser (Debian's headless Chromium): the page of the README's main
//! command and of a run with failures are loaded, their scripts run, and the DOM is checked:
//! the matrix counts equal report.json's, the filters are there, every failure is open with its
//! rerun command. Screenshots and pages stay in `CARGO_TARGET_TMPDIR/html-report/` for CI to
//! keep.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use async_trait::async_trait;
use contract::state::{DeleteRequest, GetRequest, Item, SetRequest};
use contract::{Component, ComponentContext, FeatureSet, StateFeature, StateStore, SystemClock};
use reference_runtime::in_memory::state_memory::InMemoryStateStore;
use reports::{Report, Verdict};

mod common;

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// Chromium, headless, with a profile of its own and nothing that reaches for the network.
fn browser(bin: &Path, profile: &Path) -> Command {
    let mut command = Command::new(bin);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Loads `page`, runs its script, answers the DOM; leaves a screenshot beside it.
fn load(bin: &Path, page: &Path) -> String {
    let profile = tempfile::tempdir().expect("profile");
    let url = format!("file://{}", page.display());
    let dom = browser(bin, profile.path())
        .args(["--virtual-time-budget=2000", "--dump-dom", &url])
        .output()
        .expect("chromium");
    assert!(dom.status.success(), "chromium: {}", String::from_utf8_lossy(&dom.stderr));
    let shot = page.with_file_name("report.png");
    let done = browser(bin, profile.path())
        .args(["--window-size=1280,1800", &format!("--screenshot={}", shot.display()), &url])
        .output()
        .expect("chromium");
    assert!(done.status.success() && shot.metadata().is_ok_and(|m| m.len() > 10_000), "a screenshot of {url}");
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// The numbers in the DOM's matrix cell of `component` × `block`: pass, fail, inconclusive, skip.
fn cell(dom: &str, component: &str, block: &str) -> [usize; 4] {
    let row_start = dom.find(&format!(r#"<tr data-component="{component}">"#)).expect("a matrix row");
    let row = &dom[row_start..row_start + dom[row_start..].find("</tr>").expect("row end")];
    let at = row.find(&format!(r#"data-block="{block}""#)).unwrap_or_else(|| panic!("no {component} × {block}"));
    let attr = |name: &str| -> usize {
        let from = at + row[at..].find(&format!(r#"{name}=""#)).expect("attribute") + name.len() + 2;
        row[from..from + row[from..].find('"').expect("quote")].parse().expect("a count")
    };
    [attr("data-pass"), attr("data-fail"), attr("data-inconclusive"), attr("data-skip")]
}

fn check_matrix(dom: &str, report: &Report) {
    let mut pairs: Vec<(&str, &str)> = report.cases.iter().map(|c| (c.component.as_str(), c.block_name())).collect();
    pairs.sort_unstable();
    pairs.dedup();
    assert!(!pairs.is_empty());
    for (component, block) in pairs {
        let count = |v: Verdict| {
            report
                .cases
                .iter()
                .filter(|c| c.component == component && c.block_name() == block && c.verdict == v)
                .count()
        };
        let expected =
            [count(Verdict::Pass), count(Verdict::Fail), count(Verdict::Inconclusive), count(Verdict::Skipped)];
        assert_eq!(cell(dom, component, block), expected, "{component} × {block}");
    }
    // The script ran: the filters are shown and count what they show.
    assert!(dom.contains(r#"<form id="filters">"#), "the filters are shown");
    let total = report.cases.len();
    assert!(dom.contains(&format!("{total} of {total} trials shown")), "the filters count the trials");
}

fn keep(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

fn read(dir: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report.json")).expect("parse")
}

/// The in-memory store, except that it ignores ETags on writes: last write always wins.
struct IgnoresEtags(InMemoryStateStore);

#[async_trait]
impl StateStore for IgnoresEtags {
    fn features(&self) -> FeatureSet<StateFeature> {
        [StateFeature::Etag].into()
    }
    async fn get(&self, request: GetRequest) -> contract::Result<Option<Item>> {
        self.0.get(request).await
    }
    async fn set(&self, mut request: SetRequest) -> contract::Result<()> {
        request.options.concurrency = Default::default();
        request.etag = None;
        self.0.set(request).await
    }
    async fn delete(&self, request: DeleteRequest) -> contract::Result<()> {
        self.0.delete(request).await
    }
}

#[test]
fn the_html_report_renders_in_a_browser_with_the_report_s_counts() {
    let Some(bin) = chromium() else {
        assert!(std::env::var("CERTIFY_REQUIRE_BACKENDS").is_err(), "chromium is required (apt-get install chromium)");
        fixtures::skip_test("no chromium (Debian: apt-get install chromium)");
        return;
    };
    // The README's main command.
    let main = keep("main");
    let run = Command::new(env!("CARGO_BIN_EXE_certify"))
        .args(["run", "--report-dir", main.to_str().expect("utf8")])
        .env("NO_COLOR", "1")
        .output()
        .expect("certify");
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stdout));
    assert!(String::from_utf8_lossy(&run.stdout).contains("report.html"), "the last line names the page");
    let report = read(&main);
    check_matrix(&load(&bin, &main.join("report.html")), &report);

    // A run with failures: a store that ignores ETags.
    let failures = keep("failures");
    let mut registry = reference_runtime::builtin_registry();
    registry.register("state.ignores-etags", |_: ComponentContext| async {
        Ok(Component::state(Arc::new(IgnoresEtags(InMemoryStateStore::new(Arc::new(SystemClock))))))
    });
    let spec = "components:\n  - component:\n      apiVersion: dapr.io/v1alpha1\n      kind: Component\n      metadata: {name: careless}\n      spec: {type: state.ignores-etags, version: v1}\n    claims: [etag, first-write]\n    drivers: [in-process]\n";
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let report = rt.block_on(common::certify(&registry, spec, &harness::Filter::default()));
    reports::write_bundle(&report, &failures).expect("bundle");
    let failed: Vec<_> = report.cases.iter().filter(|c| c.verdict == Verdict::Fail).collect();
    assert!(!failed.is_empty(), "the careless store fails");
    let dom = load(&bin, &failures.join("report.html"));
    check_matrix(&dom, &report);
    let mut timelines = 0;
    for case in failed {
        let at = dom.find(&format!(r#"<details open="" class="failure" data-trial="{}""#, case.trial)).unwrap_or_else(
            || {
                panic!("{} is opened on the page", case.trial);
            },
        );
        let section = &dom[at..at + dom[at..].find("</details>").expect("end")];
        let rerun = case.rerun.as_deref().expect("a rerun command");
        assert!(section.contains(r#"<code class="rerun">"#) && section.contains(rerun), "{section}");
        if case.evidence.as_ref().and_then(reports::timeline_svg).is_some() {
            assert!(section.contains("<svg"), "{}: the timeline is drawn inline", case.trial);
            timelines += 1;
        }
    }
    assert!(timelines > 0, "the linearizability failure's timeline is on the page");
}
