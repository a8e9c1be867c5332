//! The jobs block (the Scheduler behind the Jobs API, actors-workflows-jobs.md §3): a job as
//! an application schedules it, and the calls to schedule, read and delete one. Triggers go
//! to the app, not back through this trait: whoever drives the scheduler decides where.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::Result;

/// A job, as scheduled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSpec {
    /// Its name, unique per app.
    pub name: String,
    /// `@every <duration>`, a shorthand such as `@daily`, or a 6-field cron.
    pub schedule: Option<String>,
    /// How many triggers at most.
    pub repeats: Option<u32>,
    /// The first trigger: an RFC 3339 time or a duration from now.
    pub due_time: Option<String>,
    /// When the job expires: an RFC 3339 time or a duration.
    pub ttl: Option<String>,
    /// The data each trigger carries.
    pub data: Option<Value>,
    /// What a failed trigger does; `None` is the scheduler's default.
    pub failure_policy: Option<FailurePolicy>,
    /// Replace a job of the same name (otherwise that is an error).
    pub overwrite: bool,
}

/// What a trigger the app fails does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Not retried.
    Drop,
    /// Retried every `interval`, at most `max_retries` times (`None`: without end).
    Constant {
        /// Between attempts.
        interval: Duration,
        /// Retries after the first attempt.
        max_retries: Option<u32>,
    },
}

/// A scheduler of jobs.
#[async_trait]
pub trait Jobs: Send + Sync {
    /// Schedules `job`; a name already taken without `overwrite` is an error.
    async fn schedule(&self, job: JobSpec) -> Result<()>;

    /// The job named `name`, while it has triggers left.
    async fn get(&self, name: &str) -> Result<Option<JobSpec>>;

    /// Deletes `name` (an unknown name is fine): no trigger after this.
    async fn delete(&self, name: &str) -> Result<()>;
}
