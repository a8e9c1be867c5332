//! The plan: spec × component × driver × case, each pair a named trial, filterable like a
//! Rust test. A case that does not apply is planned as skipped with its reason, so the report
//! shows it.

use std::collections::BTreeSet;

use contract::Block;
use suites::{Case, Claim, DriverInfo, Settings};

use crate::http_driver::http_driver_info;
use crate::spec::DriverKind;

/// What a component is certified as, through one driver.
#[derive(Debug, Clone)]
pub struct Target {
    /// The component's name.
    pub component: String,
    /// Its `spec.type`.
    pub type_name: String,
    /// The driver.
    pub driver: DriverKind,
    /// What it claims.
    pub claims: BTreeSet<Claim>,
    /// Its settings.
    pub settings: Settings,
    /// Why none of its cases can run, if so (a backend missing, or failing to start).
    pub blocked: Option<Blocked>,
}

/// Why a target's cases cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// Nothing here can provide what it needs: its cases are skipped with this reason.
    Unavailable(String),
    /// Setting it up failed: its cases fail with this reason.
    SetupFailed(String),
}

/// One case against one target.
#[derive(Debug, Clone)]
pub struct Trial {
    /// `component::case-id`, or `component@http::case-id` through the HTTP driver.
    pub name: String,
    /// The target.
    pub target: Target,
    /// The case.
    pub case: Case,
    /// Why it will not run, if it will not.
    pub skip: Option<String>,
}

/// The name of a trial.
pub fn trial_name(component: &str, driver: DriverKind, case_id: &str) -> String {
    match driver {
        DriverKind::InProcess => format!("{component}::{case_id}"),
        DriverKind::Http => format!("{component}@http::{case_id}"),
        DriverKind::Faults => format!("{component}@faults::{case_id}"),
        DriverKind::Grpc => format!("{component}@grpc::{case_id}"),
    }
}

/// The driver's description.
pub fn driver_info(driver: DriverKind) -> DriverInfo {
    match driver {
        DriverKind::InProcess => DriverInfo::in_process(),
        DriverKind::Http => http_driver_info(),
        DriverKind::Faults => DriverInfo::faults(),
        DriverKind::Grpc => DriverInfo::grpc(),
    }
}

/// Which trials a run keeps: like `cargo test`, a trial runs when any filter is a substring of
/// its name (or equals it with `exact`) and no `skip` pattern is.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Substrings (or exact names).
    pub patterns: Vec<String>,
    /// Match whole names only.
    pub exact: bool,
    /// Substrings that exclude.
    pub skip: Vec<String>,
    /// A worker's share of a supervised run: only these trials, if given…
    pub only: Option<BTreeSet<String>>,
    /// …and none of these.
    pub without: BTreeSet<String>,
}

impl Filter {
    /// True when `name` is kept.
    pub fn keeps(&self, name: &str) -> bool {
        let hit = |p: &String| if self.exact { name == p } else { name.contains(p.as_str()) };
        (self.patterns.is_empty() || self.patterns.iter().any(hit))
            && !self.skip.iter().any(|s| name.contains(s.as_str()))
            && self.only.as_ref().is_none_or(|only| only.contains(name))
            && !self.without.contains(name)
    }
}

/// Plans every case of `cases` against every target whose block it serves.
pub fn plan(targets: &[Target], cases: &[Case], filter: &Filter) -> Vec<Trial> {
    let mut trials = Vec::new();
    for target in targets {
        let block = Block::of_type(&target.type_name);
        let info = driver_info(target.driver);
        // Fault scenarios run only through the faults driver, and it runs nothing else.
        let faults = target.driver == DriverKind::Faults;
        for case in cases.iter().filter(|c| Some(c.block) == block && c.tags.contains(&"faults") == faults) {
            let name = trial_name(&target.component, target.driver, case.id);
            if !filter.keeps(&name) {
                continue;
            }
            let skip = match &target.blocked {
                Some(Blocked::Unavailable(reason)) => Some(reason.clone()),
                _ => case.skip_reason(&target.claims, &info),
            };
            trials.push(Trial { name, target: target.clone(), case: case.clone(), skip });
        }
    }
    trials
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_work_like_cargo_test() {
        let f = Filter { patterns: vec!["etag".into()], skip: vec!["@http".into()], ..Filter::default() };
        assert!(f.keeps("s::state.etag.stale-write-rejected"));
        assert!(!f.keeps("s@http::state.etag.stale-write-rejected"));
        assert!(!f.keeps("s::state.crud.ping"));
        let exact = Filter { patterns: vec!["s::state.crud.ping".into()], exact: true, ..Filter::default() };
        assert!(exact.keeps("s::state.crud.ping") && !exact.keeps("s::state.crud.ping2"));
        assert!(Filter::default().keeps("anything"));
    }
}
