//! The report schema. Changing a field here changes what CI parses: do it deliberately and
//! bump [`SCHEMA_VERSION`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the report format.
pub const SCHEMA_VERSION: &str = "certify.report/v1";

/// What replaces a secret value in any output.
pub const REDACTED: &str = "<redacted>";

/// The verdict on one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The rule holds.
    Pass,
    /// The rule does not hold.
    Fail,
    /// The case could not decide; never counted as a pass.
    Inconclusive,
    /// The case does not apply, with the reason.
    Skipped,
}

impl Verdict {
    /// The word the terminal shows.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCL",
            Verdict::Skipped => "SKIP",
        }
    }
}

/// One case run against one component through one driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The trial name, e.g. `statestore@http::state.etag.stale-write-rejected`.
    pub trial: String,
    /// The case id.
    pub id: String,
    /// Skipped because the run lacked what the case needs (a handle, a backend), not because
    /// the case does not apply: the component is not certified on this rule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub could_not_run: bool,
    /// The case's building block (`state`, `pubsub`, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub block: String,
    /// The component's name.
    pub component: String,
    /// The driver: `in-process` or `http`.
    pub driver: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, for anything but a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the case ran, in milliseconds.
    pub duration_ms: f64,
    /// The rule, as one MUST sentence.
    pub rule: String,
    /// Where the rule comes from (`S26`, `certify`).
    pub source: String,
    /// The claims the case is about.
    pub features: Vec<String>,
    /// The case's tags.
    pub tags: Vec<String>,
    /// The command that reruns this case alone (for anything but a pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<String>,
    /// What the case left as evidence, e.g. a checker's minimal failing sub-history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

impl Report {
    /// What a reader must know beside the counts: cases that applied but could not run, and
    /// claims that came from the component itself rather than from the spec or `--features`.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let missing = self.summary.could_not_run;
        if missing > 0 {
            notes.push(format!(
                "not certified: {missing} case{} could not run (see their reasons; `--require-all` makes this a failure)",
                if missing == 1 { "" } else { "s" }
            ));
        }
        for c in self.components.iter().filter(|c| c.claims_from == "advertised") {
            let claims = c.claims.join(",");
            notes.push(format!(
                "the claims of `{}` are what it advertised ({}): pin them in CI with --features {claims}",
                c.name,
                if claims.is_empty() { "none" } else { claims.as_str() }
            ));
        }
        notes
    }
}

impl CaseRecord {
    /// The case's block; for a report written before it was recorded, the case id's first
    /// segment that names one (`faults.state.…` is `state`).
    pub fn block_name(&self) -> &str {
        if !self.block.is_empty() {
            return &self.block;
        }
        let mut segments = self.id.split('.');
        match segments.next() {
            Some("faults") => segments.next().unwrap_or("faults"),
            Some(first) => first,
            None => "",
        }
    }
}

/// A backend the run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendRecord {
    /// `redis`, `postgres`, `rabbitmq`, `kafka`.
    pub kind: String,
    /// `process`, `testcontainers` or `external`.
    pub provider: String,
    /// `host:port`.
    pub host: String,
    /// Which server: a container's image, a process's own version line, or where a given
    /// endpoint came from.
    #[serde(default)]
    pub server: String,
}

/// A component of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRecord {
    /// `metadata.name`.
    pub name: String,
    /// `spec.type`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The claims of the spec.
    pub claims: Vec<String>,
    /// The drivers it ran through.
    pub drivers: Vec<String>,
    /// Its metadata, secret values replaced by [`REDACTED`].
    pub metadata: BTreeMap<String, String>,
    /// Where the claims came from: `spec`, `--features`, or `advertised` (what the component
    /// said of itself, which a run cannot hold against it: pin claims with `--features`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub claims_from: String,
}

/// Where the run happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// The operating system.
    pub os: String,
    /// The CPU architecture.
    pub arch: String,
    /// The certify version.
    pub certify_version: String,
    /// `sha256:<hex>` of the spec's text, when the run had a spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_digest: Option<String>,
}

/// Counts by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Cases planned.
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Inconclusive.
    pub inconclusive: usize,
    /// Skipped.
    pub skipped: usize,
    /// Of the skipped, those that applied but could not run (see [`CaseRecord::could_not_run`]).
    #[serde(default)]
    pub could_not_run: usize,
}

impl Summary {
    /// Counts the verdicts of `cases`.
    pub fn of(cases: &[CaseRecord]) -> Self {
        let count = |v: Verdict| cases.iter().filter(|c| c.verdict == v).count();
        Summary {
            total: cases.len(),
            passed: count(Verdict::Pass),
            failed: count(Verdict::Fail),
            inconclusive: count(Verdict::Inconclusive),
            skipped: count(Verdict::Skipped),
            could_not_run: cases.iter().filter(|c| c.verdict == Verdict::Skipped && c.could_not_run).count(),
        }
    }

    /// True when every case that applies ran: the component is certified on every rule it
    /// claims, not only on those the run could reach.
    pub fn complete(&self) -> bool {
        self.could_not_run == 0
    }

    /// True when the run may be called a success: nothing failed and nothing was inconclusive.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.inconclusive == 0
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema: String,
    /// The spec that was run (a path, or `built-in`, or the sidecar's URL).
    pub spec: String,
    /// The run's id, which seeds every key and topic name it used.
    pub seed: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// Where it ran.
    pub environment: Environment,
    /// The components.
    pub components: Vec<ComponentRecord>,
    /// The backends it used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendRecord>,
    /// The cases, in plan order.
    pub cases: Vec<CaseRecord>,
    /// Counts by verdict.
    pub summary: Summary,
}
