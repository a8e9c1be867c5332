//! Reminders (actors-workflows-jobs.md §1.3, A7–A11): each a job of the engine's scheduler,
//! named `<type>||<id>||<name>`, kept in the actor state store; a fire is a turn of the actor
//! (`PUT …/method/remind/{name}`), retried per the failure policy when the app fails it, and
//! the reply header `X-DaprReminderCancel: true` ends the reminder.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use contract::Error;
use contract::actors::{ActorId, Reminder};
use contract::jobs::JobSpec;
use runtime_api::runtime::Job;
use serde_json::{Value, json};

use super::period::Period;
use super::{Callback, Engine, coded, refuse_reserved, valid_name};
use crate::jobs::{JobTarget, ScheduleError, data, job_of, spec_of};

/// The reply header that cancels a reminder or timer.
pub(super) const CANCEL_HEADER: &str = "X-DaprReminderCancel";

fn job_name(actor: &ActorId, name: &str) -> String {
    format!("{}||{}||{name}", actor.actor_type, actor.id)
}

fn create_error(message: impl Into<String>) -> Error {
    coded(500, "ERR_ACTOR_REMINDER_CREATE", message)
}

/// Checks what every reminder route checks: a reserved type, a type not hosted here, a bad name.
pub(super) async fn checked(engine: &Engine, actor: &ActorId, name: &str) -> Result<(), Error> {
    refuse_reserved(actor)?;
    if !engine.config().await.types.contains_key(&actor.actor_type) {
        return Err(coded(
            403,
            "ERR_ACTOR_REMINDER_NON_HOSTED",
            format!(
                "operations on actor reminders are only possible on hosted actor types; {} is not hosted",
                actor.actor_type
            ),
        ));
    }
    if !valid_name(name) || [&actor.actor_type, &actor.id, name].iter().any(|p| p.contains("||")) {
        return Err(coded(400, "ERR_BAD_REQUEST", format!("invalid reminder name {name:?}")));
    }
    Ok(())
}

impl Engine {
    pub(super) fn reminder_target(&self) -> Arc<dyn JobTarget> {
        Arc::new(Fires(self.me.clone()))
    }

    pub(super) async fn set_reminder_job(&self, actor: &ActorId, reminder: Reminder) -> Result<(), Error> {
        checked(self, actor, &reminder.name).await?;
        if self.store.is_none() {
            return Err(coded(
                500,
                "ERR_ACTOR_RUNTIME_NOT_FOUND",
                "reminders need an actor state store (`actorStateStore: \"true\"`)",
            ));
        }
        let period = reminder.period.as_deref().filter(|p| !p.trim().is_empty()).map(Period::parse).transpose();
        let period = period.map_err(create_error)?.filter(|p| !p.none());
        let due_time = reminder.due_time.filter(|d| !d.trim().is_empty());
        if due_time.is_none() && period.is_none() {
            return Err(create_error("job must have either a due time or a schedule"));
        }
        let spec = JobSpec {
            name: job_name(actor, &reminder.name),
            schedule: period.as_ref().map(Period::schedule),
            repeats: period.as_ref().and_then(|p| p.repeats),
            due_time,
            ttl: reminder.ttl.filter(|t| !t.trim().is_empty()),
            data: reminder.data,
            failure_policy: reminder.failure_policy,
            overwrite: false,
        };
        let overwrite = reminder.overwrite.unwrap_or(true);
        self.reminders.schedule(job_of(spec), overwrite, self.reminder_target()).await.map_err(|e| match e {
            ScheduleError::Exists(_) => {
                coded(409, "ERR_ACTOR_REMINDER_ALREADY_EXISTS", format!("reminder {} already exists", reminder.name))
            }
            other => create_error(format!("error creating actor reminder: {other}")),
        })
    }

    pub(super) async fn reminder_of(&self, actor: &ActorId, name: &str) -> Result<Option<Reminder>, Error> {
        checked(self, actor, name).await?;
        Ok(self.reminders.get(&job_name(actor, name)).map(|job| {
            let spec = spec_of(job);
            Reminder {
                name: name.to_owned(),
                due_time: spec.due_time,
                period: spec.schedule,
                ttl: spec.ttl,
                data: spec.data,
                overwrite: None,
                failure_policy: spec.failure_policy,
            }
        }))
    }

    pub(super) async fn delete_reminder_job(&self, actor: &ActorId, name: &str) -> Result<(), Error> {
        checked(self, actor, name).await?;
        self.reminders.delete(&job_name(actor, name)).await;
        Ok(())
    }
}

/// The scheduler's target: fires go to the actors.
struct Fires(Weak<Engine>);

#[async_trait]
impl JobTarget for Fires {
    async fn trigger(&self, job: &Job) -> Result<(), String> {
        let engine = self.0.upgrade().ok_or("the runtime is gone")?;
        let mut parts = job.name.splitn(3, "||");
        let (Some(actor_type), Some(id), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{}` does not name an actor's reminder", job.name));
        };
        let actor = ActorId::new(actor_type, id);
        let mut payload = json!({"dueTime": "", "period": ""});
        if let Some(data) = job.data.as_ref().and_then(data::to_json) {
            payload["data"] = data;
        }
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        let app = Arc::clone(&engine.app);
        let reply = engine
            .in_turn(&actor, None, |_| app.call(&actor, Callback::Reminder(name), body, json_headers()))
            .await
            .map_err(|e| e.to_string())??;
        if reply.header(CANCEL_HEADER).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            // Not from inside this fire's own task, which the deletion ends.
            let (engine, job_name) = (Arc::clone(&engine), job.name.clone());
            tokio::spawn(async move { engine.reminders.delete(&job_name).await });
            return Ok(());
        }
        match reply.status {
            200..=299 => Ok(()),
            status => Err(format!("the app answered the reminder's fire with {status}")),
        }
    }
}

pub(super) fn json_headers() -> Vec<(String, String)> {
    vec![("content-type".into(), "application/json".into())]
}

/// A JSON value's compact bytes.
pub(super) fn compact(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}
