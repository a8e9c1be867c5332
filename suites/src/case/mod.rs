//! The case model: a case is data about one normative rule plus an async body that checks it
//! against whatever driver runs it.

mod claims;
mod ctx;
mod driver;
mod finding;
mod reach;
mod rule;
mod settings;

pub use claims::Claim;
pub use ctx::{Ctx, Evidence};
pub use driver::{DriverCapability, DriverInfo};
pub use finding::{CaseResult, Finding, Must};
pub use reach::Reach;
pub use rule::{Body, Case, Requirement, Skip};
pub use settings::Settings;
