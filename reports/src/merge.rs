//! Joins the bundles of one run split across machines (`certify run --partition hash:K/N`)
//! into the report an unsplit run would have given: the same trials with the same verdicts.

use std::collections::BTreeMap;

use crate::{Report, Summary};

/// The reports cannot be one run's shards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no report to merge")]
    Empty,
    /// They ran different specs, or different versions of one.
    #[error("the reports ran different specs: `{first}` and `{other}` (merge only the shards of one run)")]
    DifferentSpecs {
        /// The first report's spec (with its digest).
        first: String,
        /// The one that differs.
        other: String,
    },
    /// A trial is in two of them: the shards overlap, or one was given twice.
    #[error("trial `{trial}` is in more than one report (shards overlap, or a bundle was given twice)")]
    Overlap {
        /// The trial.
        trial: String,
    },
}

/// Merges `shards`: their cases (ordered by trial name, as no shard knows the whole plan),
/// components and backends, one summary; the earliest start, the longest duration (the shards
/// ran side by side). Shards must come from the same spec and share no trial.
pub fn merge(shards: Vec<Report>) -> Result<Report, MergeError> {
    let mut shards = shards.into_iter();
    let mut merged = shards.next().ok_or(MergeError::Empty)?;
    let spec_of = |r: &Report| format!("{} {}", r.spec, r.environment.spec_digest.as_deref().unwrap_or(""));
    let mut trials: BTreeMap<String, crate::CaseRecord> =
        merged.cases.drain(..).map(|c| (c.trial.clone(), c)).collect();
    for shard in shards {
        if spec_of(&shard) != spec_of(&merged) {
            return Err(MergeError::DifferentSpecs { first: spec_of(&merged), other: spec_of(&shard) });
        }
        for case in shard.cases {
            if trials.contains_key(&case.trial) {
                return Err(MergeError::Overlap { trial: case.trial });
            }
            trials.insert(case.trial.clone(), case);
        }
        for component in shard.components {
            if !merged.components.contains(&component) {
                merged.components.push(component);
            }
        }
        for backend in shard.backends {
            if !merged.backends.iter().any(|b| b.kind == backend.kind && b.server == backend.server) {
                merged.backends.push(backend);
            }
        }
        merged.started_at = merged.started_at.min(shard.started_at);
        merged.duration_ms = merged.duration_ms.max(shard.duration_ms);
        merged.seed = format!("{}+{}", merged.seed, shard.seed);
    }
    merged.cases = trials.into_values().collect();
    merged.summary = Summary::of(&merged.cases);
    Ok(merged)
}
