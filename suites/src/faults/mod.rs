//! Fault scenarios, tagged `faults`, run through the faults driver only: the component in
//! this process, connected to its backend through a fault proxy, with control over the
//! backend. They check what breaks in production: a restart must be recovered from within a
//! budget, a broken network must make calls fail (never hang) within a bound and work again
//! after, no acknowledged write may be lost across a restart of a persistent backend, and
//! every acknowledged publish or binding event must be delivered across a broker restart.
//!
//! Scenarios run after every other trial, one at a time, since they stop shared backends.

mod bindings;
mod pubsub;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::Claim;
use crate::case::{Case, Ctx, DriverCapability, Finding, Requirement};

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

macro_rules! fault_case {
    ($id:literal, $block:expr, $rule:literal, $body:path) => {
        Case {
            id: $id,
            block: $block,
            rule: $rule,
            source: "certify",
            requires: &[Requirement::Driver(DriverCapability::Faults)],
            tags: &["faults", "slow"],
            timeout: Duration::from_secs(180),
            body: |ctx| Box::pin($body(ctx)),
        }
    };
}

/// Every fault scenario.
pub fn cases() -> Vec<Case> {
    use contract::Block::{Bindings, PubSub, State};
    vec![
        fault_case!(
            "faults.state.recovers-after-restart",
            State,
            "After its backend restarts, a store MUST serve reads and writes again within the recovery budget (setting `recoveryBudgetSeconds`).",
            state::recovers
        ),
        fault_case!(
            "faults.state.acknowledged-writes-survive-restart",
            State,
            "Every write a store acknowledged MUST be read back exactly after its persistent backend restarts.",
            state::writes_survive
        ),
        fault_case!(
            "faults.state.black-hole-fails-fast",
            State,
            "While nothing gets through to the backend, calls MUST fail within `faultCallTimeoutSeconds`, not hang, and work again within the recovery budget after.",
            state::black_hole
        ),
        fault_case!(
            "faults.state.cut-fails-fast",
            State,
            "While connections to the backend are cut, calls MUST fail within `faultCallTimeoutSeconds`, and work again within the recovery budget after.",
            state::cut
        ),
        Case {
            requires: &[Requirement::Driver(DriverCapability::Faults), Requirement::Claimed(Claim::Etag)],
            ..fault_case!(
                "faults.state.linearizable-under-cuts",
                State,
                "Concurrent clients' histories MUST stay linearizable while connections are cut and restored (failed calls count as indeterminate).",
                state::linearizable_under_cuts
            )
        },
        fault_case!(
            "faults.pubsub.acknowledged-publishes-delivered-across-restart",
            PubSub,
            "Every message whose publish was acknowledged, before or after a broker restart, MUST be delivered at least once.",
            pubsub::across_restart
        ),
        fault_case!(
            "faults.pubsub.black-hole-fails-fast",
            PubSub,
            "While nothing gets through to the broker, a publish MUST fail within `faultCallTimeoutSeconds`, not hang, and publishing MUST work again within the recovery budget after.",
            pubsub::black_hole
        ),
        fault_case!(
            "faults.bindings.black-hole-fails-fast",
            Bindings,
            "While nothing gets through to the backend, an output binding's write (`create`, or `exec`) MUST fail within `faultCallTimeoutSeconds`, not hang, and work again within the recovery budget after; with `read`, what it sends after MUST arrive.",
            bindings::black_hole
        ),
        Case {
            requires: &[
                Requirement::Driver(DriverCapability::Faults),
                Requirement::Claimed(Claim::Create),
                Requirement::Claimed(Claim::Read),
            ],
            ..fault_case!(
                "faults.bindings.acknowledged-events-delivered-across-restart",
                Bindings,
                "Every event whose `create` was acknowledged, before or after a restart of a persistent backend, MUST be delivered by the input binding at least once.",
                bindings::across_restart
            )
        },
    ]
}

pub(crate) fn control(ctx: &Ctx) -> Result<&Arc<dyn FaultControl>, Finding> {
    ctx.faults.as_ref().ok_or_else(|| Finding::Fail("no fault control for this target".into()))
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
