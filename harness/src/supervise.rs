//! A supervised run's supervisor side: runs the trials in worker processes (this executable
//! again, with [`WORKER_ENV`] set and its share on stdin), renders their events, and survives
//! their crashes. When a worker dies by a signal, the trials that were running are run again one at
//! a time in a fresh worker, so the one that brings the process down is the one that fails,
//! with the signal and the worker's last log lines as its reason; the rest run on. What a dead
//! worker left (containers, servers) is removed before the next starts.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Instant, SystemTime};

use reports::{CaseRecord, Environment, Report, Summary, Verdict};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::runner::Event;
use crate::worker::{Share, WORKER_ENV, WorkerEvent};

/// Crashes after which the trials not yet run are failed instead of tried again.
const MAX_CRASHES: usize = 5;
/// Log lines of a crashed worker quoted in the failure.
const LOG_TAIL: usize = 12;

/// How a supervised run ended.
pub enum Outcome {
    /// Every trial has a record.
    Report(Box<Report>),
    /// The first worker could not set the run up (it said why on stderr), with its exit code.
    SetupFailed(u8),
    /// Interrupted: the worker was stopped.
    Interrupted,
}

/// What the workers have told so far.
#[derive(Default)]
struct Progress {
    plan: Vec<String>,
    planned: Option<WorkerEvent>,
    records: BTreeMap<String, CaseRecord>,
    running: BTreeSet<String>,
    last_report: Option<Report>,
}

/// What one worker's life ended with.
enum End {
    Done,
    Crashed { signal: String, log_tail: Vec<String> },
    Exited(u8),
    Interrupted,
}

/// The trials that were running when a worker crashed, run again one at a time.
struct Suspicion {
    /// Why the worker died, and its last log lines.
    reason: String,
    /// Every trial that was running.
    trials: Vec<String>,
    /// Those not yet run again.
    pending: Vec<String>,
    /// Whether the crash came back with one of them alone.
    reproduced: bool,
}

