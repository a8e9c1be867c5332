//! Certification as a `cargo test` target (libtest-mimic): one trial per component × driver ×
//! case of the spec in `CERTIFY_SPEC` (default: the built-in in-memory spec). Works under
//! `cargo test` and `cargo nextest run`; filters, `--list`, `--exact` and `--skip` behave as
//! usual. A skipped case is ignored with its reason; an inconclusive one fails, because it is
//! not a pass.

use std::process::ExitCode;
use std::sync::Arc;

use harness::plan::{self, Filter};
use harness::{Session, Source, Spec};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use reports::Verdict;

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let spec = match std::env::var("CERTIFY_SPEC") {
        Ok(path) if !path.is_empty() => Spec::load(std::path::Path::new(&path)),
        _ => Spec::builtin(),
    };
    let spec = match spec {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let options = match harness::SessionOptions::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let session =
        match runtime.block_on(Session::open(Source::Spec(spec), &reference_runtime::builtin_registry(), &options)) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let planned = plan::plan(&session.targets, session.catalogue.suites(), &Filter::default());
    let trials = planned
        .into_iter()
        .enumerate()
        .map(|(index, trial)| {
            let runtime = Arc::clone(&runtime);
            let namespace = format!("certify-{run_id}-{index}");
            let kind = trial.target.driver.as_str();
            Trial::ignorable_test(trial.name.clone(), move || {
                let rule = trial.case.rule;
                let record = runtime.block_on(harness::runner::run_one(trial, namespace));
                let reason = record.reason.unwrap_or_default();
                match record.verdict {
                    Verdict::Pass => Ok(Completion::Completed),
                    Verdict::Skipped => Ok(Completion::Ignored { reason: Some(reason) }),
                    Verdict::Fail => Err(Failed::from(format!("rule: {rule}\nfailure: {reason}"))),
                    Verdict::Inconclusive => {
                        Err(Failed::from(format!("rule: {rule}\ninconclusive (not a pass): {reason}")))
                    }
                }
            })
            .with_kind(kind)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    drop(session);
    conclusion.exit_code()
}
