//! State through a sidecar's gRPC API: values travel as bytes, as given; a missing key is an
//! empty answer; the store's features come from `GetMetadata`.

use async_trait::async_trait;
use contract::state::{
    BulkGetItem, Concurrency, Consistency, DeleteRequest, GetRequest, Item, QueryItem, QueryRequest, QueryResponse,
    SetRequest, StateOptions, TransactionOperation, TransactionRequest,
};
use contract::{FeatureSet, Result, StateFeature, StateStore};
use runtime_api::common::{self, state_options::StateConcurrency, state_options::StateConsistency};
use runtime_api::runtime::*;

use super::{GrpcSidecar, map};
use crate::http::ConnectError;

/// A state store reached through a sidecar's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcStateStore {
    sidecar: GrpcSidecar,
    store: String,
    features: FeatureSet<StateFeature>,
}

impl GrpcStateStore {
    /// The store `store` of `sidecar`, with the features its metadata lists.
    pub async fn connect(sidecar: &GrpcSidecar, store: &str) -> std::result::Result<Self, ConnectError> {
        let found = sidecar.find("state", store).await?;
        let features = found.capabilities.iter().filter_map(|c| c.parse::<StateFeature>().ok()).collect();
        Ok(Self { sidecar: sidecar.clone(), store: store.to_owned(), features })
    }
}

fn consistency(c: Consistency) -> i32 {
    match c {
        Consistency::Eventual => StateConsistency::ConsistencyEventual as i32,
        Consistency::Strong => StateConsistency::ConsistencyStrong as i32,
    }
}

fn options(o: &StateOptions) -> Option<common::StateOptions> {
    let concurrency = match o.concurrency {
        Concurrency::FirstWrite => StateConcurrency::ConcurrencyFirstWrite,
        Concurrency::LastWrite => StateConcurrency::ConcurrencyLastWrite,
    };
    Some(common::StateOptions { concurrency: concurrency as i32, consistency: consistency(o.consistency) })
}

fn etag(etag: &Option<String>) -> Option<common::Etag> {
    etag.as_ref().map(|value| common::Etag { value: value.clone() })
}

fn item(request: &SetRequest) -> common::StateItem {
    let mut metadata = map(&request.metadata);
    if let Some(ct) = &request.content_type {
        metadata.insert(contract::state::CONTENT_TYPE.into(), ct.clone());
    }
    common::StateItem {
        key: request.key.clone(),
        value: request.value.clone(),
        etag: etag(&request.etag),
        metadata,
        options: options(&request.options),
    }
}

fn delete_item(request: &DeleteRequest) -> common::StateItem {
    common::StateItem {
        key: request.key.clone(),
        etag: etag(&request.etag),
        metadata: map(&request.metadata),
        options: options(&request.options),
        ..Default::default()
    }
}

/// The answer's bytes and ETag as an item; nothing at all is a missing key.
fn found(data: Vec<u8>, etag: String, metadata: std::collections::HashMap<String, String>) -> Option<Item> {
    if data.is_empty() && etag.is_empty() {
        return None;
    }
    let etag = Some(etag).filter(|e| !e.is_empty());
    Some(Item { data, etag, metadata: metadata.into_iter().collect(), content_type: None })
}

#[async_trait]
impl StateStore for GrpcStateStore {
    fn features(&self) -> FeatureSet<StateFeature> {
        self.features.clone()
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("state", &self.store).await
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        let call = GetStateRequest {
            store_name: self.store.clone(),
            key: request.key.clone(),
            consistency: consistency(request.consistency),
            metadata: map(&request.metadata),
        };
        let answer = self.sidecar.client().get_state(self.sidecar.request(call)).await;
        let answer = answer.map_err(|s| self.sidecar.error(&request.key, s))?.into_inner();
        Ok(found(answer.data, answer.etag, answer.metadata))
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        self.bulk_set(vec![request]).await
    }

    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        let key = if requests.len() == 1 { requests[0].key.clone() } else { "<bulk>".to_owned() };
        let call = SaveStateRequest { store_name: self.store.clone(), states: requests.iter().map(item).collect() };
        let answer = self.sidecar.client().save_state(self.sidecar.request(call)).await;
        answer.map(drop).map_err(|s| self.sidecar.error(&key, s))
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        let call = DeleteStateRequest {
            store_name: self.store.clone(),
            key: request.key.clone(),
            etag: etag(&request.etag),
            options: options(&request.options),
            metadata: map(&request.metadata),
        };
        let answer = self.sidecar.client().delete_state(self.sidecar.request(call)).await;
        answer.map(drop).map_err(|s| self.sidecar.error(&request.key, s))
    }

    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        let call = DeleteBulkStateRequest {
            store_name: self.store.clone(),
            states: requests.iter().map(delete_item).collect(),
        };
        let answer = self.sidecar.client().delete_bulk_state(self.sidecar.request(call)).await;
        answer.map(drop).map_err(|s| self.sidecar.error("<bulk>", s))
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkGetItem>> {
        let call = GetBulkStateRequest {
            store_name: self.store.clone(),
            keys: requests.iter().map(|r| r.key.clone()).collect(),
            parallelism: 0,
            metadata: requests.first().map(|r| map(&r.metadata)).unwrap_or_default(),
        };
        let answer = self.sidecar.client().get_bulk_state(self.sidecar.request(call)).await;
        let items = answer.map_err(|s| self.sidecar.error("<bulk>", s))?.into_inner().items;
        Ok(items
            .into_iter()
            .map(|i| BulkGetItem {
                key: i.key,
                item: found(i.data, i.etag, i.metadata),
                error: Some(i.error).filter(|e| !e.is_empty()),
            })
            .collect())
    }

    async fn transact(&self, request: TransactionRequest) -> Result<()> {
        let operations = request
            .operations
            .iter()
            .map(|op| match op {
                TransactionOperation::Set(set) => {
                    TransactionalStateOperation { operation_type: "upsert".into(), request: Some(item(set)) }
                }
                TransactionOperation::Delete(delete) => {
                    TransactionalStateOperation { operation_type: "delete".into(), request: Some(delete_item(delete)) }
                }
            })
            .collect();
        let call = ExecuteStateTransactionRequest {
            store_name: self.store.clone(),
            operations,
            metadata: map(&request.metadata),
        };
        let answer = self.sidecar.client().execute_state_transaction(self.sidecar.request(call)).await;
        answer.map(drop).map_err(|s| self.sidecar.error("<transaction>", s))
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryResponse> {
        let call = QueryStateRequest {
            store_name: self.store.clone(),
            query: request.query.to_json().to_string(),
            metadata: map(&request.metadata),
        };
        let answer = self.sidecar.client().query_state_alpha1(self.sidecar.request(call)).await;
        let answer = answer.map_err(|s| self.sidecar.error("<query>", s))?.into_inner();
        Ok(QueryResponse {
            results: answer
                .results
                .into_iter()
                .map(|r| QueryItem {
                    key: r.key,
                    data: r.data,
                    etag: Some(r.etag).filter(|e| !e.is_empty()),
                    error: Some(r.error).filter(|e| !e.is_empty()),
                })
                .collect(),
            token: Some(answer.token).filter(|t| !t.is_empty()),
            metadata: answer.metadata.into_iter().collect(),
        })
    }
}
