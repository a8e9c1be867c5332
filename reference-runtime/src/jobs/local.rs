//! The scheduler as the contract's [`contract::Jobs`], triggering a target of the caller's
//! choosing: how certify drives it in-process, restarts included. The `jobs.in-memory`
//! component carries a [`Scheduler`]; a runtime serving that component schedules its Jobs API
//! on it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use contract::jobs::{FailurePolicy, JobSpec};
use runtime_api::common::{JobFailurePolicy, JobFailurePolicyConstant, JobFailurePolicyDrop, job_failure_policy};
use runtime_api::runtime::Job;

use super::{JobTarget, ScheduleError, Scheduler, data};

/// A scheduler whose triggers go to one target.
pub struct LocalJobs {
    scheduler: Mutex<Arc<Scheduler>>,
    target: Arc<dyn JobTarget>,
}

impl LocalJobs {
    /// `scheduler`, triggering `target`.
    pub fn new(scheduler: Arc<Scheduler>, target: Arc<dyn JobTarget>) -> Self {
        Self { scheduler: Mutex::new(scheduler), target }
    }

    fn scheduler(&self) -> Arc<Scheduler> {
        Arc::clone(&self.scheduler.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Stops the scheduler and starts a new one over the same store, as a restarted runtime
    /// would; a scheduler without a store starts empty. Answers how many jobs it took up.
    pub async fn restart(&self) -> Result<usize, String> {
        let old = self.scheduler();
        old.stop();
        let new = Scheduler::timed_by(Arc::clone(old.clock()), old.store().cloned());
        *self.scheduler.lock().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&new);
        new.restore(Arc::clone(&self.target)).await
    }
}

fn policy_of(policy: FailurePolicy) -> JobFailurePolicy {
    let policy = match policy {
        FailurePolicy::Drop => job_failure_policy::Policy::Drop(JobFailurePolicyDrop {}),
        FailurePolicy::Constant { interval, max_retries } => {
            job_failure_policy::Policy::Constant(JobFailurePolicyConstant {
                interval: prost_types::Duration::try_from(interval).ok(),
                max_retries,
            })
        }
    };
    JobFailurePolicy { policy: Some(policy) }
}

/// The API's failure policy as the contract's.
pub fn policy_from(policy: &JobFailurePolicy) -> Option<FailurePolicy> {
    match policy.policy.as_ref()? {
        job_failure_policy::Policy::Drop(_) => Some(FailurePolicy::Drop),
        job_failure_policy::Policy::Constant(c) => Some(FailurePolicy::Constant {
            interval: c.interval.and_then(|d| Duration::try_from(d).ok()).unwrap_or_default(),
            max_retries: c.max_retries,
        }),
    }
}

/// The contract's job as the API's `Job` (JSON data as an `Any` of `google.protobuf.Value`).
pub fn job_of(spec: JobSpec) -> Job {
    Job {
        name: spec.name,
        schedule: spec.schedule,
        repeats: spec.repeats,
        due_time: spec.due_time,
        ttl: spec.ttl,
        data: spec.data.as_ref().map(data::from_json),
        failure_policy: spec.failure_policy.map(policy_of),
    }
}

/// The API's `Job` as the contract's (data that is not JSON is left out).
pub fn spec_of(job: Job) -> JobSpec {
    JobSpec {
        name: job.name,
        schedule: job.schedule,
        repeats: job.repeats,
        due_time: job.due_time,
        ttl: job.ttl,
        data: job.data.as_ref().and_then(data::to_json),
        failure_policy: job.failure_policy.as_ref().and_then(policy_from),
        overwrite: false,
    }
}

#[async_trait]
impl contract::Jobs for LocalJobs {
    async fn schedule(&self, job: JobSpec) -> contract::Result<()> {
        let overwrite = job.overwrite;
        let job = job_of(job);
        self.scheduler().schedule(job, overwrite, Arc::clone(&self.target)).await.map_err(|e| match e {
            ScheduleError::Exists(_) => contract::Error::Coded {
                status: 409,
                code: "DAPR_SCHEDULER_SCHEDULE_JOB".into(),
                message: e.to_string(),
            },
            ScheduleError::Store(why) => contract::Error::Backend(why),
            other => contract::Error::InvalidArgument(other.to_string()),
        })
    }

    async fn get(&self, name: &str) -> contract::Result<Option<JobSpec>> {
        Ok(self.scheduler().get(name).map(spec_of))
    }

    async fn delete(&self, name: &str) -> contract::Result<()> {
        self.scheduler().delete(name).await;
        Ok(())
    }
}
