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
pub use local::{LocalJobs, job_of, policy_from, spec_of};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use contract::SharedClock;
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

/// The jobs of one runtime, timed by its clock.
pub struct Scheduler {
    jobs: Mutex<HashMap<String, Scheduled>>,
    generations: AtomicU64,
    store: Option<Arc<JobStore>>,
    clock: SharedClock,
    /// Held while the jobs change and while they are written, so a write never misses a
    /// change made before it, nor one made meanwhile.
    changing: tokio::sync::Mutex<()>,
    /// Set by [`Scheduler::stop`]: nothing starts and nothing is written after it, so a
    /// stopping runtime leaves its store as it was.
    stopped: AtomicBool,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self {
            jobs: Mutex::default(),
            generations: AtomicU64::default(),
            store: None,
            clock: contract::system_clock(),
            changing: tokio::sync::Mutex::new(()),
            stopped: AtomicBool::new(false),
        }
    }
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

    /// A scheduler timed by `clock` (a manual one in tests), keeping its jobs in `store` if any.
    pub fn timed_by(clock: SharedClock, store: Option<Arc<JobStore>>) -> Arc<Self> {
        Arc::new(Self { store, clock, ..Self::default() })
    }

    /// The clock it is timed by.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
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
        let created = self.clock.now();
        let plan = Plan::new(&timing(&job), created).map_err(ScheduleError::Timing)?;
        let _turn = self.changing.lock().await;
        if !overwrite && self.jobs().contains_key(&job.name) {
            return Err(ScheduleError::Exists(job.name));
        }
        // Kept first: a job the store refused is not scheduled either.
        let kept = Kept { job, created, fired: 0, next: plan.next() };
        self.write(Some(&kept)).await.map_err(ScheduleError::Store)?;
        self.start(kept, plan, target);
        Ok(())
    }

    /// Takes up the jobs kept in its store (a restarted runtime), triggering `target`; answers
    /// how many. Triggers that fell due meanwhile fire at once, once.
    pub async fn restore(self: &Arc<Self>, target: Arc<dyn JobTarget>) -> Result<usize, String> {
        let Some(store) = &self.store else { return Ok(0) };
        let _turn = self.changing.lock().await;
        let kept = store.load().await?;
        let now = self.clock.now();
        let mut restored = 0;
        for mut kept in kept {
            if self.stopped.load(Ordering::SeqCst) || self.jobs().contains_key(&kept.job.name) {
                continue;
            }
            let mut plan = match Plan::resume(&timing(&kept.job), kept.created, kept.fired, kept.next) {
                Ok(plan) => plan,
                Err(why) => {
                    tracing::warn!(job = %kept.job.name, %why, "a kept job no longer parses; dropped");
                    continue;
                }
            };
            kept.fired += plan.catch_up(now);
            self.start(kept, plan, Arc::clone(&target));
            restored += 1;
        }
        Ok(restored)
    }

    /// Runs `kept` by `plan`, in place of any job of its name (whose task stops).
    fn start(self: &Arc<Self>, kept: Kept, plan: Plan, target: Arc<dyn JobTarget>) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let mut jobs = self.jobs();
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let task = tokio::spawn(Arc::clone(self).run(kept.job.clone(), plan, target, generation));
        if let Some(earlier) = jobs.insert(kept.job.name.clone(), Scheduled { kept, generation, task }) {
            earlier.task.abort();
        }
    }

    /// Writes every job (with `adding` in place of its namesake) to the store, if it has one;
    /// the caller holds [`Scheduler::changing`]. Nothing is written once stopped.
    async fn write(&self, adding: Option<&Kept>) -> Result<(), String> {
        let Some(store) = &self.store else { return Ok(()) };
        let snapshot = || {
            if self.stopped.load(Ordering::SeqCst) {
                return None;
            }
            let jobs = self.jobs();
            let others = jobs.values().map(|s| &s.kept).filter(|k| adding.is_none_or(|a| a.job.name != k.job.name));
            Some(others.chain(adding).cloned().collect())
        };
        store.save(snapshot).await
    }

    /// Writes every job, where a failure can only be logged.
    async fn keep_or_warn(&self) {
        let _turn = self.changing.lock().await;
        if let Err(why) = self.write(None).await {
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
        let _turn = self.changing.lock().await;
        if self.forget(name)
            && let Err(why) = self.write(None).await
        {
            tracing::warn!(%why, job = name, "the deletion could not be kept; a restart would bring the job back");
        }
    }

    /// Deletes every job whose name starts with `prefix`.
    pub async fn delete_prefix(&self, prefix: &str) {
        let _turn = self.changing.lock().await;
        self.jobs().retain(|name, s| {
            let keep = !name.starts_with(prefix);
            if !keep {
                s.task.abort();
            }
            keep
        });
        if let Err(why) = self.write(None).await {
            tracing::warn!(%why, prefix, "the deletions could not be kept; a restart would bring the jobs back");
        }
    }

    /// Stops running every job (the runtime is shutting down); the store keeps them as they
    /// are: nothing is written after this.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for (_, s) in self.jobs().drain() {
            s.task.abort();
        }
    }

    async fn run(self: Arc<Self>, job: Job, mut plan: Plan, target: Arc<dyn JobTarget>, generation: u64) {
        while let Some(at) = plan.take() {
            // In steps of a day at most: tokio's timer does not reach years ahead, and the
            // wall clock may move under a long wait.
            while let Ok(wait) = at.duration_since(self.clock.now()) {
                if wait.is_zero() {
                    break;
                }
                self.clock.sleep(wait.min(Duration::from_secs(86_400))).await;
            }
            let span = tracing::debug_span!("job trigger", job = %job.name);
            let _ = tracing::Instrument::instrument(deliver(&job, target.as_ref(), &self.clock), span).await;
            if let Some(s) = self.jobs().get_mut(&job.name).filter(|s| s.generation == generation) {
                s.kept.fired += 1;
                s.kept.next = plan.next();
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
async fn deliver(job: &Job, target: &dyn JobTarget, clock: &SharedClock) {
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
                clock.sleep(interval).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The timing rules (J1, J2, J4) on a manual clock: exact, and in no time.

    use std::time::SystemTime;

    use contract::{Clock, ManualClock};
    use runtime_api::common::{JobFailurePolicy, JobFailurePolicyConstant};

    use super::*;

    /// Records when (on the clock) each trigger came; fails them all when told to.
    struct Recorder {
        clock: ManualClock,
        fail: bool,
        seen: Mutex<Vec<SystemTime>>,
    }

    #[async_trait]
    impl JobTarget for Recorder {
        async fn trigger(&self, _: &Job) -> Result<(), String> {
            self.seen.lock().unwrap_or_else(PoisonError::into_inner).push(self.clock.now());
            if self.fail { Err("failing on purpose".into()) } else { Ok(()) }
        }
    }

    fn setup(fail: bool) -> (ManualClock, Arc<Scheduler>, Arc<Recorder>) {
        let clock = ManualClock::new();
        let scheduler = Scheduler::timed_by(clock.shared(), None);
        let recorder = Arc::new(Recorder { clock: clock.clone(), fail, seen: Mutex::default() });
        (clock, scheduler, recorder)
    }

    /// Moves the clock in steps of `step`, `n` times, letting the job tasks run after each.
    async fn tick(clock: &ManualClock, step: Duration, n: u32) {
        for _ in 0..n {
            clock.advance(step);
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        }
    }

    fn offsets(recorder: &Recorder, from: SystemTime) -> Vec<Duration> {
        let seen = recorder.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter().map(|t| t.duration_since(from).unwrap_or_default()).collect()
    }

    fn job(name: &str) -> Job {
        Job { name: name.into(), ..Job::default() }
    }

    #[tokio::test]
    async fn a_due_time_fires_once_at_its_time() {
        let (clock, scheduler, recorder) = setup(false);
        let start = clock.now();
        let due = Job { due_time: Some("2s".into()), ..job("once") };
        scheduler.schedule(due, false, Arc::clone(&recorder) as Arc<dyn JobTarget>).await.expect("scheduled");
        tick(&clock, Duration::from_millis(100), 19).await;
        assert!(offsets(&recorder, start).is_empty(), "fired before its due time");
        tick(&clock, Duration::from_millis(100), 30).await;
        assert_eq!(offsets(&recorder, start), vec![Duration::from_secs(2)]);
        assert!(scheduler.get("once").is_none(), "gone once fired");
    }

    #[tokio::test]
    async fn a_schedule_fires_a_period_after_creation_as_often_as_repeats_says() {
        let (clock, scheduler, recorder) = setup(false);
        let start = clock.now();
        let every = Job { schedule: Some("@every 1s".into()), repeats: Some(3), ..job("thrice") };
        scheduler.schedule(every, false, Arc::clone(&recorder) as Arc<dyn JobTarget>).await.expect("scheduled");
        tick(&clock, Duration::from_millis(250), 40).await;
        let secs = |s| Duration::from_secs(s);
        assert_eq!(offsets(&recorder, start), vec![secs(1), secs(2), secs(3)]);
    }

    #[tokio::test]
    async fn failed_triggers_are_retried_as_the_policy_says() {
        let policy = |interval: u64, max_retries| JobFailurePolicy {
            policy: Some(Policy::Constant(JobFailurePolicyConstant {
                interval: Some(prost_types::Duration { seconds: interval as i64, nanos: 0 }),
                max_retries,
            })),
        };
        for (failure_policy, expected) in [
            (Some(policy(2, Some(2))), vec![0, 2, 4]),
            // The default: every second, 3 retries.
            (None, vec![0, 1, 2, 3]),
        ] {
            let (clock, scheduler, recorder) = setup(true);
            let start = clock.now();
            let failing = Job { due_time: Some("0s".into()), failure_policy, ..job("failing") };
            scheduler.schedule(failing, false, Arc::clone(&recorder) as Arc<dyn JobTarget>).await.expect("scheduled");
            // Due now: the first attempt comes before the clock moves.
            tick(&clock, Duration::ZERO, 1).await;
            tick(&clock, Duration::from_millis(500), 40).await;
            let expected: Vec<Duration> = expected.into_iter().map(Duration::from_secs).collect();
            assert_eq!(offsets(&recorder, start), expected);
        }
    }
}
