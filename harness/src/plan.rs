//! The plan: spec × component × driver × case, each pair a named trial, filterable like a
//! Rust test. A case that does not apply is planned as skipped with its reason, so the report
//! shows it.

use std::collections::BTreeSet;

use contract::{Block, Parts};
use suites::{Case, Claim, Prepare, Settings, Skip, Suite};

use crate::driver::DriverKind;

/// A component as certified through one driver, with the handles that driver gives it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The component's name.
    pub component: String,
    /// Its `spec.type`.
    pub type_name: String,
    /// Its block.
    pub block: Block,
    /// The driver.
    pub driver: DriverKind,
    /// What it claims.
    pub claims: BTreeSet<Claim>,
    /// Its settings.
    pub settings: Settings,
    /// Why none of its cases can run, if so (a backend missing, or failing to start).
    pub blocked: Option<Blocked>,
    /// What the driver gives its cases, by type.
    pub handles: Parts,
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
    pub skip: Option<Skip>,
    /// Sets the trial up before its body runs (from its suite).
    pub prepare: Option<Prepare>,
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

/// Plans every case of `suites` against every target of its block.
pub fn plan(targets: &[Target], suites: &[Suite], filter: &Filter) -> Vec<Trial> {
    let mut trials = Vec::new();
    for target in targets {
        let info = target.driver.info();
        // Fault scenarios run only through the faults driver, and it runs nothing else.
        let faults = target.driver == DriverKind::Faults;
        for suite in suites.iter().filter(|s| s.block == target.block) {
            let out_of_reach = suite.out_of_reach(info.name.as_str(), &target.handles);
            for case in (suite.cases)().into_iter().filter(|c| c.tags.contains(&"faults") == faults) {
                let name = target.driver.trial_name(&target.component, case.id);
                if !filter.keeps(&name) {
                    continue;
                }
                // A component that failed to start has no handles: its cases fail with the reason,
                // except those its claims or driver rule out anyway.
                let gap = |reason: &String| Skip { reason: reason.clone(), could_not_run: true };
                let skip = match &target.blocked {
                    Some(Blocked::Unavailable(reason)) => Some(gap(reason)),
                    Some(Blocked::SetupFailed(_)) => case.skip(&target.claims, &info, None),
                    None => out_of_reach
                        .as_ref()
                        .map(gap)
                        .or_else(|| case.skip(&target.claims, &info, Some(&target.handles))),
                };
                trials.push(Trial { name, target: target.clone(), case, skip, prepare: suite.prepare });
            }
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