/// Runs the trials of `certify <args>` in workers, rendering through `on_event` and printing
/// backends through `on_backend`.
pub async fn run(
    args: Vec<OsString>,
    interrupt: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    on_event: &mut dyn FnMut(Event<'_>),
    on_backend: &mut dyn FnMut(&str, &str, &str),
) -> Outcome {
    let started_at = contract::clock::rfc3339(SystemTime::now());
    let clock = Instant::now();
    let mut progress = Progress::default();
    let mut suspicion: Option<Suspicion> = None;
    let mut crashes = 0;
    loop {
        // After a crash, the trials that were running go first, alone, to find the culprit.
        let share = match &suspicion {
            None => Share { without: progress.records.keys().cloned().collect(), ..Share::default() },
            Some(s) => Share { only: Some(s.pending.iter().cloned().collect()), jobs: Some(1), ..Share::default() },
        };
        let end = match spawn(&args, &share).await {
            Ok(child) => drive(child, &mut progress, interrupt, on_event, on_backend).await,
            Err(e) => {
                eprintln!("error: cannot start a worker process: {e}");
                return Outcome::SetupFailed(2);
            }
        };
        let (signal, log_tail) = match end {
            End::Interrupted => return Outcome::Interrupted,
            End::Exited(code) if progress.planned.is_none() => return Outcome::SetupFailed(code),
            End::Exited(code) => {
                let reason = format!("not run: certify's worker exited with status {code} before it finished");
                fail_unfinished(&mut progress, on_event, &reason);
                break;
            }
            End::Done => match suspicion.take() {
                None => break,
                Some(s) => {
                    acquit_or_doubt(&mut progress, on_event, s);
                    continue;
                }
            },
            End::Crashed { signal, log_tail } => (signal, log_tail),
        };
        crashes += 1;
        let (removed, _) = fixtures::leftovers::clean().await;
        tracing::info!(removed = removed.len(), "removed what the crashed worker left");
        if progress.planned.is_none() {
            eprintln!("error: certify's worker crashed ({signal}) while setting the run up\n{}", log_tail.join("\n"));
            return Outcome::SetupFailed(2);
        }
        let reason = crash_reason(&signal, &log_tail);
        let running: Vec<String> = std::mem::take(&mut progress.running).into_iter().collect();
        match (suspicion.as_mut(), running.as_slice()) {
            // Alone when it died: this trial brought the process down.
            (Some(s), [culprit]) => {
                fail(&mut progress, on_event, culprit, &format!("{reason} (it was the only trial running)"));
                s.reproduced = true;
                s.pending.retain(|t| !progress.records.contains_key(t));
                if s.pending.is_empty() {
                    suspicion = None;
                }
            }
            (None, [_, ..]) => {
                suspicion = Some(Suspicion { reason, trials: running.clone(), pending: running, reproduced: false })
            }
            // No trial running: it died starting up or winding down, so nothing can be traced.
            (_, _) => {
                fail_unfinished(&mut progress, on_event, &format!("not run: {reason}, while no trial was running"));
                break;
            }
        }
        if crashes >= MAX_CRASHES {
            fail_unfinished(&mut progress, on_event, &format!("not run: certify's worker crashed {crashes} times"));
            break;
        }
    }
    Outcome::Report(Box::new(report(progress, started_at, clock)))
}

/// The suspects all ran again alone. If the crash came back, the one it came back with has
/// failed and the others' verdicts stand; if it did not, no trial can be blamed, and none of
/// them may pass: each is inconclusive, with the crash as the reason.
fn acquit_or_doubt(progress: &mut Progress, on_event: &mut dyn FnMut(Event<'_>), suspicion: Suspicion) {
    if suspicion.reproduced {
        return;
    }
    let total = progress.plan.len();
    let others = suspicion.trials.len() - 1;
    for trial in &suspicion.trials {
        let Some(record) = progress.records.get_mut(trial) else { continue };
        if record.verdict == Verdict::Fail {
            continue;
        }
        let alone = match record.verdict {
            Verdict::Pass => "run again alone it passed",
            Verdict::Skipped => "run again alone it was skipped",
            _ => "run again alone it was inconclusive",
        };
        record.verdict = Verdict::Inconclusive;
        if record.rerun.is_none() {
            record.rerun = Some(rerun_command(&progress.planned, trial));
        }
        record.reason = Some(format!(
            "{} (with {others} other trials running); {alone}, so the crash cannot be traced to one trial",
            suspicion.reason
        ));
        let record = record.clone();
        on_event(Event::Finished { done: progress.records.len(), total, record: &record });
    }
}

/// Starts a worker: this executable with the same arguments, its share the first line of its
/// stdin (which stays open: the worker stops when it closes).
async fn spawn(args: &[OsString], share: &Share) -> std::io::Result<(Child, ChildStdin)> {
    let mut line = serde_json::to_vec(share).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        .env(WORKER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("no stdin for the worker"))?;
    stdin.write_all(&line).await?;
    stdin.flush().await?;
    Ok((child, stdin))
}

/// Follows one worker until it ends: its events rendered, its log passed on to stderr.
async fn drive(
    (mut child, _input): (Child, ChildStdin),
    progress: &mut Progress,
    interrupt: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    on_event: &mut dyn FnMut(Event<'_>),
    on_backend: &mut dyn FnMut(&str, &str, &str),
) -> End {
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return End::Exited(2);
    };
    let log = tokio::spawn(async move {
        let mut tail: Vec<String> = Vec::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{line}");
            tail.push(line);
            if tail.len() > LOG_TAIL {
                tail.remove(0);
            }
        }
        tail
    });
    let mut events = BufReader::new(stdout).lines();
    let mut done = false;
    loop {
        tokio::select! {
            line = events.next_line() => match line {
                Ok(Some(line)) => done |= take(&line, progress, on_event, on_backend),
                _ => break,
            },
            () = interrupt.as_mut() => {
                // The worker stops its backends on SIGTERM, as a run does.
                if let Some(pid) = child.id() {
                    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
                }
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await;
                return End::Interrupted;
            }
        }
    }
    let status = child.wait().await;
    let log_tail = log.await.unwrap_or_default();
    match status {
        Ok(s) if done && s.code().is_some() => End::Done,
        Ok(s) => match (s.signal(), s.code()) {
            (Some(signal), _) => End::Crashed { signal: signal_name(signal), log_tail },
            (None, Some(code)) => End::Exited(u8::try_from(code).unwrap_or(2)),
            (None, None) => End::Exited(2),
        },
        Err(e) => End::Crashed { signal: format!("lost ({e})"), log_tail },
    }
}

/// Takes one event line; true when it was the worker's last (`done`).
fn take(
    line: &str,
    progress: &mut Progress,
    on_event: &mut dyn FnMut(Event<'_>),
    on_backend: &mut dyn FnMut(&str, &str, &str),
) -> bool {
    let Ok(event) = serde_json::from_str::<WorkerEvent>(line) else {
        // Not an event: something printed on stdout; pass it on.
        println!("{line}");
        return false;
    };
    match event {
        WorkerEvent::Backend { kind, provider, host } => on_backend(&kind, &provider, &host),
        planned @ WorkerEvent::Planned { .. } => {
            if progress.planned.is_none() {
                if let WorkerEvent::Planned { trials, .. } = &planned {
                    progress.plan = trials.clone();
                    on_event(Event::Started { trials });
                }
                progress.planned = Some(planned);
            }
        }
        WorkerEvent::Started { trial } => {
            if !progress.records.contains_key(&trial) {
                on_event(Event::Began { trial: &trial });
                progress.running.insert(trial);
            }
        }
        WorkerEvent::Finished { record } => {
            progress.running.remove(&record.trial);
            record_one(progress, on_event, *record);
        }
        WorkerEvent::Done { report } => {
            progress.last_report = Some(*report);
            return true;
        }
    }
    false
}

fn record_one(progress: &mut Progress, on_event: &mut dyn FnMut(Event<'_>), record: CaseRecord) {
    let total = progress.plan.len();
    progress.records.insert(record.trial.clone(), record.clone());
    on_event(Event::Finished { done: progress.records.len(), total, record: &record });
}

/// Fails `trial` with `reason`, keeping what the plan says of it.
fn fail(progress: &mut Progress, on_event: &mut dyn FnMut(Event<'_>), trial: &str, reason: &str) {
    let case = trial.split_once("::").map(|(_, c)| c);
    let component_driver = trial.split_once("::").map_or(trial, |(c, _)| c);
    let (component, driver) = component_driver.split_once('@').unwrap_or((component_driver, "in-process"));
    let known = suites::all_cases().into_iter().find(|c| Some(c.id) == case);
    let record = CaseRecord {
        trial: trial.to_owned(),
        id: case.unwrap_or_default().to_owned(),
        block: known.as_ref().map(|c| c.block.prefix().to_owned()).unwrap_or_default(),
        could_not_run: false,
        component: component.to_owned(),
        driver: driver.to_owned(),
        verdict: Verdict::Fail,
        reason: Some(reason.to_owned()),
        duration_ms: 0.0,
        rule: known.as_ref().map(|c| c.rule.to_owned()).unwrap_or_default(),
        source: known.as_ref().map(|c| c.source.to_owned()).unwrap_or_default(),
        features: known
            .as_ref()
            .map(|c| c.claims().iter().map(|x| x.as_str().to_owned()).collect())
            .unwrap_or_default(),
        tags: known.as_ref().map(|c| c.tags.iter().map(|t| (*t).to_owned()).collect()).unwrap_or_default(),
        rerun: Some(rerun_command(&progress.planned, trial)),
        evidence: None,
    };
    record_one(progress, on_event, record);
}

/// The command that reruns `trial` alone.
fn rerun_command(planned: &Option<WorkerEvent>, trial: &str) -> String {
    match planned {
        Some(WorkerEvent::Planned { rerun_prefix, .. }) => format!("{rerun_prefix} --exact '{trial}'"),
        _ => format!("certify run --exact '{trial}'"),
    }
}

/// Fails every planned trial without a record.
fn fail_unfinished(progress: &mut Progress, on_event: &mut dyn FnMut(Event<'_>), reason: &str) {
    let unfinished: Vec<String> =
        progress.plan.iter().filter(|t| !progress.records.contains_key(*t)).cloned().collect();
    for trial in unfinished {
        fail(progress, on_event, &trial, reason);
    }
}

fn crash_reason(signal: &str, log_tail: &[String]) -> String {
    let tail = match log_tail.is_empty() {
        true => String::new(),
        false => format!("; its last log lines:\n{}", log_tail.join("\n")),
    };
    format!(
        "certify's worker process was killed by {signal} while this trial ran, most likely by a native library of the component{tail}"
    )
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    name.to_owned()
}

/// The run's report: every record in plan order, under the last worker's report's heading.
fn report(progress: Progress, started_at: String, clock: Instant) -> Report {
    let Progress { plan, planned, mut records, last_report, .. } = progress;
    let cases: Vec<CaseRecord> = plan.iter().filter_map(|t| records.remove(t)).collect();
    let (source, components) = match planned {
        Some(WorkerEvent::Planned { source, components, .. }) => (source, components),
        _ => (String::new(), Vec::new()),
    };
    let base = last_report.unwrap_or_else(|| Report {
        schema: reports::SCHEMA_VERSION.into(),
        spec: source,
        seed: String::new(),
        started_at: started_at.clone(),
        duration_ms: 0.0,
        environment: Environment {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            certify_version: env!("CARGO_PKG_VERSION").into(),
            spec_digest: None,
        },
        components,
        backends: Vec::new(),
        summary: Summary::default(),
        cases: Vec::new(),
    });
    Report {
        started_at,
        duration_ms: clock.elapsed().as_secs_f64() * 1000.0,
        summary: Summary::of(&cases),
        cases,
        ..base
    }
}
