//! Jobs through a sidecar: `POST|GET|DELETE /v1.0-alpha1/jobs/{name}`. A missing job is
//! daprd's failed get (500 `DAPR_SCHEDULER_GET_JOB`), which the contract reads as none.

use async_trait::async_trait;
use contract::Result;
use contract::jobs::{FailurePolicy, JobSpec, Jobs};
use serde_json::{Value, json};

use super::{ConnectError, SidecarClient, encode};

/// The Jobs API of a sidecar.
#[derive(Debug, Clone)]
pub struct HttpJobs {
    sidecar: SidecarClient,
}

impl HttpJobs {
    /// Connects to the sidecar at `base`.
    pub async fn connect(base: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = SidecarClient::metadata(base, token).await?;
        Ok(Self { sidecar })
    }

    fn path(name: &str) -> String {
        format!("/v1.0-alpha1/jobs/{}", encode(name))
    }
}

/// The request body (`JobHTTPRequest`) of `job`.
fn body(job: &JobSpec) -> Value {
    let mut body = json!({});
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            body[key] = v;
        }
    };
    put("schedule", job.schedule.clone().map(Value::from));
    put("repeats", job.repeats.map(Value::from));
    put("dueTime", job.due_time.clone().map(Value::from));
    put("ttl", job.ttl.clone().map(Value::from));
    put("data", job.data.clone());
    put("overwrite", job.overwrite.then_some(Value::Bool(true)));
    put(
        "failurePolicy",
        job.failure_policy.map(|p| match p {
            FailurePolicy::Drop => json!({"drop": {}}),
            FailurePolicy::Constant { interval, max_retries } => {
                let mut constant = json!({"interval": format!("{}s", interval.as_secs_f64())});
                if let Some(n) = max_retries {
                    constant["maxRetries"] = json!(n);
                }
                json!({"constant": constant})
            }
        }),
    );
    body
}

/// A job as `GET` shows it (the data's protojson `Value` unwrapped).
fn spec_of(name: &str, shown: &Value) -> JobSpec {
    let text = |key: &str| shown.get(key).and_then(Value::as_str).map(str::to_owned);
    JobSpec {
        name: name.to_owned(),
        schedule: text("schedule"),
        repeats: shown.get("repeats").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
        due_time: text("dueTime"),
        ttl: text("ttl"),
        data: shown.get("data").map(|d| d.get("value").cloned().unwrap_or_else(|| d.clone())),
        failure_policy: None,
        overwrite: false,
    }
}

#[async_trait]
impl Jobs for HttpJobs {
    async fn schedule(&self, job: JobSpec) -> Result<()> {
        let request = self.sidecar.post(&Self::path(&job.name)).json(&body(&job));
        let response = self.sidecar.send(request).await?;
        if !response.status().is_success() {
            return Err(self.sidecar.error(&job.name, response).await);
        }
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<JobSpec>> {
        let response = self.sidecar.send(self.sidecar.get(&Self::path(name))).await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(Some(spec_of(name, &answer)));
        }
        if status == 500 && answer["errorCode"] == "DAPR_SCHEDULER_GET_JOB" {
            return Ok(None);
        }
        Err(contract::Error::Backend(format!("reading job `{name}`: {status}: {text}")))
    }

    async fn delete(&self, name: &str) -> Result<()> {
        let response = self.sidecar.send(self.sidecar.delete(&Self::path(name))).await?;
        if !response.status().is_success() {
            return Err(self.sidecar.error(name, response).await);
        }
        Ok(())
    }
}
