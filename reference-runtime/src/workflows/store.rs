//! Where the workflows outlive the runtime: the actor state store. Each instance is one key,
//! `<prefix>||instance||<instance id>`, holding its snapshot as protobuf (state, history,
//! inbox, pending activities); `<prefix>||index` lists the instance ids (no instance key can be
//! it, whatever the id). Plain gets and sets, so any state
//! store will do. One writer at a time, and it always writes the latest snapshot, so an
//! earlier one never overwrites a later one.

use std::sync::Arc;

use contract::StateStore;
use contract::state::{DeleteRequest, GetRequest, SetRequest};
use prost::Message;
use runtime_api::durabletask::{ActivityRequest, HistoryEvent, ParentInstanceInfo, WorkflowState};

/// An instance as kept.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Snapshot {
    #[prost(message, optional, tag = "1")]
    pub state: Option<WorkflowState>,
    #[prost(message, repeated, tag = "2")]
    pub history: Vec<HistoryEvent>,
    /// Events not yet committed, a turn in flight's included.
    #[prost(message, repeated, tag = "3")]
    pub inbox: Vec<HistoryEvent>,
    #[prost(message, optional, tag = "4")]
    pub deferred: Option<HistoryEvent>,
    #[prost(message, repeated, tag = "5")]
    pub activities: Vec<ActivityRequest>,
    #[prost(message, optional, tag = "6")]
    pub parent: Option<ParentInstanceInfo>,
}

/// The keys of one app's workflows in a state store.
pub(crate) struct WorkflowStore {
    store: Arc<dyn StateStore>,
    prefix: String,
}

impl WorkflowStore {
    pub fn new(store: Arc<dyn StateStore>, prefix: String) -> Self {
        Self { store, prefix }
    }

    fn key(&self, id: &str) -> String {
        format!("{}||instance||{id}", self.prefix)
    }

    /// Writes an instance, or deletes it (`None`).
    pub async fn put(&self, id: &str, snapshot: Option<Snapshot>) -> Result<(), String> {
        let key = self.key(id);
        let done = match snapshot {
            Some(s) => self.store.set(SetRequest::new(&key, s.encode_to_vec())).await,
            None => self.store.delete(DeleteRequest { key, ..DeleteRequest::default() }).await,
        };
        done.map_err(|e| format!("cannot keep workflow `{id}`: {e}"))
    }

    /// Writes the list of instance ids.
    pub async fn put_index(&self, ids: &[String]) -> Result<(), String> {
        let value = serde_json::to_vec(ids).map_err(|e| e.to_string())?;
        let key = format!("{}||index", self.prefix);
        self.store.set(SetRequest::new(&key, value)).await.map_err(|e| format!("cannot keep the workflow index: {e}"))
    }

    /// Every instance kept. One that does not decode is an error naming its key: the store
    /// holds something this runtime did not write.
    pub async fn load(&self) -> Result<Vec<Snapshot>, String> {
        let key = format!("{}||index", self.prefix);
        let read = |e: contract::Error| format!("cannot read the workflows: {e}");
        let Some(index) = self.store.get(GetRequest::new(&key)).await.map_err(read)? else { return Ok(Vec::new()) };
        let ids: Vec<String> = serde_json::from_slice(&index.data)
            .map_err(|e| format!("the workflow index under `{key}` is not what this runtime wrote: {e}"))?;
        let mut snapshots = Vec::with_capacity(ids.len());
        for id in ids {
            let key = self.key(&id);
            let Some(item) = self.store.get(GetRequest::new(&key)).await.map_err(read)? else { continue };
            let snapshot = Snapshot::decode(item.data.as_slice())
                .map_err(|e| format!("the workflow under `{key}` does not decode: {e}"))?;
            snapshots.push(snapshot);
        }
        Ok(snapshots)
    }
}
