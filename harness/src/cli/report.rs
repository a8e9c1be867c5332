//! `certify report html REPORT.json`: draws a bundle's `report.html` again from its
//! `report.json` (any bundle, merged ones included); `certify report merge DIR…` joins the
//! bundles of a run split with `--partition` into one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{fail, out};

/// What `certify report` does.
#[derive(Debug, clap::Subcommand)]
pub(super) enum ReportCommand {
    /// Renders report.html from a report.json.
    Html {
        /// The report.json.
        report: PathBuf,
        /// Where the page goes (default: report.html beside the report).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Merges the bundles of one run's shards (`certify run --partition hash:K/N`) into one
    /// bundle; exits 1 when the merged run has failures, as `run` would.
    Merge {
        /// The bundles: folders holding a report.json, or report.json files.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
        /// Where the merged bundle goes.
        #[arg(long, default_value = "certify-report")]
        report_dir: PathBuf,
        /// Sign the merged certificate.json with this Ed25519 private key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
    },
}

/// Runs `command`.
pub(super) fn report(command: ReportCommand) -> ExitCode {
    match command {
        ReportCommand::Html { report, output } => html(&report, output),
        ReportCommand::Merge { bundles, report_dir, sign_key } => merge(&bundles, &report_dir, sign_key.as_deref()),
    }
}

fn read(path: &Path) -> Result<reports::Report, String> {
    let path = if path.is_dir() { path.join("report.json") } else { path.to_owned() };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("`{}` is not a certify report.json: {e}", path.display()))
}

fn merge(bundles: &[PathBuf], dir: &Path, sign_key: Option<&Path>) -> ExitCode {
    let sign_key = match super::read_sign_key(sign_key) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let shards = match bundles.iter().map(|b| read(b)).collect::<Result<Vec<_>, _>>() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let report = match reports::merge(shards) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let paths = match reports::write_bundle(&report, dir) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let paths = match reports::write_certificate(dir, sign_key.as_deref()) {
        Ok(certificate) => paths.into_iter().chain([certificate]).collect::<Vec<_>>(),
        Err(e) => return fail(e),
    };
    let s = report.summary;
    out(&format!(
        "{:>12} {} cases: {} passed, {} failed, {} inconclusive, {} skipped",
        "Merged", s.total, s.passed, s.failed, s.inconclusive, s.skipped
    ));
    out(&format!("{:>12} {}", "Report", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")));
    if s.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn html(path: &Path, output: Option<PathBuf>) -> ExitCode {
    let report = match read(path) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let output = output.unwrap_or_else(|| path.with_file_name("report.html"));
    match std::fs::write(&output, reports::report_html(&report)) {
        Ok(()) => {
            out(&format!("{:>12} {}", "Report", output.display()));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot write `{}`: {e}", output.display())),
    }
}

/// `certify verify BUNDLE`: recomputes the certificate from the report and checks the signature.
pub(super) fn verify(bundle: &Path, public_key: Option<&Path>) -> ExitCode {
    let read = |name: &str| {
        let path = bundle.join(name);
        std::fs::read(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
    };
    let (certificate, report) = match (read("certificate.json"), read("report.json")) {
        (Ok(c), Ok(r)) => (c, r),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let certificate: reports::Certificate = match serde_json::from_slice(&certificate) {
        Ok(c) => c,
        Err(e) => {
            return fail(format!("`{}` is not a certify certificate: {e}", bundle.join("certificate.json").display()));
        }
    };
    let key = match public_key.map(std::fs::read_to_string).transpose() {
        Ok(k) => k,
        Err(e) => return fail(format!("--public-key: {e}")),
    };
    match reports::verify(&certificate, &report, key.as_deref()) {
        Ok(()) => {
            let signed = match (&certificate.signature, key.is_some()) {
                (Some(_), true) => " (signature verified)",
                (Some(_), false) => " (signed; give --public-key to check the signature)",
                (None, _) => " (unsigned)",
            };
            out(&format!("{}{signed}", certificate.badge()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {} does not hold: {e}", bundle.join("certificate.json").display());
            ExitCode::FAILURE
        }
    }
}
