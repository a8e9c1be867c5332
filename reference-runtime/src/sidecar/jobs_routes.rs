//! The Jobs API over HTTP (`/v1.0-alpha1/jobs/{name}` and `/v1.0/jobs/{name}`,
//! actors-workflows-jobs.md §3.1): schedule, get, delete, with daprd's rich errors; and the
//! app side of a trigger ([`AppTarget`]): `POST /job/{name}` to an HTTP app, `OnJobEvent` to a
//! gRPC app. A 404 from the app counts as done (dapr/dapr#8240).

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use runtime_api::common::{JobFailurePolicy, JobFailurePolicyConstant, JobFailurePolicyDrop, job_failure_policy};
use runtime_api::runtime::Job;
use serde_json::{Value, json};

use super::Sidecar;
use super::api_error::{ApiError, ApiResult};
use crate::jobs::{JobTarget, ScheduleError, data};

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    let mut router = Router::new();
    for version in ["v1.0-alpha1", "v1.0"] {
        router = router.route(&format!("/{version}/jobs/{{name}}"), post(schedule).get(get).delete(delete));
    }
    router
}

/// The error metadata daprd puts on every jobs error.
fn error_metadata(sc: &Sidecar) -> [(&'static str, String); 2] {
    [("appID", sc.config.app_id.clone()), ("namespace", std::env::var("NAMESPACE").unwrap_or_default())]
}

fn rich(sc: &Sidecar, status: StatusCode, reason: &'static str, message: impl Into<String>) -> ApiError {
    let metadata = error_metadata(sc);
    let pairs: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ApiError::rich(status, reason, message, &pairs)
}

/// A field by its protojson name or its proto name.
fn field<'a>(body: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    body.get(camel).or_else(|| body.get(snake)).filter(|v| !v.is_null())
}

pub(super) fn text(body: &Value, camel: &str, snake: &str) -> Result<Option<String>, ApiError> {
    match field(body, camel, snake) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::malformed(format!("`{camel}` must be a string, not {other}"))),
    }
}

pub(super) fn failure_policy(body: &Value) -> Result<Option<JobFailurePolicy>, ApiError> {
    let Some(policy) = field(body, "failurePolicy", "failure_policy") else { return Ok(None) };
    let policy = if policy.get("drop").is_some() {
        job_failure_policy::Policy::Drop(JobFailurePolicyDrop {})
    } else if let Some(constant) = policy.get("constant") {
        let interval = match text(constant, "interval", "interval")? {
            None => None,
            Some(t) => {
                // protojson writes a Duration as seconds (`3s`, `1.5s`): a Go duration too.
                let d = crate::jobs::schedule::go_duration(&t).map_err(ApiError::malformed)?;
                Some(prost_types::Duration::try_from(d).map_err(|e| ApiError::malformed(e.to_string()))?)
            }
        };
        let max_retries = match field(constant, "maxRetries", "max_retries") {
            None => None,
            Some(n) => Some(
                n.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| ApiError::malformed(format!("`maxRetries` must be a whole number ≥ 0, not {n}")))?,
            ),
        };
        job_failure_policy::Policy::Constant(JobFailurePolicyConstant { interval, max_retries })
    } else {
        return Err(ApiError::malformed("`failurePolicy` must be `{\"drop\": {}}` or `{\"constant\": {…}}`"));
    };
    Ok(Some(JobFailurePolicy { policy: Some(policy) }))
}

/// The request body (`JobHTTPRequest`, protojson: camel or snake names) as a job named `name`,
/// and `overwrite`.
fn job_of(sc: &Sidecar, name: &str, body: &[u8]) -> Result<(Job, bool), ApiError> {
    let body: Value = match body {
        b if b.iter().all(u8::is_ascii_whitespace) => json!({}),
        b => serde_json::from_slice(b).map_err(|e| ApiError::malformed(format!("the body is not JSON: {e}")))?,
    };
    if !body.is_object() {
        return Err(ApiError::malformed("the body must be a JSON object"));
    }
    if field(&body, "name", "name").is_some() {
        return Err(rich(sc, StatusCode::BAD_REQUEST, "DAPR_SCHEDULER_JOB_NAME", "Set the job name in the url only"));
    }
    let repeats = match field(&body, "repeats", "repeats") {
        None => None,
        Some(n) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ApiError::malformed(format!("`repeats` must be a whole number ≥ 0, not {n}")))?,
        ),
    };
    let overwrite = match field(&body, "overwrite", "overwrite") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(ApiError::malformed(format!("`overwrite` must be true or false, not {other}"))),
    };
    let job = Job {
        name: name.to_owned(),
        schedule: text(&body, "schedule", "schedule")?,
        repeats,
        due_time: text(&body, "dueTime", "due_time")?,
        ttl: text(&body, "ttl", "ttl")?,
        data: field(&body, "data", "data").map(data::from_json),
        failure_policy: failure_policy(&body)?,
    };
    Ok((job, overwrite))
}

