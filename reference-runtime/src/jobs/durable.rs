//! Where a scheduler keeps its jobs so that they outlive it (J6): one key of a state store
//! holding every job with its creation time and the triggers it has fired. A scheduler started
//! over the same store (a restarted runtime) takes them up again: no trigger fires twice, and
//! the triggers that fell due while nobody ran fire once, at once.
//!
//! One key, rewritten whole on each change, so any state store will do (no listing, no
//! transactions); writes are serialised so a later snapshot is never overwritten by an
//! earlier one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use contract::StateStore;
use contract::state::{GetRequest, SetRequest};
use prost::Message;
use runtime_api::runtime::Job;
use serde::{Deserialize, Serialize};

/// A job as kept: the job, when it was created, and how many triggers it has fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// The job.
    pub job: Job,
    /// When it was scheduled: its plan counts from here.
    pub created: SystemTime,
    /// Triggers fired so far.
    pub fired: u32,
    /// When the next trigger is due, if one is left.
    pub next: Option<SystemTime>,
}

/// The stored form: the job as protobuf bytes (base64), times in milliseconds.
#[derive(Serialize, Deserialize)]
struct Stored {
    job: String,
    created_ms: u64,
    fired: u32,
    #[serde(default)]
    next_ms: Option<u64>,
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// A state store key holding a scheduler's jobs.
pub struct JobStore {
    store: Arc<dyn StateStore>,
    key: String,
    writing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore").field("key", &self.key).finish_non_exhaustive()
    }
}

impl JobStore {
    /// The jobs under `key` of `store`.
    pub fn new(store: Arc<dyn StateStore>, key: impl Into<String>) -> Arc<Self> {
        Arc::new(Self { store, key: key.into(), writing: tokio::sync::Mutex::new(()) })
    }

    /// The jobs under another `key` of the same store.
    pub fn sibling(&self, key: impl Into<String>) -> Arc<Self> {
        JobStore::new(Arc::clone(&self.store), key)
    }

    /// Writes the jobs `snapshot` gives, taken once the previous write is done; nothing when it
    /// gives `None`.
    pub async fn save(&self, snapshot: impl FnOnce() -> Option<Vec<Kept>>) -> Result<(), String> {
        let _turn = self.writing.lock().await;
        let Some(jobs) = snapshot() else { return Ok(()) };
        let stored: BTreeMap<String, Stored> = jobs
            .into_iter()
            .map(|k| {
                let job = STANDARD.encode(k.job.encode_to_vec());
                let stored = Stored { job, created_ms: millis(k.created), fired: k.fired, next_ms: k.next.map(millis) };
                (k.job.name, stored)
            })
            .collect();
        let value = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
        self.store.set(SetRequest::new(&self.key, value)).await.map_err(|e| format!("cannot keep the jobs: {e}"))
    }

    /// The jobs kept, by name.
    pub async fn load(&self) -> Result<Vec<Kept>, String> {
        let item =
            self.store.get(GetRequest::new(&self.key)).await.map_err(|e| format!("cannot read the jobs: {e}"))?;
        let Some(item) = item else { return Ok(Vec::new()) };
        let stored: BTreeMap<String, Stored> = serde_json::from_slice(&item.data)
            .map_err(|e| format!("the jobs kept under `{}` are not what this runtime wrote: {e}", self.key))?;
        stored
            .into_values()
            .map(|s| {
                let bytes = STANDARD.decode(&s.job).map_err(|e| format!("a kept job is not base64: {e}"))?;
                let job = Job::decode(bytes.as_slice()).map_err(|e| format!("a kept job does not decode: {e}"))?;
                let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
                Ok(Kept { job, created: at(s.created_ms), fired: s.fired, next: s.next_ms.map(at) })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_round_trip_through_any_state_store() {
        let store = Arc::new(crate::in_memory::state_memory::InMemoryStateStore::new(contract::system_clock()));
        let jobs = JobStore::new(store, "jobs");
        assert_eq!(jobs.load().await, Ok(Vec::new()));
        let created = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let job = Job { name: "a".into(), schedule: Some("@every 1s".into()), ..Job::default() };
        let kept = Kept { job, created, fired: 2, next: Some(created + Duration::from_secs(3)) };
        let copy = kept.clone();
        jobs.save(move || Some(vec![copy])).await.expect("saved");
        assert_eq!(jobs.load().await, Ok(vec![kept]));
    }
}
