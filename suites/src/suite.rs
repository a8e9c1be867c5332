//! A block's suite as the planner and runner see it: its cases, the handles every one of them
//! needs in reach (a case missing one is skipped with the reason, never run against a stand-in),
//! and what a trial of it sets up before its body runs.

use contract::{Block, Parts};
use futures::future::BoxFuture;

use crate::case::{Case, Finding, Reach};

/// Sets one trial up: handles of that trial alone (pub/sub leases its topics), given the
/// component's handles and the trial's namespace; what it answers is added to the handles.
pub type Prepare = fn(Parts, String) -> BoxFuture<'static, Result<Parts, Finding>>;

/// One block's cases and what they need.
#[derive(Clone, Copy)]
pub struct Suite {
    /// The block.
    pub block: Block,
    /// What every case needs in reach.
    pub needs: &'static [Reach],
    /// The cases, in a stable order.
    pub cases: fn() -> Vec<Case>,
    /// Sets each trial up before its body runs.
    pub prepare: Option<Prepare>,
}

impl std::fmt::Debug for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite").field("block", &self.block).field("needs", &self.needs).finish()
    }
}

impl Suite {
    /// Why none of its cases can run through `driver` with `handles`, if so.
    pub fn out_of_reach(&self, driver: &str, handles: &Parts) -> Option<String> {
        self.needs.iter().find(|need| !need.in_reach(handles)).map(|need| need.missing(driver))
    }
}
