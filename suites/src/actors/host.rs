//! The actor host certify plays: it declares the actor types the cases use (`/dapr/config`),
//! answers every callback as the method or reminder name says, and records each callback with
//! when it began and ended, so turn-based execution is checked from what the app saw.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use contract::actors::{ActorId, Actors, Invocation};

use crate::observability::TraceContext;
use serde_json::{Value, json};

/// A type with reentrancy off and the default idle timeout.
pub const PLAIN: &str = "certify-actor";
/// A type with reentrancy on, `maxStackDepth` [`MAX_DEPTH`].
pub const REENTRANT: &str = "certify-reentrant";
/// A type deactivated after [`IDLE_TIMEOUT`] without a turn.
pub const IDLE: &str = "certify-idle";
/// The deepest reentrant chain [`REENTRANT`] allows.
pub const MAX_DEPTH: u32 = 4;
/// [`IDLE`]'s `actorIdleTimeout`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// What reached the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A method call.
    Method,
    /// A reminder's fire.
    Reminder,
    /// A timer's fire.
    Timer,
    /// `DELETE /actors/{type}/{id}`.
    Deactivation,
}

/// One callback, as the app saw it.
#[derive(Debug, Clone)]
pub struct Turn {
    /// Whose.
    pub actor: ActorId,
    /// What.
    pub kind: Kind,
    /// The method, reminder or timer name.
    pub name: String,
    /// When the app began it.
    pub began: Instant,
    /// When the app answered.
    pub ended: Instant,
    /// The `Dapr-Reentrancy-Id` it came with.
    pub reentrancy: Option<String>,
    /// Its body.
    pub body: Vec<u8>,
    /// The trace context it came with.
    pub trace: TraceContext,
}

/// The app's answer to a callback.
#[derive(Debug, Clone, Default)]
pub struct HostReply {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HostReply {
    fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self { status: 200, headers: Vec::new(), body: body.into() }
    }
}

/// The recorder.
#[derive(Default)]
pub struct ActorHost {
    turns: Mutex<Vec<Turn>>,
    sidecar: Mutex<Option<Weak<dyn Actors>>>,
}

impl std::fmt::Debug for ActorHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorHost").finish_non_exhaustive()
    }
}

impl ActorHost {
    /// What `GET /dapr/config` answers.
    pub fn config() -> Value {
        json!({
            "entities": [PLAIN, REENTRANT, IDLE],
            "entitiesConfig": [
                {"entities": [REENTRANT], "reentrancy": {"enabled": true, "maxStackDepth": MAX_DEPTH}},
                {"entities": [IDLE], "actorIdleTimeout": format!("{}s", IDLE_TIMEOUT.as_secs())},
            ],
        })
    }

    /// The sidecar nested calls go back through (weak: the sidecar may own the host).
    pub fn connect(&self, sidecar: Weak<dyn Actors>) {
        *self.sidecar.lock().unwrap_or_else(PoisonError::into_inner) = Some(sidecar);
    }

    fn sidecar(&self) -> Option<Arc<dyn Actors>> {
        self.sidecar.lock().unwrap_or_else(PoisonError::into_inner).as_ref()?.upgrade()
    }

    /// Every callback `actor` got so far, in the order they ended.
    pub fn turns_of(&self, actor: &ActorId) -> Vec<Turn> {
        self.turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|t| t.actor == *actor)
            .cloned()
            .collect()
    }

    /// The callbacks of one kind and name of `actor`.
    pub fn named(&self, actor: &ActorId, kind: Kind, name: &str) -> Vec<Turn> {
        self.turns_of(actor).into_iter().filter(|t| t.kind == kind && t.name == name).collect()
    }

    /// Answers a callback as its name says, and records it:
    /// methods `sleep-<ms>` (hold the turn), `fail-<status>`, `app-error` (400 with
    /// `X-DaprErrorResponseHeader`), `nest-<n>` (call `nest-<n-1>` on the same actor with the
    /// same reentrancy id), anything else echoes the body; reminders and timers named
    /// `fail-…` answer 500, `cancel-…` 200 with `X-DaprReminderCancel: true`, others 200.
    pub async fn callback(
        &self,
        actor: &ActorId,
        kind: Kind,
        name: &str,
        body: Vec<u8>,
        reentrancy: Option<String>,
        trace: TraceContext,
    ) -> HostReply {
        let began = Instant::now();
        let reply = match kind {
            Kind::Method => self.method(actor, name, &body, reentrancy.clone()).await,
            Kind::Reminder | Kind::Timer if name.starts_with("fail-") => {
                HostReply { status: 500, ..HostReply::default() }
            }
            Kind::Reminder | Kind::Timer if name.starts_with("cancel-") => {
                HostReply { headers: vec![("X-DaprReminderCancel".into(), "true".into())], ..HostReply::ok("") }
            }
            _ => HostReply::ok(""),
        };
        let (ended, name) = (Instant::now(), name.to_owned());
        let turn = Turn { actor: actor.clone(), kind, name, began, ended, reentrancy, body, trace };
        self.turns.lock().unwrap_or_else(PoisonError::into_inner).push(turn);
        reply
    }

    async fn method(&self, actor: &ActorId, name: &str, body: &[u8], reentrancy: Option<String>) -> HostReply {
        if let Some(ms) = name.strip_prefix("sleep-").and_then(|ms| ms.parse().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return HostReply::ok("slept");
        }
        if let Some(status) = name.strip_prefix("fail-").and_then(|s| s.parse().ok()) {
            return HostReply { status, headers: Vec::new(), body: format!("certify fails {name}").into_bytes() };
        }
        if name == "app-error" {
            return HostReply {
                status: 400,
                headers: vec![("X-DaprErrorResponseHeader".into(), "true".into())],
                body: b"certify's own error".to_vec(),
            };
        }
        if let Some(n) = name.strip_prefix("nest-").and_then(|n| n.parse::<u32>().ok()) {
            if n == 0 {
                return HostReply::ok("bottom");
            }
            let Some(sidecar) = self.sidecar() else {
                return HostReply { status: 500, body: b"no sidecar to call back".to_vec(), ..HostReply::default() };
            };
            let call = Invocation { method: format!("nest-{}", n - 1), body: Vec::new(), reentrancy_id: reentrancy };
            return match sidecar.invoke(actor, call).await {
                Ok(answer) if answer.status == 200 => HostReply::ok(answer.body),
                Ok(answer) => HostReply { status: answer.status, body: answer.body, ..HostReply::default() },
                Err(e) => HostReply { status: 500, body: e.to_string().into_bytes(), ..HostReply::default() },
            };
        }
        HostReply::ok(body.to_vec())
    }

    /// Records a deactivation.
    pub fn deactivated(&self, actor: &ActorId) {
        let now = Instant::now();
        let turn = Turn {
            actor: actor.clone(),
            kind: Kind::Deactivation,
            name: String::new(),
            began: now,
            ended: now,
            reentrancy: None,
            body: Vec::new(),
            trace: TraceContext::default(),
        };
        self.turns.lock().unwrap_or_else(PoisonError::into_inner).push(turn);
    }
}
