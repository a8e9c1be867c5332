//! The scheduler behind the Jobs API (actors-workflows-jobs.md §3): jobs by name, each
//! planned once ([`schedule::Plan`]) and run by a task of its own that triggers the target at
//! each due time and retries a failed trigger per the job's failure policy (by default every
//! second, 3 retries). A job that has fired its last trigger is gone, as in daprd.
//!
//! A scheduler over a [`JobStore`] keeps its jobs there, and one started over the same store
//! takes them up again ([`Scheduler::restore`]): that is what makes jobs durable (J6). The
//! `jobs.in-memory` component keeps them in an in-memory store of its own (certify drives it
//! in-process as [`LocalJobs`], restarts included); the runtime schedules on a served `jobs.*`
//! component's scheduler, else keeps its jobs in the actor state store, else in memory.

pub mod data;
pub mod durable;
mod local;
pub mod schedule;

pub use durable::{JobStore, Kept};
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
    /// The job could not be kept: it is not scheduled.
    #[error("{0}")]
    Store(String),
}

struct Scheduled {
    kept: Kept,
    generation: u64,
    task: tokio::task::JoinHandle<()>,
}

/// The jobs of one runtime.
#[derive(Default)]
pub struct Scheduler {
    jobs: Mutex<HashMap<String, Scheduled>>,
    generations: std::sync::atomic::AtomicU64,
    store: Option<Arc<JobStore>>,
}

fn timing(job: &Job) -> Timing<'_> {
    Timing {
        schedule: job.schedule.as_deref(),
        repeats: job.repeats,
        due_time: job.due_time.as_deref(),
        ttl: job.ttl.as_deref(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= 512 && !name.contains(['/', '\\', '#', '?', '\0', '\n', '\r'])
}

impl Scheduler {
    /// A scheduler keeping its jobs in `store`.
    pub fn durable(store: Arc<JobStore>) -> Arc<Self> {
        Arc::new(Self { store: Some(store), ..Self::default() })
    }

    /// Where it keeps its jobs, if anywhere.
    pub fn store(&self) -> Option<&Arc<JobStore>> {
        self.store.as_ref()
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Scheduled>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Schedules `job` to trigger `target`, replacing a job of the same name only with
    /// `overwrite`.
    pub async fn schedule(
        self: &Arc<Self>,
        job: Job,
        overwrite: bool,
        target: Arc<dyn JobTarget>,
    ) -> Result<(), ScheduleError> {
        if !valid_name(&job.name) {
            return Err(ScheduleError::Name(job.name));
        }
        let created = SystemTime::now();
        let plan = Plan::new(&timing(&job), created).map_err(ScheduleError::Timing)?;
        let name = job.name.clone();
        self.start(Kept { job, created, fired: 0 }, plan, target, overwrite)?;
        if let Err(why) = self.keep().await {
            self.forget(&name);
            return Err(ScheduleError::Store(why));
        }
        Ok(())
    }

    /// Takes up the jobs kept in its store (a restarted runtime), triggering `target`; answers
    /// how many. Triggers that fell due meanwhile fire at once, once.
    pub async fn restore(self: &Arc<Self>, target: Arc<dyn JobTarget>) -> Result<usize, String> {
        let Some(store) = &self.store else { return Ok(0) };
        let kept = store.load().await?;
        let now = SystemTime::now();
        let mut restored = 0;
        for mut kept in kept {
            let mut plan = match Plan::new(&timing(&kept.job), kept.created) {
                Ok(plan) => plan,
                Err(why) => {
                    tracing::warn!(job = %kept.job.name, %why, "a kept job no longer parses; dropped");
                    continue;
                }
            };
            for _ in 0..kept.fired {
                plan.take();
            }
            kept.fired += plan.catch_up(now);
            if self.start(kept, plan, Arc::clone(&target), false).is_ok() {
                restored += 1;
            }
        }
        Ok(restored)
    }

    /// Runs `kept` by `plan`, in place of any job of its name only with `overwrite`.
    fn start(
        self: &Arc<Self>,
        kept: Kept,
        plan: Plan,
        target: Arc<dyn JobTarget>,
        overwrite: bool,
    ) -> Result<(), ScheduleError> {
        let mut jobs = self.jobs();
        let name = kept.job.name.clone();
        if !overwrite && jobs.contains_key(&name) {
            return Err(ScheduleError::Exists(name));
        }
        let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let task = tokio::spawn(Arc::clone(self).run(kept.job.clone(), plan, target, generation));
        if let Some(earlier) = jobs.insert(name, Scheduled { kept, generation, task }) {
            earlier.task.abort();
        }
        Ok(())
    }

    /// Writes every job to the store, if it has one.
    async fn keep(&self) -> Result<(), String> {
        let Some(store) = &self.store else { return Ok(()) };
        store.save(|| self.jobs().values().map(|s| s.kept.clone()).collect()).await
    }

    /// [`Scheduler::keep`], where a failure can only be logged.
    async fn keep_or_warn(&self) {
        if let Err(why) = self.keep().await {
            tracing::warn!(%why, "the jobs could not be kept; a restart would not see this change");
        }
    }

    fn forget(&self, name: &str) -> bool {
        let gone = self.jobs().remove(name);
        gone.map(|s| s.task.abort()).is_some()
    }

    /// The job named `name`, while it has triggers left.
    pub fn get(&self, name: &str) -> Option<Job> {
        self.jobs().get(name).map(|s| s.kept.job.clone())
    }

    /// Every job, by name.
    pub fn list(&self) -> Vec<Job> {
        let mut jobs: Vec<Job> = self.jobs().values().map(|s| s.kept.job.clone()).collect();
        jobs.sort_by(|a, b| a.name.cmp(&b.name));
        jobs
    }

    /// Deletes `name`: no trigger after this. Unknown names are fine.
    pub async fn delete(&self, name: &str) {
        if self.forget(name) {
            self.keep_or_warn().await;
        }
    }

    /// Deletes every job whose name starts with `prefix`.
    pub async fn delete_prefix(&self, prefix: &str) {
        self.jobs().retain(|name, s| {
            let keep = !name.starts_with(prefix);
            if !keep {
                s.task.abort();
            }
            keep
        });
        self.keep_or_warn().await;
    }

    /// Stops running every job (the runtime is shutting down); the store keeps them.
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
            if let Some(s) = self.jobs().get_mut(&job.name).filter(|s| s.generation == generation) {
                s.kept.fired += 1;
            }
            self.keep_or_warn().await;
        }
        let done = {
            let mut jobs = self.jobs();
            let ours = jobs.get(&job.name).is_some_and(|s| s.generation == generation);
            ours && jobs.remove(&job.name).is_some()
        };
        if done {
            self.keep_or_warn().await;
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
