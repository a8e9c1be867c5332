//! The certification cases: one normative rule each, written against the contract's traits,
//! which every driver implements (the component itself in-process, or a client of a sidecar's
//! or a pluggable component's API). A case never knows which driver runs it; what a driver
//! cannot express is a [`case::Requirement`], so the planner skips with a reason instead of
//! failing. Each block is a [`Suite`]: its cases and the handles they need in reach.

pub mod actors;
pub mod bindings;
pub mod case;
pub mod configuration;
pub mod faults;
pub mod history;
pub mod http_api;
pub mod invocation;
pub mod jobs;
pub mod linearizability;
pub mod lock;
pub mod observability;
pub mod pubsub;
pub mod secrets;
pub mod state;
pub mod suite;
pub mod workflows;

pub use case::{
    Case, CaseResult, Claim, Ctx, DriverCapability, DriverInfo, Evidence, Finding, Reach, Requirement, Settings, Skip,
};
pub use suite::{Prepare, Suite};

/// Every suite, in a stable order: one line per block.
pub fn suites() -> Vec<Suite> {
    vec![
        state::SUITE,
        lock::SUITE,
        pubsub::SUITE,
        secrets::SUITE,
        configuration::SUITE,
        bindings::SUITE,
        invocation::SUITE,
        jobs::SUITE,
        observability::SUITE,
        actors::SUITE,
        workflows::SUITE,
        faults::STATE_SUITE,
        faults::PUBSUB_SUITE,
        faults::BINDINGS_SUITE,
    ]
}

/// Every case of every suite, in a stable order.
pub fn all_cases() -> Vec<Case> {
    suites().iter().flat_map(|s| (s.cases)()).collect()
}
