//! The engine as the contract's [`Actors`]: what the sidecar's routes serve and what certify
//! drives in-process. An app's reply maps as daprd maps it (actors-workflows-jobs.md §1.5):
//! 200 relayed; `X-DaprErrorResponseHeader` relayed as it is; anything else a 500
//! `ERR_ACTOR_INVOKE_METHOD` naming the app's status and body.

use std::sync::Arc;

use async_trait::async_trait;
use contract::Result;
use contract::actors::{ActorId, Actors, Answer, Invocation, REENTRANCY_HEADER, Reminder, StateOp, Timer};

use super::{Callback, Engine, Reply, coded};

/// The reply header by which an actor answers an application error of its own.
pub const ERROR_RESPONSE_HEADER: &str = "X-DaprErrorResponseHeader";

impl Engine {
    /// Calls `method` on `actor` in a turn with `headers` (the reentrancy header, when
    /// reentrancy is on, is the chain's); answers the app's reply as the caller gets it.
    pub async fn invoke_method(
        &self,
        actor: &ActorId,
        method: &str,
        body: Vec<u8>,
        mut headers: Vec<(String, String)>,
    ) -> Result<Reply> {
        let reentrancy =
            headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(REENTRANCY_HEADER)).map(|(_, v)| v.clone());
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(REENTRANCY_HEADER));
        headers.push(("dapr-api-call".into(), "true".into()));
        let app = Arc::clone(&self.app);
        let reply = self
            .in_turn(actor, reentrancy.as_deref(), |chain| {
                if let Some(chain) = chain {
                    headers.push((REENTRANCY_HEADER.to_owned(), chain));
                }
                app.call(actor, Callback::Method(method), body, headers)
            })
            .await?
            .map_err(|e| coded(500, "ERR_ACTOR_INVOKE_METHOD", format!("error invoke actor method: {e}")))?;
        if reply.header(ERROR_RESPONSE_HEADER).is_some() || reply.status == 200 {
            return Ok(reply);
        }
        let message = match reply.status {
            404 => format!("error invoke actor method: actor method not found: {method}"),
            status => format!(
                "error invoke actor method: error from actor service: ({status}) {}",
                String::from_utf8_lossy(&reply.body)
            ),
        };
        Err(coded(500, "ERR_ACTOR_INVOKE_METHOD", message))
    }
}

#[async_trait]
impl Actors for Engine {
    async fn invoke(&self, actor: &ActorId, call: Invocation) -> Result<Answer> {
        let headers = call.reentrancy_id.map(|id| (REENTRANCY_HEADER.to_owned(), id)).into_iter().collect();
        let reply = self.invoke_method(actor, &call.method, call.body, headers).await?;
        Ok(Answer { status: reply.status, body: reply.body })
    }

    async fn state(&self, actor: &ActorId, key: &str) -> Result<Option<Vec<u8>>> {
        self.get_state(actor, key).await
    }

    async fn transact(&self, actor: &ActorId, ops: Vec<StateOp>) -> Result<()> {
        self.transact_state(actor, ops).await
    }

    async fn set_reminder(&self, actor: &ActorId, reminder: Reminder) -> Result<()> {
        self.set_reminder_job(actor, reminder).await
    }

    async fn reminder(&self, actor: &ActorId, name: &str) -> Result<Option<Reminder>> {
        self.reminder_of(actor, name).await
    }

    async fn delete_reminder(&self, actor: &ActorId, name: &str) -> Result<()> {
        self.delete_reminder_job(actor, name).await
    }

    async fn set_timer(&self, actor: &ActorId, timer: Timer) -> Result<()> {
        self.start_timer(actor, timer).await
    }

    async fn delete_timer(&self, actor: &ActorId, name: &str) -> Result<()> {
        self.stop_timer(actor, name).await
    }
}
