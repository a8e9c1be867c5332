//! What a case body gets: the handles its driver gives the component (each block's suite adds
//! its accessors, `ctx.state()`, `ctx.pubsub()`, …), the driver's description, the component's
//! claims and settings, a namespace private to the trial, and a place for evidence.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use contract::Parts;

use super::{Claim, DriverInfo, Finding, Reach, Settings};

/// What a case body runs against.
#[derive(Clone)]
pub struct Ctx {
    /// The handles the driver gives the component, by type.
    pub handles: Parts,
    /// The driver.
    pub driver: DriverInfo,
    /// The component's claims.
    pub claims: BTreeSet<Claim>,
    /// The component's settings.
    pub settings: Settings,
    /// The component's name (as a sidecar knows it).
    pub component: String,
    /// A prefix unique to this trial, so parallel and repeated runs never share keys.
    pub namespace: String,
    /// What the case leaves for the report (a history, a checker's verdict).
    pub evidence: Evidence,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("driver", &self.driver.name).field("namespace", &self.namespace).finish()
    }
}

impl Ctx {
    /// A key private to this trial.
    pub fn key(&self, name: &str) -> String {
        format!("{}-{name}", self.namespace)
    }

    /// The handle `Arc<T>` that `reach` names. The planner runs a case only where its block's
    /// handles are in reach, so a missing one is a planning bug: a failure, not a panic.
    pub fn reach<T: ?Sized + Send + Sync + 'static>(&self, reach: Reach) -> Result<&Arc<T>, Finding> {
        self.handles
            .get::<T>()
            .ok_or_else(|| Finding::Fail(format!("{} (a planning bug)", reach.missing(&self.driver.name))))
    }

    /// The handle `Arc<T>`, if the driver gives one (for what a case can do without).
    pub fn maybe<T: ?Sized + Send + Sync + 'static>(&self) -> Option<&Arc<T>> {
        self.handles.get::<T>()
    }
}

/// Evidence a case attaches to its record: JSON the report keeps beside the verdict.
#[derive(Debug, Clone, Default)]
pub struct Evidence(Arc<std::sync::Mutex<Option<serde_json::Value>>>);

impl Evidence {
    /// Replaces the evidence.
    pub fn set(&self, value: serde_json::Value) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
    }

    /// The evidence, if any was attached.
    pub fn take(&self) -> Option<serde_json::Value> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}
