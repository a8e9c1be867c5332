//! `junit.xml`: one test suite per component and driver, one test case per case.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use crate::model::{Report, Verdict};

/// Renders the report as JUnit XML.
pub fn junit_xml(report: &Report) -> Result<String, String> {
    let mut junit = Junit::new("certify");
    junit.set_time(Duration::from_secs_f64(report.duration_ms / 1000.0));
    let mut suites: BTreeMap<(String, String), TestSuite> = BTreeMap::new();
    for case in &report.cases {
        let suite = suites.entry((case.component.clone(), case.driver.clone())).or_insert_with(|| {
            let mut s = TestSuite::new(format!("{}@{}", case.component, case.driver));
            s.add_property(Property::new("seed", report.seed.as_str()));
            s
        });
        let mut status = match case.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
            // Inconclusive is an error, not a pass: CI must look at it.
            Verdict::Inconclusive => TestCaseStatus::non_success(NonSuccessKind::Error),
            Verdict::Skipped => TestCaseStatus::skipped(),
        };
        if let Some(reason) = &case.reason {
            status.set_message(reason.as_str());
            status.set_description(format!("rule: {}\nreason: {reason}", case.rule));
        }
        let mut test = TestCase::new(case.id.as_str(), status);
        test.set_classname(format!("{}.{}", case.component, case.driver));
        test.set_time(Duration::from_secs_f64(case.duration_ms / 1000.0));
        suite.add_test_case(test);
    }
    junit.add_test_suites(suites.into_values());
    junit.to_string().map_err(|e| e.to_string())
}
