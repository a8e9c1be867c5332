//! Snapshots of every renderer on one fixed report, and the report against its schema.

use std::collections::BTreeMap;

use reports::{CaseRecord, ComponentRecord, Environment, Report, Summary, Verdict};

fn case(trial: &str, driver: &str, verdict: Verdict, feature: Option<&str>, reason: Option<&str>) -> CaseRecord {
    let (component, id) = trial.split_once("::").expect("trial");
    CaseRecord {
        trial: trial.into(),
        id: id.into(),
        block: String::new(),
        could_not_run: false,
        component: component.split('@').next().expect("component").into(),
        driver: driver.into(),
        verdict,
        reason: reason.map(str::to_owned),
        duration_ms: 1.5,
        rule: format!("The rule of {id} MUST hold."),
        source: "S1".into(),
        features: feature.map(|f| vec![f.to_owned()]).unwrap_or_default(),
        tags: vec![],
        rerun: (verdict != Verdict::Pass).then(|| format!("certify run --exact '{trial}'")),
        evidence: None,
    }
}

fn sample() -> Report {
    let cases = vec![
        case("store::state.crud.ping", "in-process", Verdict::Pass, None, None),
        case(
            "store::state.etag.stale-write-rejected",
            "in-process",
            Verdict::Fail,
            Some("etag"),
            Some("a write with ETag `bad-etag` answered Ok(()), not an ETag mismatch"),
        ),
        case(
            "store::state.ttl.item-expires",
            "in-process",
            Verdict::Inconclusive,
            Some("ttl"),
            Some("the clock jumped"),
        ),
        case("store::state.features.query-not-advertised", "in-process", Verdict::Pass, Some("query"), None),
        case("store@http::state.crud.ping", "http", Verdict::Pass, None, None),
        case(
            "store@http::state.keyslike.patterns",
            "http",
            Verdict::Skipped,
            Some("keyslike"),
            Some("the http driver cannot express this (keys-like)"),
        ),
    ];
    Report {
        schema: reports::SCHEMA_VERSION.into(),
        spec: "specs/example.yaml".into(),
        seed: "c0ffee".into(),
        started_at: "2030-01-01T00:00:00Z".into(),
        duration_ms: 12.0,
        environment: Environment {
            os: "linux".into(),
            arch: "x86_64".into(),
            certify_version: "0.1.0".into(),
            spec_digest: None,
        },
        components: vec![ComponentRecord {
            name: "store".into(),
            type_name: "state.in-memory".into(),
            claims: vec!["etag".into(), "ttl".into(), "keyslike".into()],
            drivers: vec!["in-process".into(), "http".into()],
            metadata: BTreeMap::from([("password".to_owned(), reports::REDACTED.to_owned())]),
            claims_from: "spec".into(),
        }],
        backends: Vec::new(),
        summary: Summary::of(&cases),
        cases,
    }
}

#[test]
fn summary_markdown_snapshot() {
    insta::assert_snapshot!(reports::summary_markdown(&sample()));
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!(reports::junit_xml(&sample()).expect("junit"));
}

#[test]
fn report_json_snapshot_and_schema() {
    let report = sample();
    insta::assert_json_snapshot!(report);
    let schema: serde_json::Value = serde_json::from_str(reports::REPORT_SCHEMA).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let value = serde_json::to_value(&report).expect("json");
    let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut broken = value.clone();
    broken["cases"][1].as_object_mut().expect("case").remove("reason");
    assert!(!validator.is_valid(&broken), "a failure without a reason must not validate");
}

#[test]
fn summary_counts_and_success() {
    let s = sample().summary;
    assert_eq!((s.total, s.passed, s.failed, s.inconclusive, s.skipped), (6, 3, 1, 1, 1));
    assert!(!s.ok());
}
