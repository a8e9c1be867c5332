//! Jobs through a sidecar's gRPC API: `ScheduleJob`, `GetJob`, `DeleteJob`. A missing job is
//! daprd's failed get (`INTERNAL`, reason `DAPR_SCHEDULER_GET_JOB`), which the contract reads as
//! none. JSON data travels as an `Any` of `google.protobuf.Value`, as daprd keeps it.

use async_trait::async_trait;
use contract::Result;
use contract::jobs::{FailurePolicy, JobSpec, Jobs};
use reference_runtime::jobs::data;
use runtime_api::common::{JobFailurePolicy, JobFailurePolicyConstant, JobFailurePolicyDrop, job_failure_policy};
use runtime_api::runtime::{DeleteJobRequest, GetJobRequest, Job, ScheduleJobRequest};
use runtime_api::tonic::Code;
use tonic_types::StatusExt;

use super::GrpcSidecar;

/// The Jobs API of a sidecar, over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcJobs {
    sidecar: GrpcSidecar,
}

impl GrpcJobs {
    /// The Jobs API of `sidecar`.
    pub fn new(sidecar: &GrpcSidecar) -> Self {
        Self { sidecar: sidecar.clone() }
    }
}

fn policy(p: FailurePolicy) -> JobFailurePolicy {
    let policy = match p {
        FailurePolicy::Drop => job_failure_policy::Policy::Drop(JobFailurePolicyDrop {}),
        FailurePolicy::Constant { interval, max_retries } => {
            job_failure_policy::Policy::Constant(JobFailurePolicyConstant {
                interval: runtime_api::prost_types::Duration::try_from(interval).ok(),
                max_retries,
            })
        }
    };
    JobFailurePolicy { policy: Some(policy) }
}

#[async_trait]
impl Jobs for GrpcJobs {
    async fn schedule(&self, job: JobSpec) -> Result<()> {
        let name = job.name.clone();
        let call = ScheduleJobRequest {
            job: Some(Job {
                name: job.name,
                schedule: job.schedule,
                repeats: job.repeats,
                due_time: job.due_time,
                ttl: job.ttl,
                data: job.data.as_ref().map(data::from_json),
                failure_policy: job.failure_policy.map(policy),
            }),
            overwrite: job.overwrite,
        };
        let answer = self.sidecar.client().schedule_job(self.sidecar.request(call)).await;
        answer.map(drop).map_err(|s| self.sidecar.error(&name, s))
    }

    async fn get(&self, name: &str) -> Result<Option<JobSpec>> {
        let call = GetJobRequest { name: name.to_owned() };
        match self.sidecar.client().get_job(self.sidecar.request(call)).await {
            Ok(answer) => Ok(answer.into_inner().job.map(|j| JobSpec {
                name: j.name,
                schedule: j.schedule,
                repeats: j.repeats,
                due_time: j.due_time,
                ttl: j.ttl,
                data: j.data.as_ref().and_then(data::to_json),
                failure_policy: None,
                overwrite: false,
            })),
            Err(s)
                if s.code() == Code::Internal
                    && s.get_error_details().error_info().is_some_and(|i| i.reason == "DAPR_SCHEDULER_GET_JOB") =>
            {
                Ok(None)
            }
            Err(s) => Err(self.sidecar.error(name, s)),
        }
    }

    async fn delete(&self, name: &str) -> Result<()> {
        let call = DeleteJobRequest { name: name.to_owned() };
        let answer = self.sidecar.client().delete_job(self.sidecar.request(call)).await;
        answer.map(drop).map_err(|s| self.sidecar.error(name, s))
    }
}
