//! Actor state (actors-workflows-jobs.md §1.4): keys `<app>||<type>||<id>||<key>` in the store
//! flagged `actorStateStore`, which must do ETags and transactions; a transaction is one
//! `transact` of the store, and needs the actor active here.

use contract::actors::{ActorId, StateOp};
use contract::state::{DeleteRequest, GetRequest, SetRequest, TransactionOperation, TransactionRequest};
use contract::{Error, StateFeature, StateStore};

use super::{Engine, coded, refuse_reserved};

impl Engine {
    /// The stored key of `key` of `actor`.
    pub fn state_key(&self, actor: &ActorId, key: &str) -> String {
        format!("{}||{}||{}||{key}", self.app_id, actor.actor_type, actor.id)
    }

    /// The actor state store, if it can back actors.
    fn actor_store(&self, code: &str) -> Result<&dyn StateStore, Error> {
        let store = self.store.as_deref().ok_or_else(|| {
            coded(
                500,
                "ERR_ACTOR_RUNTIME_NOT_FOUND",
                "the state store is not configured to use the actor runtime: set the metadata `actorStateStore` to `true` on a store that does ETags and transactions",
            )
        })?;
        let features = store.features();
        if !features.contains(&StateFeature::Etag) || !features.contains(&StateFeature::Transactional) {
            return Err(coded(
                500,
                code,
                "the actor state store must support ETags and transactions (`actorStateStore` on a store without them)",
            ));
        }
        Ok(store)
    }

    pub(super) async fn get_state(&self, actor: &ActorId, key: &str) -> Result<Option<Vec<u8>>, Error> {
        refuse_reserved(actor)?;
        let store = self.actor_store("ERR_ACTOR_STATE_GET")?;
        let item = store
            .get(GetRequest::new(self.state_key(actor, key)))
            .await
            .map_err(|e| coded(500, "ERR_ACTOR_STATE_GET", format!("error getting actor state: {e}")))?;
        Ok(item.map(|i| i.data).filter(|d| !d.is_empty()))
    }

    pub(super) async fn transact_state(&self, actor: &ActorId, ops: Vec<StateOp>) -> Result<(), Error> {
        refuse_reserved(actor)?;
        let store = self.actor_store("ERR_ACTOR_STATE_TRANSACTION_SAVE")?;
        if !self.is_active(actor) {
            return Err(coded(400, "ERR_ACTOR_INSTANCE_MISSING", "actor instance is missing"));
        }
        let partition = format!("{}||{}||{}", self.app_id, actor.actor_type, actor.id);
        let mut operations = Vec::with_capacity(ops.len());
        for op in ops {
            let operation = match op {
                StateOp::Upsert { key, value } => {
                    let bytes = serde_json::to_vec(&value).unwrap_or_default();
                    let mut set = SetRequest::new(self.state_key(actor, &key), bytes);
                    set.metadata.insert("partitionKey".into(), partition.clone());
                    TransactionOperation::Set(set)
                }
                StateOp::Delete { key } => {
                    let mut delete = DeleteRequest::new(self.state_key(actor, &key));
                    delete.metadata.insert("partitionKey".into(), partition.clone());
                    TransactionOperation::Delete(delete)
                }
            };
            operations.push(operation);
        }
        store
            .transact(TransactionRequest { operations, metadata: Default::default() })
            .await
            .map_err(|e| coded(500, "ERR_ACTOR_STATE_TRANSACTION_SAVE", format!("error saving actor state: {e}")))
    }
}
