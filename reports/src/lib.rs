//! The results of a certification run as stable, serialisable types (what `report.json` holds
//! and what CI parses), and the renderers that turn them into `report.json`, `junit.xml` and
//! `summary.md`. Renderers never decide anything; they only render a [`Report`].

mod bench;
mod certificate;
mod html;
mod junit;
mod markdown;
mod merge;
mod model;
mod timeline;

pub use bench::{
    BENCH_SCHEMA_VERSION, BenchRecord, BenchReport, Budget, MemoryRecord, Overhead, Regression, bench_html,
    bench_table, regressions,
};
pub use certificate::{
    BlockResult, CERTIFICATE_SCHEMA, Certificate, CertificateError, CertifiedComponent, Signature, signing_key, verify,
};
pub use html::report_html;
pub use junit::junit_xml;
pub use markdown::summary_markdown;
pub use merge::{MergeError, merge};
pub use model::{
    BackendRecord, CaseRecord, ComponentRecord, Environment, REDACTED, Report, SCHEMA_VERSION, Summary, Verdict,
};
pub use timeline::{timeline_file, timeline_svg};

use std::path::{Path, PathBuf};

/// The JSON schema of `report.json`.
pub const REPORT_SCHEMA: &str = include_str!("../report.schema.json");

/// The JSON schema of one line of `certify run --message-format json`.
pub const EVENTS_SCHEMA: &str = include_str!("../events.schema.json");

/// Writing the bundle failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file could not be written.
    #[error("cannot write `{}`: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The JUnit serializer failed.
    #[error("cannot render junit.xml: {0}")]
    Junit(String),
    /// The certificate could not be made (a bad signing key).
    #[error("cannot write certificate.json: {0}")]
    Certificate(String),
}

/// Writes `certificate.json` into `dir` for the bundle's `report.json` (written there before),
/// signed with the PEM Ed25519 private key `sign_key` when given.
pub fn write_certificate(dir: &Path, sign_key: Option<&str>) -> Result<PathBuf, WriteError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |cause| WriteError::Io { path, cause }
    };
    let report_path = dir.join("report.json");
    let bytes = std::fs::read(&report_path).map_err(io(&report_path))?;
    let report: Report = serde_json::from_slice(&bytes).map_err(|e| WriteError::Junit(e.to_string()))?;
    let mut certificate = Certificate::of(&report, &bytes);
    if let Some(pem) = sign_key {
        certificate.sign(pem).map_err(|e| WriteError::Certificate(e.to_string()))?;
    }
    let path = dir.join("certificate.json");
    let text = serde_json::to_string_pretty(&certificate).map_err(|e| WriteError::Certificate(e.to_string()))?;
    std::fs::write(&path, text).map_err(io(&path))?;
    Ok(path)
}

/// Writes `report.json`, `junit.xml`, `summary.md` and `report.html` into `dir` (created if
/// missing) and returns the paths written.
pub fn write_bundle(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |cause| WriteError::Io { path, cause }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = serde_json::to_string_pretty(report).map_err(|e| WriteError::Junit(e.to_string()))?;
    let files = [
        ("report.json", json),
        ("junit.xml", junit_xml(report).map_err(WriteError::Junit)?),
        ("summary.md", summary_markdown(report)),
        ("report.html", report_html(report)),
    ];
    let mut written = Vec::new();
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(io(&path))?;
        written.push(path);
    }
    for case in &report.cases {
        if let Some(svg) = case.evidence.as_ref().and_then(timeline_svg) {
            let path = dir.join(timeline_file(&case.trial));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&path, svg).map_err(io(&path))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Writes `bench.json`, `bench.md` and `bench.html` into `dir` and returns the paths written.
pub fn write_bench(report: &BenchReport, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |cause| WriteError::Io { path, cause }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = serde_json::to_string_pretty(report).map_err(|e| WriteError::Junit(e.to_string()))?;
    let mut written = Vec::new();
    for (name, content) in [("bench.json", json), ("bench.md", bench_table(report)), ("bench.html", bench_html(report))]
    {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}
