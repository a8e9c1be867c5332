//! A case: one normative rule as data (id, block, rule sentence, source, requirements, tags,
//! timeout) with the async body that checks it, and [`case!`](crate::case!), the one way
//! suites write one.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use contract::{Block, Parts};
use futures::future::BoxFuture;

use super::{CaseResult, Claim, Ctx, DriverCapability, DriverInfo, Reach};

/// When a case applies.
#[derive(Debug, Clone, Copy)]
pub enum Requirement {
    /// The component claims this.
    Claimed(Claim),
    /// The component does not claim this (negative feature checks).
    NotClaimed(Claim),
    /// The driver can do this.
    Driver(DriverCapability),
    /// The driver gives the case this, beyond what every case of its block gets (a
    /// configuration writer, a binding's input side, fault control).
    Reach(Reach),
}

/// A case body.
pub type Body = fn(Ctx) -> BoxFuture<'static, CaseResult>;

/// One normative rule, as data, with its check.
#[derive(Clone)]
pub struct Case {
    /// The stable id, e.g. `state.etag.stale-write-rejected`.
    pub id: &'static str,
    /// The building block.
    pub block: Block,
    /// The rule, as one MUST sentence.
    pub rule: &'static str,
    /// Where the rule comes from (`S26`, or `certify` for rules beyond Dapr's suite).
    pub source: &'static str,
    /// When the case applies.
    pub requires: &'static [Requirement],
    /// Tags such as `ttl`, `concurrency`, `latency`.
    pub tags: &'static [&'static str],
    /// The longest the body may run.
    pub timeout: Duration,
    /// The check.
    pub body: Body,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case").field("id", &self.id).field("rule", &self.rule).finish()
    }
}

impl Case {
    /// Why the case does not apply to a component with `claims` under `driver`, which gives it
    /// `reach` (not checked when `None`), if it does not.
    pub fn skip_reason(&self, claims: &BTreeSet<Claim>, driver: &DriverInfo, reach: Option<&Parts>) -> Option<String> {
        self.skip(claims, driver, reach).map(|s| s.reason)
    }

    /// Why the case will not run against a component with `claims` through `driver` whose
    /// handles are `reach` (not checked when `None`), and whether that is a gap of the run
    /// (a handle certify lacks) rather than the case not applying.
    pub fn skip(&self, claims: &BTreeSet<Claim>, driver: &DriverInfo, reach: Option<&Parts>) -> Option<Skip> {
        let applies_not = |reason: String| Some(Skip { reason, could_not_run: false });
        self.requires.iter().find_map(|r| match r {
            Requirement::Claimed(c) if !claims.contains(c) => {
                applies_not(format!("the component does not claim `{c}`"))
            }
            Requirement::NotClaimed(c) if claims.contains(c) => applies_not(format!("the component claims `{c}`")),
            Requirement::Driver(cap) if !driver.can(*cap) => applies_not(format!(
                "the {} driver cannot express this ({})",
                driver.name,
                serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
            )),
            Requirement::Reach(need) if reach.is_some_and(|r| !need.in_reach(r)) => {
                Some(Skip { reason: need.missing(&driver.name), could_not_run: !need.inherent })
            }
            _ => None,
        })
    }

    /// The claims the case is about, for the feature matrix.
    pub fn claims(&self) -> Vec<Claim> {
        self.requires
            .iter()
            .filter_map(|r| match r {
                Requirement::Claimed(c) | Requirement::NotClaimed(c) => Some(*c),
                Requirement::Driver(_) | Requirement::Reach(_) => None,
            })
            .collect()
    }
}

/// Why a case will not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// For the report.
    pub reason: String,
    /// The case applies but the run lacks what it needs (a handle, a backend): the component
    /// is not certified on it, and `--require-all` fails the run.
    pub could_not_run: bool,
}

/// Writes a [`Case`]: `case!(block, "id", "source", "rule", [requirements], [tags], seconds,
/// body)`, where `body` is an `async fn(Ctx) -> CaseResult`.
#[macro_export]
macro_rules! case {
    ($block:expr, $id:literal, $source:literal, $rule:literal, [$($req:expr),* $(,)?], [$($tag:literal),* $(,)?], $secs:expr, $body:path $(,)?) => {
        $crate::Case {
            id: $id,
            block: $block,
            rule: $rule,
            source: $source,
            requires: &[$($req),*],
            tags: &[$($tag),*],
            timeout: ::std::time::Duration::from_secs($secs),
            body: |ctx| ::std::boxed::Box::pin($body(ctx)),
        }
    };
}