async fn schedule(State(sc): State<Arc<Sidecar>>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(rich(&sc, StatusCode::BAD_REQUEST, "DAPR_SCHEDULER_JOB_NAME_EMPTY", "Name is empty"));
    }
    let (job, overwrite) = job_of(&sc, &name, &body)?;
    if job.schedule.is_none() && job.due_time.is_none() {
        return Err(rich(&sc, StatusCode::BAD_REQUEST, "DAPR_SCHEDULER_SCHEDULE_EMPTY", "Schedule is empty"));
    }
    let target = Arc::new(AppTarget(Arc::downgrade(&sc)));
    sc.jobs.schedule(job, overwrite, target).await.map_err(|e| schedule_error(&sc, &e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// daprd passes the Scheduler's code through: an existing job is a conflict, a bad one bad
/// input.
fn schedule_error(sc: &Sidecar, e: &ScheduleError) -> ApiError {
    let status = match e {
        ScheduleError::Exists(_) => StatusCode::CONFLICT,
        ScheduleError::Name(_) | ScheduleError::Timing(_) => StatusCode::BAD_REQUEST,
        ScheduleError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    rich(sc, status, "DAPR_SCHEDULER_SCHEDULE_JOB", format!("failed to schedule job due to: {e}"))
}

/// A job as `GET` answers it (protojson of `Job`).
pub(crate) fn shown(job: &Job) -> Value {
    let mut out = json!({ "name": job.name });
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            out[key] = v;
        }
    };
    put("schedule", job.schedule.clone().map(Value::from));
    put("repeats", job.repeats.map(Value::from));
    put("dueTime", job.due_time.clone().map(Value::from));
    put("ttl", job.ttl.clone().map(Value::from));
    put("data", job.data.as_ref().map(data::shown));
    put("failurePolicy", job.failure_policy.as_ref().and_then(|p| p.policy.as_ref()).map(policy_shown));
    out
}

fn policy_shown(policy: &job_failure_policy::Policy) -> Value {
    match policy {
        job_failure_policy::Policy::Drop(_) => json!({"drop": {}}),
        job_failure_policy::Policy::Constant(c) => {
            let mut constant = json!({});
            if let Some(d) = c.interval {
                constant["interval"] = Value::from(format!("{}s", d.seconds as f64 + f64::from(d.nanos) / 1e9));
            }
            if let Some(n) = c.max_retries {
                constant["maxRetries"] = Value::from(n);
            }
            json!({ "constant": constant })
        }
    }
}

async fn get(State(sc): State<Arc<Sidecar>>, Path(name): Path<String>) -> ApiResult {
    match sc.jobs.get(&name) {
        Some(job) => Ok(axum::Json(shown(&job)).into_response()),
        // Not 404: daprd answers a missing job as a failed get.
        None => Err(rich(
            &sc,
            StatusCode::INTERNAL_SERVER_ERROR,
            "DAPR_SCHEDULER_GET_JOB",
            format!("failed to get job due to: job not found: {name}"),
        )),
    }
}

async fn delete(State(sc): State<Arc<Sidecar>>, Path(name): Path<String>) -> Response {
    sc.jobs.delete(&name).await;
    StatusCode::NO_CONTENT.into_response()
}

/// A sidecar's app as the target of its jobs' triggers; weak, so that a job left scheduled
/// does not keep a stopped sidecar alive.
pub(crate) struct AppTarget(pub(crate) Weak<Sidecar>);

#[async_trait]
impl JobTarget for AppTarget {
    async fn trigger(&self, job: &Job) -> Result<(), String> {
        let sc = self.0.upgrade().ok_or("the runtime has stopped")?;
        // A trigger due before the app listens waits for it, as deliveries do.
        sc.app_listening().await;
        if let Some(app) = sc.grpc_app() {
            return app.job_event(&job.name, job.data.clone()).await;
        }
        let app = sc.app().ok_or("no app port was given (--app-port)")?;
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(&super::trace::new_traceparent()) {
            headers.insert("traceparent", v);
        }
        let body = Bytes::from(data::app_body(job.data.as_ref()));
        let path = format!("/job/{}", job.name);
        let answer = app.call(axum::http::Method::POST, &path, headers, body).await?;
        match answer.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => Err(format!("the app answered {s}")),
        }
    }
}
