//! What a case reaches its component through: handles (trait objects and the like) by type,
//! which the driver gives each component (a `contract::Parts`). A [`Reach`] names one kind of
//! handle, so the planner can tell, before a case runs, that its driver gives no such handle
//! (a skip with the reason) instead of the case finding out.

use std::any::TypeId;
use std::sync::Arc;

use contract::Parts;

/// One kind of handle a case can need, e.g. "a state store".
#[derive(Debug, Clone, Copy)]
pub struct Reach {
    /// What it is, for skip reasons: `a state store`.
    pub what: &'static str,
    /// How to get it, when the driver does not give it (for skip reasons): `start the run
    /// with --configuration-writer FILE`.
    pub hint: Option<&'static str>,
    /// True when no run through a driver without it could have it (the driver's form has no
    /// such thing, as a streaming subscription has no headers): its absence means the case
    /// does not apply there, not that the run lacked something.
    pub inherent: bool,
    id: fn() -> TypeId,
}

impl Reach {
    /// The handle `Arc<T>`, described as `what`.
    pub const fn of<T: ?Sized + Send + Sync + 'static>(what: &'static str) -> Reach {
        Reach { what, hint: None, inherent: false, id: TypeId::of::<Arc<T>> }
    }

    /// The same, given by some forms of a driver and never by others (see [`Reach::inherent`]).
    pub const fn inherent(self) -> Reach {
        Reach { inherent: true, ..self }
    }

    /// The same, with a hint on how to get it.
    pub const fn hinted(self, hint: &'static str) -> Reach {
        Reach { hint: Some(hint), ..self }
    }

    /// True when `handles` hold it.
    pub fn in_reach(&self, handles: &Parts) -> bool {
        handles.contains((self.id)())
    }

    /// Why a case needing it cannot run through `driver`.
    pub fn missing(&self, driver: &str) -> String {
        let hint = self.hint.map(|h| format!(": {h}")).unwrap_or_default();
        format!("the {driver} driver gives this component no {}{hint}", self.what)
    }
}
