//! Fault scenarios, tagged `faults`, run through the faults driver only: the component in
//! this process, connected to its backend through a fault proxy, with control over the
//! backend. They check what breaks in production: a restart must be recovered from within a
//! budget, a broken network must make calls fail (never hang) within a bound and work again
//! after, no acknowledged write may be lost across a restart of a persistent backend, and
//! every acknowledged publish or binding event must be delivered across a broker restart.
//!
//! Scenarios run after every other trial, one at a time, since they stop shared backends.
//! Each block's scenarios are a suite of their own, beside the block's.

mod bindings;
mod pubsub;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use contract::Block;

use crate::case::{Ctx, Finding, Reach};
use crate::suite::Suite;

/// A fault of the network between the component and its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFault {
    /// Connections closed, new ones closed at once.
    Cut,
    /// Connections open, nothing passing.
    BlackHole,
}

/// Why a fault could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultError {
    /// Not possible for this component or backend; the scenario is skipped with the reason.
    Unsupported(String),
    /// It was tried and failed; the scenario fails with the reason.
    Failed(String),
}

/// What the faults driver gives a scenario.
#[async_trait]
pub trait FaultControl: Send + Sync {
    /// Applies `fault` to the component's network, or heals it (`None`).
    async fn network(&self, fault: Option<NetworkFault>) -> Result<(), FaultError>;

    /// Restarts the backend cleanly; it is ready again when this returns.
    async fn restart(&self) -> Result<(), FaultError>;
}

impl From<FaultError> for Finding {
    fn from(e: FaultError) -> Self {
        match e {
            FaultError::Unsupported(reason) => Finding::Skip(reason),
            FaultError::Failed(reason) => Finding::Fail(reason),
        }
    }
}

/// Fault control: only the faults driver gives it.
pub const FAULTS: Reach = Reach::of::<dyn FaultControl>("fault control (only the faults driver has it)");

/// Fault scenarios of state stores.
pub const STATE_SUITE: Suite =
    Suite { block: Block::STATE, needs: &[crate::state::STORE, FAULTS], cases: state::cases, prepare: None };
/// Fault scenarios of brokers.
pub const PUBSUB_SUITE: Suite =
    Suite { needs: &[crate::pubsub::BROKER, FAULTS], cases: pubsub::cases, ..crate::pubsub::SUITE };
/// Fault scenarios of bindings.
pub const BINDINGS_SUITE: Suite =
    Suite { needs: &[crate::bindings::OUTPUT, FAULTS], cases: bindings::cases, ..crate::bindings::SUITE };

/// A fault scenario of `block`: tagged `faults` (so only the faults driver runs it, after
/// everything else, one at a time), three minutes at most.
macro_rules! scenario {
    ($block:expr, $id:literal, $rule:literal, [$($req:expr),*], $body:path) => {
        $crate::case!($block, $id, "certify", $rule, [$($req),*], ["faults", "slow"], 180, $body)
    };
}
pub(crate) use scenario;

pub(crate) fn control(ctx: &Ctx) -> Result<&Arc<dyn FaultControl>, Finding> {
    ctx.reach(FAULTS)
}

pub(crate) fn budget(ctx: &Ctx) -> Duration {
    Duration::from_secs(ctx.settings.recovery_budget_seconds)
}

pub(crate) fn bound(ctx: &Ctx) -> Duration {
    Duration::from_secs(ctx.settings.fault_call_timeout_seconds)
}

/// Retries `attempt` until it succeeds or the recovery budget is spent; answers how long it took.
pub(crate) async fn recover<F, Fut>(ctx: &Ctx, what: &str, mut attempt: F) -> Result<Duration, Finding>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = contract::Result<()>>,
{
    let started = Instant::now();
    let deadline = started + budget(ctx);
    let mut last: String;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), attempt()).await {
            Ok(Ok(())) => return Ok(started.elapsed()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "the call was still running when the budget ran out".into(),
        }
        if Instant::now() >= deadline {
            return Err(Finding::Fail(format!(
                "{what} did not work again within the recovery budget of {:?}; last: {last}",
                budget(ctx)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
