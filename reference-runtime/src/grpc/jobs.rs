//! The Jobs API over gRPC (`ScheduleJob`, `GetJob`, `DeleteJob`, `ListJobs`,
//! `DeleteJobsByPrefix`, each also as `…Alpha1`): the same scheduler as over HTTP, with
//! daprd's statuses (dapr-grpc-api.md §3.10): validation `InvalidArgument`, an existing job
//! `AlreadyExists`, a missing one on get `Internal`.

use std::sync::Arc;

use runtime_api::runtime::*;
use tonic::{Code, Response, Status};

use super::Answer;
use super::status::rich;
use crate::jobs::ScheduleError;
use crate::sidecar::Sidecar;
use crate::sidecar::jobs_routes::AppTarget;

fn error(sc: &Sidecar, code: Code, reason: &str, message: impl Into<String>) -> Status {
    let namespace = std::env::var("NAMESPACE").unwrap_or_default();
    rich(code, reason, message, &[("appID", sc.config.app_id.as_str()), ("namespace", namespace.as_str())])
}

pub(super) async fn schedule(sc: &Arc<Sidecar>, r: ScheduleJobRequest) -> Answer<ScheduleJobResponse> {
    let Some(job) = r.job else { return Err(error(sc, Code::InvalidArgument, "DAPR_SCHEDULER_EMPTY", "Job is empty")) };
    if job.name.is_empty() {
        return Err(error(sc, Code::InvalidArgument, "DAPR_SCHEDULER_JOB_NAME_EMPTY", "Name is empty"));
    }
    if job.schedule.is_none() && job.due_time.is_none() {
        return Err(error(sc, Code::InvalidArgument, "DAPR_SCHEDULER_SCHEDULE_EMPTY", "Schedule is empty"));
    }
    let target = Arc::new(AppTarget(Arc::downgrade(sc)));
    sc.jobs.schedule(job, r.overwrite, target).await.map_err(|e| {
        let code = match e {
            ScheduleError::Exists(_) => Code::AlreadyExists,
            ScheduleError::Name(_) | ScheduleError::Timing(_) => Code::InvalidArgument,
            ScheduleError::Store(_) => Code::Internal,
        };
        error(sc, code, "DAPR_SCHEDULER_SCHEDULE_JOB", format!("failed to schedule job due to: {e}"))
    })?;
    Ok(Response::new(ScheduleJobResponse {}))
}

pub(super) fn get(sc: &Sidecar, r: GetJobRequest) -> Answer<GetJobResponse> {
    match sc.jobs.get(&r.name) {
        Some(job) => Ok(Response::new(GetJobResponse { job: Some(job) })),
        None => Err(error(
            sc,
            Code::Internal,
            "DAPR_SCHEDULER_GET_JOB",
            format!("failed to get job due to: job not found: {}", r.name),
        )),
    }
}

pub(super) async fn delete(sc: &Sidecar, r: DeleteJobRequest) -> Answer<DeleteJobResponse> {
    if r.name.is_empty() {
        return Err(error(sc, Code::InvalidArgument, "DAPR_SCHEDULER_JOB_NAME_EMPTY", "Name is empty"));
    }
    sc.jobs.delete(&r.name).await;
    Ok(Response::new(DeleteJobResponse {}))
}

pub(super) async fn delete_prefix(sc: &Sidecar, prefix: Option<String>) {
    sc.jobs.delete_prefix(prefix.as_deref().unwrap_or_default()).await;
}

pub(super) fn list(sc: &Sidecar) -> Vec<Job> {
    sc.jobs.list()
}
