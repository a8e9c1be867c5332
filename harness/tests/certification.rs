//! Certification as a `cargo test` target (libtest-mimic): one trial per component × driver ×
//! case of the spec in `CERTIFY_SPEC` (default: the built-in in-memory spec). Works under
//! `cargo test` and `cargo nextest run`; filters, `--list`, `--exact` and `--skip` behave as
//! usual. A skipped case is ignored with its reason; an inconclusive one fails, because it is
//! not a pass. Listing starts nothing: the session opens when the first trial runs.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

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
    // Named from the spec alone: `--list` (what `cargo nextest list` runs) starts nothing. The
    // session (backends, the reference runtime) opens with the first trial that runs, once per
    // process; under nextest each trial is a process of its own (see the README for sharing
    // backends across them with `--backends external`).
    let catalogue = harness::Catalogue::builtin();
    let named = plan::plan(&plan::unbuilt_targets(&spec, &catalogue), catalogue.suites(), &Filter::default());
    let shared: Arc<OnceLock<Result<Planned, String>>> = Arc::new(OnceLock::new());
    let spec = Arc::new(spec);
    let trials = named
        .into_iter()
        .map(|trial| {
            let (runtime, shared, spec) = (Arc::clone(&runtime), Arc::clone(&shared), Arc::clone(&spec));
            let (name, kind) = (trial.name.clone(), trial.target.driver.as_str());
            Trial::ignorable_test(name.clone(), move || {
                let planned =
                    shared.get_or_init(|| open(&runtime, &spec)).as_ref().map_err(|e| Failed::from(e.clone()))?;
                let (index, trial) = planned
                    .take(&name)
                    .ok_or_else(|| Failed::from(format!("`{name}` is not in the plan the session made")))?;
                let rule = trial.case.rule;
                let namespace = format!("certify-{}-{index}", planned.run_id);
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
    // Dropping the session stops the reference runtime and every backend it started.
    drop(shared);
    conclusion.exit_code()
}

/// The session, once open, and its plan, each trial taken by the test that runs it.
struct Planned {
    _session: Session,
    run_id: String,
    trials: Mutex<HashMap<String, (usize, plan::Trial)>>,
}

impl Planned {
    fn take(&self, name: &str) -> Option<(usize, plan::Trial)> {
        self.trials.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name)
    }
}

fn open(runtime: &tokio::runtime::Runtime, spec: &Spec) -> Result<Planned, String> {
    let options = harness::SessionOptions::from_env()?;
    let source = Source::Spec(spec.clone());
    let session = runtime
        .block_on(Session::open(source, &reference_runtime::builtin_registry(), &options))
        .map_err(|e| e.to_string())?;
    let trials = plan::plan(&session.targets, session.catalogue.suites(), &Filter::default())
        .into_iter()
        .enumerate()
        .map(|(index, trial)| (trial.name.clone(), (index, trial)))
        .collect();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    Ok(Planned { _session: session, run_id, trials: Mutex::new(trials) })
}
