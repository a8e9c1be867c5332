//! Runs trials and emits events; it never prints. The terminal, `report.json`, JUnit and the
//! Markdown summary all consume the same events and records.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use reports::{CaseRecord, Verdict};
use suites::{Ctx, Evidence, Finding};

use crate::driver::DriverKind;
use crate::plan::Trial;

/// What the runner reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The run begins.
    Started {
        /// The trials planned, in order.
        trials: &'a [String],
    },
    /// A trial's body is about to run (reported by a supervised run).
    Began {
        /// The trial.
        trial: &'a str,
    },
    /// A trial finished; `done` of `total` have.
    Finished {
        /// Trials finished so far, this one included.
        done: usize,
        /// Trials planned.
        total: usize,
        /// Its record.
        record: &'a CaseRecord,
    },
}

/// Runs `trials`, `concurrency` at a time, calling `on_begin` with each one's name right
/// before it runs and `on_event` as each finishes, and returns the records in plan order.
/// `run_id` makes every trial's keys unique; `rerun` gives the command that reruns one trial.
pub async fn execute(
    trials: Vec<Trial>,
    concurrency: usize,
    run_id: &str,
    rerun: &dyn Fn(&str) -> String,
    on_event: &mut dyn FnMut(Event<'_>),
    on_begin: &(dyn Fn(&str) + Sync),
) -> Vec<CaseRecord> {
    let total = trials.len();
    let names: Vec<String> = trials.iter().map(|t| t.name.clone()).collect();
    on_event(Event::Started { trials: &names });
    // Fault scenarios stop backends and cut networks: they run after everything else, alone.
    let (faults, others): (Vec<_>, Vec<_>) =
        trials.into_iter().enumerate().partition(|(_, t)| t.target.driver == DriverKind::Faults);
    let mut results: Vec<Option<CaseRecord>> = vec![None; total];
    let mut done = 0;
    for (phase, width) in [(others, concurrency.max(1)), (faults, 1)] {
        let runs = phase.into_iter().map(|(index, trial)| {
            let namespace = format!("certify-{run_id}-{index}");
            async move {
                // Told before the body runs, so a crash is traced to the trials that were running.
                on_begin(&trial.name);
                (index, run_one(trial, namespace).await)
            }
        });
        let mut stream = futures::stream::iter(runs).buffer_unordered(width);
        while let Some((index, mut record)) = stream.next().await {
            done += 1;
            if record.verdict != Verdict::Pass {
                record.rerun = Some(rerun(&record.trial));
            }
            on_event(Event::Finished { done, total, record: &record });
            results[index] = Some(record);
        }
    }
    results.into_iter().flatten().collect()
}

/// Runs one trial against its driver; `namespace` must be unique to the trial.
pub async fn run_one(trial: Trial, namespace: String) -> CaseRecord {
    let started = Instant::now();
    let evidence = Evidence::default();
    let (verdict, reason) = if let Some(skip) = &trial.skip {
        (Verdict::Skipped, Some(skip.reason.clone()))
    } else if let Some(crate::plan::Blocked::SetupFailed(reason)) = &trial.target.blocked {
        (Verdict::Fail, Some(reason.clone()))
    } else {
        let run = async {
            let mut handles = trial.target.handles.clone();
            // The trial's own setup (pub/sub leases its topics) counts against its timeout.
            if let Some(prepare) = trial.prepare {
                let own = prepare(handles.clone(), namespace.clone()).await?;
                handles = handles.merged(&own);
            }
            let ctx = Ctx {
                handles,
                driver: trial.target.driver.info(),
                claims: trial.target.claims.clone(),
                settings: trial.target.settings.clone(),
                component: trial.target.component.clone(),
                namespace,
                evidence: evidence.clone(),
            };
            (trial.case.body)(ctx).await
        };
        let body = AssertUnwindSafe(run).catch_unwind();
        match tokio::time::timeout(trial.case.timeout, body).await {
            Err(_) => (Verdict::Fail, Some(format!("timed out after {} s", trial.case.timeout.as_secs()))),
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
                (Verdict::Fail, Some(format!("the case panicked: {}", message.unwrap_or_default())))
            }
            Ok(Ok(Ok(()))) => (Verdict::Pass, None),
            Ok(Ok(Err(Finding::Fail(r)))) => (Verdict::Fail, Some(r)),
            Ok(Ok(Err(Finding::Inconclusive(r)))) => (Verdict::Inconclusive, Some(r)),
            Ok(Ok(Err(Finding::Skip(r)))) => (Verdict::Skipped, Some(r)),
        }
    };
    CaseRecord {
        trial: trial.name,
        id: trial.case.id.to_owned(),
        block: trial.case.block.prefix().to_owned(),
        could_not_run: trial.skip.as_ref().is_some_and(|s| s.could_not_run),
        component: trial.target.component,
        driver: trial.target.driver.as_str().to_owned(),
        verdict,
        reason,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        rule: trial.case.rule.to_owned(),
        source: trial.case.source.to_owned(),
        features: trial.case.claims().iter().map(|c| c.as_str().to_owned()).collect(),
        tags: trial.case.tags.iter().map(|t| (*t).to_owned()).collect(),
        rerun: None,
        evidence: evidence.take(),
    }
}
