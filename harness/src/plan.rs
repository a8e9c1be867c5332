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
    /// One shard of the run, for CI machines that split it (`--partition hash:K/N`).
    pub partition: Option<Partition>,
}

impl Filter {
    /// True when `name` is kept.
    pub fn keeps(&self, name: &str) -> bool {
        let hit = |p: &String| if self.exact { name == p } else { name.contains(p.as_str()) };
        (self.patterns.is_empty() || self.patterns.iter().any(hit))
            && !self.skip.iter().any(|s| name.contains(s.as_str()))
            && self.only.as_ref().is_none_or(|only| only.contains(name))
            && !self.without.contains(name)
            && self.partition.is_none_or(|p| p.keeps(name))
    }
}

/// A stable share of the trials, in nextest's syntax `hash:K/N`: each trial name hashes into one
/// of N shards, and the run keeps shard K (1-based). The hash (64-bit FNV-1a of the name) does
/// not depend on the machine, the order of the plan or which trials exist, so N CI jobs each
/// given one K run every trial exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// K, 1-based.
    pub shard: u64,
    /// N.
    pub of: u64,
}

impl Partition {
    /// True when the trial `name` is in this shard.
    pub fn keeps(&self, name: &str) -> bool {
        let hash =
            name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        hash % self.of == self.shard - 1
    }
}

impl std::str::FromStr for Partition {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wrong = || format!("`{text}` is not a partition: write hash:K/N, with 1 ≤ K ≤ N (e.g. hash:2/4)");
        let (k, n) = text.strip_prefix("hash:").and_then(|kn| kn.split_once('/')).ok_or_else(wrong)?;
        let (shard, of) =
            (k.trim().parse::<u64>().map_err(|_| wrong())?, n.trim().parse::<u64>().map_err(|_| wrong())?);
        if shard == 0 || shard > of {
            return Err(wrong());
        }
        Ok(Partition { shard, of })
    }
}

/// Every component × driver of `spec`, before anything is built: no handles, nothing blocked.
/// Enough to name every trial (`certify list`, a test runner's `--list`) without starting a
/// backend; a session fills them in.
pub fn unbuilt_targets(spec: &crate::Spec, catalogue: &crate::Catalogue) -> Vec<Target> {
    let mut targets = Vec::new();
    for entry in &spec.entries {
        let Some(block) = catalogue.block_of(&entry.manifest.type_name).map(|b| b.block()) else { continue };
        for driver in &entry.drivers {
            targets.push(Target {
                component: entry.manifest.name.clone(),
                type_name: entry.manifest.type_name.clone(),
                block,
                driver: *driver,
                claims: entry.claims.clone(),
                settings: entry.settings.clone(),
                blocked: None,
                handles: Parts::default(),
            });
        }
    }
    targets
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

    #[test]
    fn partitions_split_every_name_into_exactly_one_shard() {
        let shards: Vec<Partition> = (1..=3).map(|k| format!("hash:{k}/3").parse().expect("partition")).collect();
        let names: Vec<String> = (0..300).map(|i| format!("store::state.case-{i}")).collect();
        for name in &names {
            assert_eq!(shards.iter().filter(|p| p.keeps(name)).count(), 1, "{name}");
        }
        // Roughly even: no shard gets less than a quarter.
        for p in &shards {
            assert!(names.iter().filter(|n| p.keeps(n)).count() > 75, "{p:?}");
        }
        for bad in ["hash:0/3", "hash:4/3", "count:1/2", "hash:1", "hash:a/b", ""] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }
}
