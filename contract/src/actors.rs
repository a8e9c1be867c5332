//! The actors block (actors-workflows-jobs.md §1): the API a sidecar gives an application to
//! call virtual actors, keep their state and time their reminders and timers. What the actors
//! do is the app's; whoever hosts them (an HTTP app, certify's recorder) answers the callbacks.
//! Errors carry Dapr's status and code as [`crate::Error::Coded`], so one check serves every
//! driver.

use async_trait::async_trait;
use serde_json::Value;

use crate::Result;
use crate::jobs::FailurePolicy;

/// An actor: its type and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId {
    /// The type, as the app registers it.
    pub actor_type: String,
    /// The id, unique within the type.
    pub id: String,
}

impl ActorId {
    /// The actor `id` of `actor_type`.
    pub fn new(actor_type: impl Into<String>, id: impl Into<String>) -> Self {
        Self { actor_type: actor_type.into(), id: id.into() }
    }
}

impl std::fmt::Display for ActorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.actor_type, self.id)
    }
}

/// The header that carries a call chain's reentrancy id.
pub const REENTRANCY_HEADER: &str = "Dapr-Reentrancy-Id";

/// One method call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// The method.
    pub method: String,
    /// The body, passed as it is.
    pub body: Vec<u8>,
    /// The call chain's reentrancy id, when it continues one.
    pub reentrancy_id: Option<String>,
}

/// What the actor answered (relayed by the sidecar).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The status the caller got.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// One operation of an actor state transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum StateOp {
    /// Writes `key`.
    Upsert {
        /// The key, within the actor.
        key: String,
        /// The value (JSON).
        value: Value,
    },
    /// Deletes `key`.
    Delete {
        /// The key, within the actor.
        key: String,
    },
}

/// A reminder, as registered (durable: it outlives the actor's activation and the runtime).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reminder {
    /// Its name, unique per actor.
    pub name: String,
    /// The first fire: a duration from now or an RFC 3339 time.
    pub due_time: Option<String>,
    /// Between fires: a Go or ISO 8601 duration, `R<n>/…` for n fires in all. As read back,
    /// `@every <duration>`.
    pub period: Option<String>,
    /// When it stops: an RFC 3339 time or a duration.
    pub ttl: Option<String>,
    /// What each fire carries.
    pub data: Option<Value>,
    /// Replace a reminder of the same name (`None`: the default, yes).
    pub overwrite: Option<bool>,
    /// What a failed fire does.
    pub failure_policy: Option<FailurePolicy>,
}

/// A timer (in memory: it ends with the actor's activation and the runtime).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timer {
    /// Its name, unique per actor.
    pub name: String,
    /// The first fire (`None`: now).
    pub due_time: Option<String>,
    /// Between fires, as for reminders.
    pub period: Option<String>,
    /// When it stops.
    pub ttl: Option<String>,
    /// What each fire carries.
    pub data: Option<Value>,
    /// The callback named in each fire.
    pub callback: Option<String>,
}

/// The actor API of a sidecar.
#[async_trait]
pub trait Actors: Send + Sync {
    /// Calls `method` on `actor` (activating it), in a turn of its own unless the call
    /// continues a reentrant chain.
    async fn invoke(&self, actor: &ActorId, call: Invocation) -> Result<Answer>;

    /// One key of `actor`'s state (`None` when absent).
    async fn state(&self, actor: &ActorId, key: &str) -> Result<Option<Vec<u8>>>;

    /// Applies `ops` to `actor`'s state, all or nothing; the actor must be active.
    async fn transact(&self, actor: &ActorId, ops: Vec<StateOp>) -> Result<()>;

    /// Registers a reminder.
    async fn set_reminder(&self, actor: &ActorId, reminder: Reminder) -> Result<()>;

    /// A reminder, as the sidecar reports it (`None`: no such reminder).
    async fn reminder(&self, actor: &ActorId, name: &str) -> Result<Option<Reminder>>;

    /// Deletes a reminder (an unknown name is fine).
    async fn delete_reminder(&self, actor: &ActorId, name: &str) -> Result<()>;

    /// Registers a timer.
    async fn set_timer(&self, actor: &ActorId, timer: Timer) -> Result<()>;

    /// Deletes a timer (an unknown name is fine).
    async fn delete_timer(&self, actor: &ActorId, name: &str) -> Result<()>;
}
