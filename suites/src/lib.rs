//! The certification cases: one normative rule each, written against the contract's traits,
//! which both drivers implement (the component itself in-process, or a client of a sidecar's
//! HTTP API). A case never knows which driver runs it; what a driver cannot express is a
//! [`case::Requirement`], so the planner skips with a reason instead of failing.

pub mod bindings;
pub mod case;
pub mod configuration;
pub mod faults;
pub mod history;
pub mod invocation;
pub mod linearizability;
pub mod lock;
pub mod pubsub;
pub mod secrets;
pub mod state;

pub use case::{
    Absent, Case, CaseResult, Claim, Ctx, DriverCapability, DriverInfo, Evidence, Finding, Requirement, Settings,
};

/// Every case of every suite, in a stable order.
pub fn all_cases() -> Vec<Case> {
    let mut all = state::cases();
    all.extend(lock::cases());
    all.extend(pubsub::cases());
    all.extend(secrets::cases());
    all.extend(configuration::cases());
    all.extend(bindings::cases());
    all.extend(invocation::cases());
    all.extend(faults::cases());
    all
}
