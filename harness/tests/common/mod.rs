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
