//! The scheduler behind the Jobs API (actors-workflows-jobs.md §3): jobs by name, each
//! planned once ([`schedule::Plan`]) and run by a task of its own that triggers the target at
//! each due time and retries a failed trigger per the job's failure policy (by default every
//! second, 3 retries). A job that has fired its last trigger is gone, as in daprd.
//!
//! Jobs live in memory: they do not survive a restart of the runtime. The `jobs.in-memory`
//! component is a scheduler of its own (certify drives it in-process as [`LocalJobs`]); a
//! runtime serving one schedules on it, otherwise on a scheduler of its own.

pub mod data;
mod local;
pub mod schedule;

pub use local::{LocalJobs, job_of, spec_of};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use runtime_api::common::job_failure_policy::Policy;
use runtime_api::runtime::Job;

use schedule::{Plan, Timing};

/// Where a job's triggers go: the app.
#[async_trait]
pub trait JobTarget: Send + Sync {
    /// Hands one trigger of `job` over; an error is a failed trigger, retried per the policy.
    async fn trigger(&self, job: &Job) -> Result<(), String>;
}

/// Why a job was not scheduled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    /// The job's name is taken and `overwrite` was not asked for.
    #[error("job `{0}` already exists")]
    Exists(String),
    /// The name cannot name a job.
    #[error(
        "invalid job name {0:?}: it may not contain `/`, `\\`, `#`, `?`, NUL or a newline, nor pass 512 characters"
    )]
    Name(String),
    /// Its timing does not parse or does not hold together.
    #[error("{0}")]
    Timing(String),
}

struct Scheduled {
    job: Job,
    generation: u64,
    task: tokio::task::JoinHandle<()>,
}

/// The jobs of one runtime.
#[derive(Default)]
pub struct Scheduler {
    jobs: Mutex<HashMap<String, Scheduled>>,
    generations: std::sync::atomic::AtomicU64,
}

fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= 512 && !name.contains(['/', '\\', '#', '?', '\0', '\n', '\r'])
}

impl Scheduler {
    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Scheduled>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Schedules `job` to trigger `target`, replacing a job of the same name only with
    /// `overwrite`.
    pub fn schedule(
        self: &Arc<Self>,
        job: Job,
        overwrite: bool,
        target: Arc<dyn JobTarget>,
    ) -> Result<(), ScheduleError> {
        if !valid_name(&job.name) {
            return Err(ScheduleError::Name(job.name));
        }
        let timing = Timing {
            schedule: job.schedule.as_deref(),
            repeats: job.repeats,
            due_time: job.due_time.as_deref(),
            ttl: job.ttl.as_deref(),
        };
        let plan = Plan::new(&timing, SystemTime::now()).map_err(ScheduleError::Timing)?;
        let mut jobs = self.jobs();
        if !overwrite && jobs.contains_key(&job.name) {
            return Err(ScheduleError::Exists(job.name));
        }
        let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let task = tokio::spawn(Arc::clone(self).run(job.clone(), plan, target, generation));
        if let Some(earlier) = jobs.insert(job.name.clone(), Scheduled { job, generation, task }) {
            earlier.task.abort();
        }
        Ok(())
    }

    /// The job named `name`, while it has triggers left.
    pub fn get(&self, name: &str) -> Option<Job> {
        self.jobs().get(name).map(|s| s.job.clone())
    }

    /// Every job, by name.
    pub fn list(&self) -> Vec<Job> {
        let mut jobs: Vec<Job> = self.jobs().values().map(|s| s.job.clone()).collect();
        jobs.sort_by(|a, b| a.name.cmp(&b.name));
        jobs
    }

    /// Deletes `name`: no trigger after this. Unknown names are fine.
    pub fn delete(&self, name: &str) {
        if let Some(gone) = self.jobs().remove(name) {
            gone.task.abort();
        }
    }

    /// Deletes every job whose name starts with `prefix`.
    pub fn delete_prefix(&self, prefix: &str) {
        self.jobs().retain(|name, s| {
            let keep = !name.starts_with(prefix);
            if !keep {
                s.task.abort();
            }
            keep
        });
    }

    /// Stops every job (the runtime is shutting down).
    pub fn stop(&self) {
        for (_, s) in self.jobs().drain() {
            s.task.abort();
        }
    }

    async fn run(self: Arc<Self>, job: Job, mut plan: Plan, target: Arc<dyn JobTarget>, generation: u64) {
        while let Some(at) = plan.take() {
            // In steps of a day at most: tokio's timer does not reach years ahead, and the
            // wall clock may move under a long wait.
            while let Ok(wait) = at.duration_since(SystemTime::now()) {
                if wait.is_zero() {
                    break;
                }
                tokio::time::sleep(wait.min(Duration::from_secs(86_400))).await;
            }
            let span = tracing::debug_span!("job trigger", job = %job.name);
            let _ = tracing::Instrument::instrument(deliver(&job, target.as_ref()), span).await;
        }
        let mut jobs = self.jobs();
        if jobs.get(&job.name).is_some_and(|s| s.generation == generation) {
            jobs.remove(&job.name);
        }
    }
}

/// One trigger, retried per the job's failure policy.
async fn deliver(job: &Job, target: &dyn JobTarget) {
    let (interval, max_retries) = match job.failure_policy.as_ref().and_then(|p| p.policy.as_ref()) {
        Some(Policy::Drop(_)) => (Duration::ZERO, Some(0)),
        Some(Policy::Constant(c)) => {
            let interval = c.interval.and_then(|d| Duration::try_from(d).ok()).unwrap_or(Duration::ZERO);
            (interval, c.max_retries)
        }
        None => (Duration::from_secs(1), Some(3)),
    };
    let mut retries = 0u32;
    loop {
        match target.trigger(job).await {
            Ok(()) => return,
            Err(why) if max_retries.is_some_and(|m| retries >= m) => {
                tracing::debug!(job = %job.name, error = %why, retries, "giving up on this trigger, as its policy says");
                return;
            }
            Err(why) => {
                tracing::debug!(job = %job.name, error = %why, "trigger failed; retrying");
                retries += 1;
                tokio::time::sleep(interval).await;
            }
        }
    }
}
