//! `certify report html REPORT.json`: draws a bundle's `report.html` again from its
//! `report.json` (any bundle, merged ones included).

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
}

/// Runs `command`.
pub(super) fn report(command: ReportCommand) -> ExitCode {
    match command {
        ReportCommand::Html { report, output } => html(&report, output),
    }
}

fn html(path: &Path, output: Option<PathBuf>) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot read `{}`: {e}", path.display())),
    };
    let report: reports::Report = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => return fail(format!("`{}` is not a certify report.json: {e}", path.display())),
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
