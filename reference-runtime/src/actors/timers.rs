//! Timers (actors-workflows-jobs.md §1.3, A12): in memory only, a task each. A fire is a turn
//! of the actor (`PUT …/method/timer/{name}`); the next is due a period after the one before,
//! queued only once the callback returned; a failed fire is not retried; the reply header
//! `X-DaprReminderCancel: true`, a delete, the actor's deactivation or the runtime's end stop it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use contract::Error;
use contract::actors::{ActorId, Timer};
use serde_json::json;

use super::period::Period;
use super::reminders::{CANCEL_HEADER, compact, json_headers};
use super::{Callback, Engine, coded, locked, refuse_reserved, valid_name};
use crate::jobs::schedule::{Plan, Timing};

/// The timers running, by actor and name.
#[derive(Default)]
pub(super) struct Timers {
    running: Mutex<HashMap<(ActorId, String), (u64, tokio::task::AbortHandle)>>,
    generations: AtomicU64,
}

impl Timers {
    fn insert(&self, key: (ActorId, String), generation: u64, task: tokio::task::AbortHandle) {
        if let Some((_, old)) = locked(&self.running).insert(key, (generation, task)) {
            old.abort();
        }
    }

    /// Forgets a timer that ended by itself, unless another took its name meanwhile.
    fn ended(&self, key: &(ActorId, String), generation: u64) {
        let mut running = locked(&self.running);
        if running.get(key).is_some_and(|(g, _)| *g == generation) {
            running.remove(key);
        }
    }

    pub(super) fn stop(&self, actor: &ActorId, name: &str) {
        if let Some((_, task)) = locked(&self.running).remove(&(actor.clone(), name.to_owned())) {
            task.abort();
        }
    }

    pub(super) fn stop_actor(&self, actor: &ActorId) {
        locked(&self.running).retain(|(a, _), (_, task)| {
            let keep = a != actor;
            if !keep {
                task.abort();
            }
            keep
        });
    }

    pub(super) fn stop_all(&self) {
        for (_, (_, task)) in locked(&self.running).drain() {
            task.abort();
        }
    }
}

fn create_error(message: impl Into<String>) -> Error {
    coded(500, "ERR_ACTOR_TIMER_CREATE", message)
}

impl Engine {
    pub(super) async fn start_timer(&self, actor: &ActorId, timer: Timer) -> Result<(), Error> {
        refuse_reserved(actor)?;
        if !valid_name(&timer.name) {
            return Err(coded(400, "ERR_BAD_REQUEST", format!("invalid timer name {:?}", timer.name)));
        }
        if !self.config().await.types.contains_key(&actor.actor_type) {
            return Err(create_error(format!(
                "error creating actor timer: actor type {} is not hosted here",
                actor.actor_type
            )));
        }
        let period = timer.period.as_deref().filter(|p| !p.trim().is_empty()).map(Period::parse).transpose();
        let period = period.map_err(create_error)?.filter(|p| !p.none());
        let schedule = period.as_ref().map(Period::schedule);
        let due = timer.due_time.clone().filter(|d| !d.trim().is_empty()).unwrap_or_else(|| "0s".into());
        let timing = Timing {
            schedule: schedule.as_deref(),
            repeats: period.as_ref().and_then(|p| p.repeats),
            due_time: Some(&due),
            ttl: timer.ttl.as_deref().filter(|t| !t.trim().is_empty()),
        };
        let mut plan = Plan::new(&timing, SystemTime::now()).map_err(create_error)?;
        let first = plan.take().ok_or_else(|| create_error("the timer has already expired"))?;
        let payload = compact(&json!({
            "data": timer.data,
            "callback": timer.callback.clone().unwrap_or_default(),
            "dueTime": timer.due_time.clone().unwrap_or_default(),
            "period": timer.period.clone().unwrap_or_default(),
        }));
        let generation = self.timers.generations.fetch_add(1, Ordering::Relaxed);
        let key = (actor.clone(), timer.name.clone());
        let me = self.me.clone();
        let task = tokio::spawn({
            let key = key.clone();
            async move {
                let mut at = Some(first);
                while let Some(due) = at {
                    let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
                    tokio::time::sleep(wait).await;
                    let Some(engine) = me.upgrade() else { return };
                    if !engine.fire_timer(&key.0, &key.1, payload.clone()).await {
                        break;
                    }
                    at = plan.take();
                }
                if let Some(engine) = me.upgrade() {
                    engine.timers.ended(&key, generation);
                }
            }
        });
        self.timers.insert(key, generation, task.abort_handle());
        Ok(())
    }

    /// One fire; false when the app cancelled the timer.
    async fn fire_timer(&self, actor: &ActorId, name: &str, payload: Vec<u8>) -> bool {
        let app = Arc::clone(&self.app);
        let fired =
            self.in_turn(actor, None, |_| app.call(actor, Callback::Timer(name), payload, json_headers())).await;
        match fired {
            Ok(Ok(reply)) => !reply.header(CANCEL_HEADER).is_some_and(|v| v.eq_ignore_ascii_case("true")),
            Ok(Err(e)) => {
                tracing::warn!(%actor, timer = name, error = %e, "a timer's fire failed; not retried");
                true
            }
            Err(e) => {
                tracing::warn!(%actor, timer = name, error = %e, "a timer could not fire");
                true
            }
        }
    }

    pub(super) async fn stop_timer(&self, actor: &ActorId, name: &str) -> Result<(), Error> {
        refuse_reserved(actor)?;
        self.timers.stop(actor, name);
        Ok(())
    }
}
