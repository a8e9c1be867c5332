//! Actors through a sidecar: `/v1.0/actors/{type}/{id}/…`. Error answers become
//! [`contract::Error::Coded`] with daprd's status and `errorCode`; an app error passed through
//! (a non-200 without an `errorCode`) is the call's answer.

use async_trait::async_trait;
use contract::Result;
use contract::actors::{ActorId, Actors, Answer, Invocation, REENTRANCY_HEADER, Reminder, StateOp, Timer};
use contract::jobs::FailurePolicy;
use serde_json::{Value, json};

use super::{ConnectError, SidecarClient, encode};

/// The actor API of a sidecar.
#[derive(Debug, Clone)]
pub struct HttpActors {
    sidecar: SidecarClient,
}

impl HttpActors {
    /// Connects to the sidecar at `base`.
    pub async fn connect(base: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = SidecarClient::metadata(base, token).await?;
        Ok(Self { sidecar })
    }

    fn path(actor: &ActorId, rest: &str) -> String {
        format!("/v1.0/actors/{}/{}/{rest}", encode(&actor.actor_type), encode(&actor.id))
    }

    /// An error answer as Dapr's status and code.
    async fn coded(response: reqwest::Response) -> contract::Error {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        contract::Error::Coded {
            status,
            code: body["errorCode"].as_str().unwrap_or_default().to_owned(),
            message: body["message"].as_str().map(str::to_owned).unwrap_or(text),
        }
    }

    async fn expect_success(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = self.sidecar.send(request).await?;
        match response.status().is_success() {
            true => Ok(response),
            false => Err(Self::coded(response).await),
        }
    }
}

/// protojson's form of a duration (seconds), which Go durations read too.
fn duration_text(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn reminder_body(reminder: &Reminder) -> Value {
    let mut body = json!({});
    for (field, value) in [("dueTime", &reminder.due_time), ("period", &reminder.period), ("ttl", &reminder.ttl)] {
        if let Some(v) = value {
            body[field] = json!(v);
        }
    }
    if let Some(data) = &reminder.data {
        body["data"] = data.clone();
    }
    if let Some(overwrite) = reminder.overwrite {
        body["overwrite"] = json!(overwrite);
    }
    if let Some(policy) = reminder.failure_policy {
        body["failure_policy"] = match policy {
            FailurePolicy::Drop => json!({"drop": {}}),
            FailurePolicy::Constant { interval, max_retries } => {
                let mut constant = json!({"interval": duration_text(interval)});
                if let Some(n) = max_retries {
                    constant["max_retries"] = json!(n);
                }
                json!({"constant": constant})
            }
        };
    }
    body
}

#[async_trait]
impl Actors for HttpActors {
    async fn invoke(&self, actor: &ActorId, call: Invocation) -> Result<Answer> {
        let path = Self::path(actor, &format!("method/{}", encode(&call.method)));
        let mut request = self.sidecar.request(reqwest::Method::PUT, &path).body(call.body);
        if let Some(id) = call.reentrancy_id {
            request = request.header(REENTRANCY_HEADER, id);
        }
        let response = self.sidecar.send(request).await?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| contract::Error::Backend(e.to_string()))?.to_vec();
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match (status, parsed["errorCode"].as_str()) {
            (200, _) | (_, None) => Ok(Answer { status, body }),
            (_, Some(code)) => Err(contract::Error::Coded {
                status,
                code: code.to_owned(),
                message: parsed["message"].as_str().unwrap_or_default().to_owned(),
            }),
        }
    }

    async fn state(&self, actor: &ActorId, key: &str) -> Result<Option<Vec<u8>>> {
        let response =
            self.expect_success(self.sidecar.get(&Self::path(actor, &format!("state/{}", encode(key))))).await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let body = response.bytes().await.map_err(|e| contract::Error::Backend(e.to_string()))?;
        Ok(Some(body.to_vec()).filter(|b| !b.is_empty()))
    }

    async fn transact(&self, actor: &ActorId, ops: Vec<StateOp>) -> Result<()> {
        let body: Vec<Value> = ops
            .into_iter()
            .map(|op| match op {
                StateOp::Upsert { key, value } => {
                    json!({"operation": "upsert", "request": {"key": key, "value": value}})
                }
                StateOp::Delete { key } => json!({"operation": "delete", "request": {"key": key}}),
            })
            .collect();
        self.expect_success(self.sidecar.post(&Self::path(actor, "state")).json(&body)).await.map(drop)
    }

    async fn set_reminder(&self, actor: &ActorId, reminder: Reminder) -> Result<()> {
        let path = Self::path(actor, &format!("reminders/{}", encode(&reminder.name)));
        self.expect_success(self.sidecar.post(&path).json(&reminder_body(&reminder))).await.map(drop)
    }

    async fn reminder(&self, actor: &ActorId, name: &str) -> Result<Option<Reminder>> {
        let response =
            self.sidecar.send(self.sidecar.get(&Self::path(actor, &format!("reminders/{}", encode(name))))).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(Self::coded(response).await);
        }
        let shown: Value = response.json().await.map_err(|e| contract::Error::Backend(e.to_string()))?;
        let text = |k: &str| shown.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Some(Reminder {
            name: name.to_owned(),
            due_time: text("dueTime"),
            period: text("period"),
            ttl: text("ttl"),
            data: shown.get("data").cloned(),
            ..Reminder::default()
        }))
    }

    async fn delete_reminder(&self, actor: &ActorId, name: &str) -> Result<()> {
        let path = Self::path(actor, &format!("reminders/{}", encode(name)));
        self.expect_success(self.sidecar.delete(&path)).await.map(drop)
    }

    async fn set_timer(&self, actor: &ActorId, timer: Timer) -> Result<()> {
        let mut body = json!({});
        for (field, value) in [
            ("dueTime", &timer.due_time),
            ("period", &timer.period),
            ("ttl", &timer.ttl),
            ("callback", &timer.callback),
        ] {
            if let Some(v) = value {
                body[field] = json!(v);
            }
        }
        if let Some(data) = &timer.data {
            body["data"] = data.clone();
        }
        let path = Self::path(actor, &format!("timers/{}", encode(&timer.name)));
        self.expect_success(self.sidecar.post(&path).json(&body)).await.map(drop)
    }

    async fn delete_timer(&self, actor: &ActorId, name: &str) -> Result<()> {
        let path = Self::path(actor, &format!("timers/{}", encode(name)));
        self.expect_success(self.sidecar.delete(&path)).await.map(drop)
    }
}
