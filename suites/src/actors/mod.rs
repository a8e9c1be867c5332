//! The actors suite (actors-workflows-jobs.md §1.9, A1–A15): certify hosts the actors
//! ([`ActorHost`]), the sidecar (or the engine in-process) calls them, and each case checks a
//! rule from what the app saw (every callback with its start and end) and what the API
//! answered. Dapr's conformance suite has no actors. Each trial names its actor ids after its
//! namespace; times are real, within the `jobEarlyMs`/`jobLateMs` tolerances.

mod host;
mod rules;

pub use host::{ActorHost, HostReply, IDLE, IDLE_TIMEOUT, Kind, MAX_DEPTH, PLAIN, REENTRANT, Turn};

use std::sync::Arc;

use contract::Actors;
use contract::Block;

use crate::case;
use crate::case::{Case, Ctx, DriverCapability, Finding, Reach, Requirement};
use crate::suite::Suite;

const BLOCK: Block = Block::ACTORS;
/// The actor API the cases call.
pub const API: Reach = Reach::of::<dyn Actors>("actor API");
/// The host the actors live in.
pub const HOST: Reach = Reach::of::<ActorHost>("app hosting actors").hinted("give --app-port");

/// Actor runtimes of the case's own that it may restart (reminders kept in the store survive).
pub const RESTARTS: Reach = Reach::of::<dyn ActorRestarts>("actor runtime certify can restart")
    .hinted("certify restarts only a runtime it runs in-process")
    .inherent();
/// The same engine with no actor state store.
pub const UNBACKED: Reach = Reach::of::<Unbacked>("actor runtime without an actor state store")
    .hinted("only the in-process driver can run the engine without its store")
    .inherent();
/// Several hosts of the same types over one placement.
pub const HOSTS: Reach = Reach::of::<SecondHost>("second actor host over the same placement")
    .hinted("single activation across hosts (A13) needs several runtimes sharing a placement service; the reference runtime is one host")
    .inherent();

/// Actor runtimes a case may restart: stopped (actors deactivated, timers gone) and started
/// again over the same store.
#[async_trait::async_trait]
pub trait ActorRestarts: Send + Sync {
    /// A new runtime hosting in the same [`ActorHost`], with an app id of its own.
    async fn own(&self) -> contract::Result<Arc<dyn RestartableActors>>;
}

/// A runtime the case may restart.
#[async_trait::async_trait]
pub trait RestartableActors: Actors {
    /// Stops it and starts it again over the same store.
    async fn restart(&self) -> contract::Result<()>;
}

/// Another host of the same actor types, sharing placement and store.
pub struct SecondHost(pub Arc<dyn Actors>);

/// The actor API of a runtime that has no actor state store.
pub struct Unbacked(pub Arc<dyn Actors>);

/// The actors suite.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[API], cases, prepare: None };

const ON_HOST: Requirement = Requirement::Reach(HOST);

fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "actors.turns.one-at-a-time",
            "A1",
            "An actor id MUST take one turn at a time: of 20 concurrent calls to one id no two callbacks overlap; other ids run meanwhile.",
            [ON_HOST],
            [],
            30,
            rules::one_at_a_time
        ),
        case!(
            BLOCK,
            "actors.reentrancy.chain",
            "A2",
            "With reentrancy on, a call carrying the chain's `Dapr-Reentrancy-Id` MUST enter while the chain holds the actor, every callback of the chain MUST carry that id, a chain deeper than `maxStackDepth` MUST fail, and with reentrancy off the nested call MUST wait.",
            [ON_HOST],
            [],
            30,
            rules::reentrancy_chain
        ),
        case!(
            BLOCK,
            "actors.state.needs-activation",
            "A3",
            "A state transaction on an actor never activated MUST fail with 400 `ERR_ACTOR_INSTANCE_MISSING`; after a call activates it, the same transaction MUST succeed.",
            [ON_HOST],
            [],
            20,
            rules::needs_activation
        ),
        case!(
            BLOCK,
            "actors.idle.deactivated-once",
            "A4",
            "An actor idle for its type's `actorIdleTimeout` MUST be deactivated exactly once (`DELETE /actors/{type}/{id}`), and a turn MUST reset the idle clock.",
            [ON_HOST],
            [],
            30,
            rules::idle_deactivation
        ),
        case!(
            BLOCK,
            "actors.state.isolated",
            "A5",
            "Actors MUST NOT see each other's state: the same key of (A,1), (A,2) and (B,1) holds three values; a transaction's operations apply together.",
            [ON_HOST],
            [],
            20,
            rules::state_isolated
        ),
        case!(
            BLOCK,
            "actors.store.required",
            "A6",
            "Without a store flagged `actorStateStore`, actor state calls MUST fail with 500 `ERR_ACTOR_RUNTIME_NOT_FOUND` (method calls still work).",
            [ON_HOST, Requirement::Reach(UNBACKED)],
            [],
            20,
            rules::store_required
        ),
        case!(
            BLOCK,
            "actors.reminders.schedule",
            "A7",
            "A reminder MUST fire first at its due time, then every period; `R3/…` MUST fire exactly 3 times, with the data it was given and empty `dueTime` and `period`.",
            [ON_HOST],
            [],
            30,
            rules::reminder_schedule
        ),
        case!(
            BLOCK,
            "actors.reminders.outlive-deactivation",
            "A8",
            "A reminder MUST outlive its actor's idle deactivation: it fires after the `DELETE`, activating the actor again.",
            [ON_HOST],
            [],
            30,
            rules::reminder_outlives_deactivation
        ),
        case!(
            BLOCK,
            "actors.reminders.durable",
            "A8",
            "Reminders MUST survive a restart of the runtime: one due after the restart fires once, on time, with its data; one that fired before does not fire again.",
            [ON_HOST, Requirement::Reach(RESTARTS)],
            [],
            30,
            rules::reminder_durable
        ),
        case!(
            BLOCK,
            "actors.reminders.end",
            "A9",
            "A deleted reminder MUST NOT fire again and reads as not found; the reply header `X-DaprReminderCancel: true` MUST end a reminder.",
            [ON_HOST],
            [],
            30,
            rules::reminder_end
        ),
        case!(
            BLOCK,
            "actors.reminders.retried",
            "A10",
            "A reminder fire the app fails MUST be retried per its `failure_policy`: `constant` with `max_retries: 2` is 3 attempts, `drop` is 1.",
            [ON_HOST],
            [],
            30,
            rules::reminder_retried
        ),
        case!(
            BLOCK,
            "actors.reminders.api",
            "A11",
            "Registering a reminder again replaces it; `overwrite: false` on a taken name MUST fail with 409 `ERR_ACTOR_REMINDER_ALREADY_EXISTS`; a type not hosted MUST get 403 `ERR_ACTOR_REMINDER_NON_HOSTED`; a malformed period MUST get 500 `ERR_ACTOR_REMINDER_CREATE` and register nothing; GET MUST show the period as `@every …`.",
            [ON_HOST],
            [],
            20,
            rules::reminder_api
        ),
        case!(
            BLOCK,
            "actors.timers.schedule",
            "A12",
            "A timer MUST fire at its due time, then every period (`R3/…`: exactly 3 fires) with its data and callback; a deleted timer MUST NOT fire again.",
            [ON_HOST],
            [],
            30,
            rules::timer_schedule
        ),
        case!(
            BLOCK,
            "actors.placement.single-activation",
            "A13",
            "Across hosts, an actor id MUST be active on at most one host at a time, and a moved actor MUST be deactivated on the old host.",
            [ON_HOST, Requirement::Reach(HOSTS)],
            [],
            30,
            rules::single_activation
        ),
        case!(
            BLOCK,
            "actors.errors.passthrough",
            "A14",
            "An app's non-200 answer MUST reach the caller as 500 `ERR_ACTOR_INVOKE_METHOD` naming the app's status; with `X-DaprErrorResponseHeader` the app's status and body pass through unchanged.",
            [ON_HOST],
            [],
            20,
            rules::errors_passthrough
        ),
        case!(
            BLOCK,
            "actors.trace.propagated",
            "O5, O7",
            "An actor call's trace id MUST reach the actor unchanged, with its `tracestate`.",
            [ON_HOST, Requirement::Driver(DriverCapability::TraceContext)],
            ["observability"],
            20,
            rules::trace_propagated
        ),
        case!(
            BLOCK,
            "actors.reserved-types",
            "A15",
            "`dapr.internal.*` actor types MUST be refused on state, reminder and timer calls with 403 `ERR_ACTOR_TYPE_RESERVED`.",
            [ON_HOST],
            [],
            20,
            rules::reserved_types
        ),
    ]
}

fn api(ctx: &Ctx) -> Result<&Arc<dyn Actors>, Finding> {
    ctx.reach(API)
}

fn host(ctx: &Ctx) -> Result<&Arc<ActorHost>, Finding> {
    ctx.reach(HOST)
}
