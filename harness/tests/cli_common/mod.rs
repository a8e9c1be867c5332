//! What the tests of the `certify` binary share: running it, and checking a report against
//! its schema.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// What a `certify` run printed, and its exit code.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `certify ARGS` without colour.
pub fn certify(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_certify")).args(args).env("NO_COLOR", "1").output().expect("runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Fails unless the report.json at `path` follows `reports/report.schema.json`.
pub fn validate_against_schema(path: &Path) {
    let schema: serde_json::Value = serde_json::from_str(reports::REPORT_SCHEMA).expect("schema");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("report.json")).expect("json");
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let errors: Vec<String> =
        validator.iter_errors(&report).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
