//! Jobs through a sidecar's gRPC API: `ScheduleJob`, `GetJob`, `DeleteJob`. A missing job is
//! daprd's failed get (`INTERNAL`, reason `DAPR_SCHEDULER_GET_JOB`), which the contract reads as
//! none. JSON data travels as an `Any` of `google.protobuf.Value`, as daprd keeps it (the
//! reference runtime's conversions, the one definition of that wire form).

use async_trait::async_trait;
use contract::Result;
use contract::jobs::{JobSpec, Jobs};
use reference_runtime::jobs::{job_of, spec_of};
use runtime_api::runtime::{DeleteJobRequest, GetJobRequest, ScheduleJobRequest};
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

#[async_trait]
impl Jobs for GrpcJobs {
    async fn schedule(&self, job: JobSpec) -> Result<()> {
        let (name, overwrite) = (job.name.clone(), job.overwrite);
        let call = ScheduleJobRequest { job: Some(job_of(job)), overwrite };
        let answer = self.sidecar.client().schedule_job(self.sidecar.request(call)).await;
        answer.map(drop).map_err(|s| self.sidecar.error(&name, s))
    }

    async fn get(&self, name: &str) -> Result<Option<JobSpec>> {
        let call = GetJobRequest { name: name.to_owned() };
        match self.sidecar.client().get_job(self.sidecar.request(call)).await {
            Ok(answer) => Ok(answer.into_inner().job.map(spec_of)),
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
