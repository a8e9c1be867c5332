//! State over gRPC (dapr-grpc-api.md §3.2): values are bytes as given (no JSON re-encoding, as
//! over HTTP); a missing key is OK and empty; an ETag mismatch on save or delete is `Aborted`,
//! an invalid ETag `InvalidArgument`, a failed transaction `Internal`.

use std::collections::HashMap;
use std::sync::Arc;

use contract::state::{
    Concurrency, Consistency, DeleteRequest, GetRequest, QueryRequest, SetRequest, StateOptions, TransactionOperation,
    TransactionRequest,
};
use contract::state_query::Query;
use contract::{Block, Component, Error, Metadata, StateFeature, StateStore};
use runtime_api::common;
use runtime_api::runtime::*;
use tonic::{Code, Response, Status};

use super::Answer;
use super::status::{about, rich};
use crate::sidecar::{KeyScheme, Sidecar};

struct Store<'s> {
    name: String,
    store: Arc<dyn StateStore>,
    keys: &'s KeyScheme,
}

impl Store<'_> {
    fn key(&self, key: &str) -> Result<String, Status> {
        if key.contains("||") {
            let message = format!("input key/keyPrefix '{key}' can't contain '||'");
            return Err(about(Code::InvalidArgument, "DAPR_STATE_ILLEGAL_KEY", message, "state", &self.name));
        }
        Ok(self.keys.wrap(key))
    }
}

fn store<'s>(sc: &'s Sidecar, name: &str) -> Result<Store<'s>, Status> {
    if !sc.components.has_block(Block::STATE) {
        let message = "state store is not configured";
        return Err(rich(Code::FailedPrecondition, "DAPR_STATE_NOT_CONFIGURED", message, &[]));
    }
    match (sc.components.get(name, Block::STATE).and_then(Component::as_state), sc.key_schemes.get(name)) {
        (Some(store), Some(keys)) => Ok(Store { name: name.to_owned(), store: Arc::clone(store), keys }),
        _ => Err(rich(
            Code::InvalidArgument,
            "DAPR_STATE_NOT_FOUND",
            format!("state store {name} is not found"),
            &[("appID", sc.config.app_id.as_str())],
        )),
    }
}

fn metadata(m: HashMap<String, String>) -> Metadata {
    m.into_iter().collect()
}

fn consistency(value: i32) -> Consistency {
    match common::state_options::StateConsistency::try_from(value) {
        Ok(common::state_options::StateConsistency::ConsistencyStrong) => Consistency::Strong,
        _ => Consistency::Eventual,
    }
}

fn options(options: Option<common::StateOptions>) -> StateOptions {
    let Some(o) = options else { return StateOptions::default() };
    let concurrency = match common::state_options::StateConcurrency::try_from(o.concurrency) {
        Ok(common::state_options::StateConcurrency::ConcurrencyFirstWrite) => Concurrency::FirstWrite,
        _ => Concurrency::LastWrite,
    };
    StateOptions { concurrency, consistency: consistency(o.consistency) }
}

/// A store error on a write: `Aborted` for a mismatch, `InvalidArgument` for an invalid ETag,
/// else `Internal`; the reason is the legacy code (there is no ETag reason over gRPC).
fn write_error(reason: &'static str, what: String, error: &Error) -> Status {
    let etag = |e: &Error| match e {
        Error::EtagMismatch { .. } => Some(Code::Aborted),
        Error::EtagInvalid { .. } => Some(Code::InvalidArgument),
        _ => None,
    };
    let code = match error {
        Error::Bulk(failures) if !failures.is_empty() => {
            let codes: Vec<_> = failures.iter().map(|f| etag(&f.error)).collect();
            match codes.iter().all(Option::is_some) {
                true if codes.contains(&Some(Code::InvalidArgument)) => Some(Code::InvalidArgument),
                true => Some(Code::Aborted),
                false => None,
            }
        }
        other => etag(other),
    };
    match code {
        Some(Code::Aborted) => {
            rich(Code::Aborted, reason, format!("{what}: possible etag mismatch. error from state store: {error}"), &[])
        }
        Some(code) => rich(code, reason, format!("{what}: invalid etag value: {error}"), &[]),
        None => rich(Code::Internal, reason, format!("{what}: {error}"), &[]),
    }
}

fn set_request(store: &Store<'_>, item: common::StateItem) -> Result<SetRequest, Status> {
    let mut metadata = metadata(item.metadata);
    let content_type = metadata.remove(contract::state::CONTENT_TYPE);
    Ok(SetRequest {
        key: store.key(&item.key)?,
        value: item.value,
        etag: item.etag.map(|e| e.value),
        content_type,
        options: options(item.options),
        metadata,
    })
}

pub(super) async fn get(sc: &Sidecar, r: GetStateRequest) -> Answer<GetStateResponse> {
    let store = store(sc, &r.store_name)?;
    let request =
        GetRequest { key: store.key(&r.key)?, metadata: metadata(r.metadata), consistency: consistency(r.consistency) };
    let item = store.store.get(request).await.map_err(|e| {
        let message = format!("fail to get {} from state store {}: {e}", r.key, store.name);
        rich(Code::Internal, "ERR_STATE_GET", message, &[])
    })?;
    Ok(Response::new(match item {
        None => GetStateResponse::default(),
        Some(item) => GetStateResponse {
            data: item.data,
            etag: item.etag.unwrap_or_default(),
            metadata: item.metadata.into_iter().collect(),
        },
    }))
}

pub(super) async fn bulk_get(sc: &Sidecar, r: GetBulkStateRequest) -> Answer<GetBulkStateResponse> {
    let store = store(sc, &r.store_name)?;
    let md = metadata(r.metadata);
    let requests = r
        .keys
        .iter()
        .map(|k| Ok(GetRequest { key: store.key(k)?, metadata: md.clone(), consistency: Consistency::default() }))
        .collect::<Result<Vec<_>, Status>>()?;
    let items = store.store.bulk_get(requests).await.map_err(|e| {
        let message = format!("failed bulk get from state store {}: {e}", store.name);
        rich(Code::Internal, "ERR_STATE_BULK_GET", message, &[])
    })?;
    let items = items
        .into_iter()
        .map(|bulk| {
            let item = bulk.item.unwrap_or_default();
            BulkStateItem {
                key: store.keys.unwrap(&bulk.key).to_owned(),
                data: item.data,
                etag: item.etag.unwrap_or_default(),
                error: bulk.error.unwrap_or_default(),
                metadata: item.metadata.into_iter().collect(),
            }
        })
        .collect();
    Ok(Response::new(GetBulkStateResponse { items }))
}

pub(super) async fn save(sc: &Sidecar, r: SaveStateRequest) -> Answer<()> {
    let store = store(sc, &r.store_name)?;
    let what = format!("failed saving state in state store {}", store.name);
    if r.states.iter().any(|s| s.key.is_empty()) {
        return Err(rich(Code::InvalidArgument, "ERR_STATE_SAVE", format!("{what}: a state item has no key"), &[]));
    }
    let mut requests = r.states.into_iter().map(|i| set_request(&store, i)).collect::<Result<Vec<_>, _>>()?;
    let result = match requests.len() {
        0 => Ok(()),
        1 => store.store.set(requests.remove(0)).await,
        _ => store.store.bulk_set(requests).await,
    };
    result.map_err(|e| write_error("ERR_STATE_SAVE", what, &e))?;
    Ok(Response::new(()))
}

fn delete_request(
    store: &Store<'_>,
    key: &str,
    etag: Option<common::Etag>,
    o: Option<common::StateOptions>,
    md: HashMap<String, String>,
) -> Result<DeleteRequest, Status> {
    Ok(DeleteRequest { key: store.key(key)?, etag: etag.map(|e| e.value), metadata: metadata(md), options: options(o) })
}

pub(super) async fn delete(sc: &Sidecar, r: DeleteStateRequest) -> Answer<()> {
    let store = store(sc, &r.store_name)?;
    let request = delete_request(&store, &r.key, r.etag, r.options, r.metadata)?;
    let what = format!("failed deleting state with key {}", r.key);
    store.store.delete(request).await.map_err(|e| write_error("ERR_STATE_DELETE", what, &e))?;
    Ok(Response::new(()))
}

pub(super) async fn bulk_delete(sc: &Sidecar, r: DeleteBulkStateRequest) -> Answer<()> {
    let store = store(sc, &r.store_name)?;
    let requests = r
        .states
        .into_iter()
        .map(|i| delete_request(&store, &i.key, i.etag, i.options, i.metadata))
        .collect::<Result<Vec<_>, _>>()?;
    if !requests.is_empty() {
        let what = format!("failed deleting state in state store {}", store.name);
        store.store.bulk_delete(requests).await.map_err(|e| write_error("ERR_STATE_DELETE", what, &e))?;
    }
    Ok(Response::new(()))
}

pub(super) async fn transaction(sc: &Sidecar, r: ExecuteStateTransactionRequest) -> Answer<()> {
    let store = store(sc, &r.store_name)?;
    if !store.store.features().contains(&StateFeature::Transactional) {
        let message = format!("state store {} doesn't support transaction", store.name);
        return Err(rich(Code::Unimplemented, "DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED", message, &[]));
    }
    let mut operations = Vec::with_capacity(r.operations.len());
    for op in r.operations {
        let item = op.request.unwrap_or_default();
        operations.push(match op.operation_type.as_str() {
            "upsert" => TransactionOperation::Set(set_request(&store, item)?),
            "delete" => {
                TransactionOperation::Delete(delete_request(&store, &item.key, item.etag, item.options, item.metadata)?)
            }
            other => {
                let message = format!("operation type {other} not supported");
                return Err(rich(Code::Unimplemented, "ERR_NOT_SUPPORTED_STATE_OPERATION", message, &[]));
            }
        });
    }
    if let Some(max) = store.store.multi_max_size().filter(|max| operations.len() > *max) {
        let message =
            format!("the transaction contains {} operations, more than the store's limit of {max}", operations.len());
        return Err(rich(Code::InvalidArgument, "DAPR_STATE_TOO_MANY_TRANSACTIONS", message, &[]));
    }
    if !operations.is_empty() {
        store.store.transact(TransactionRequest { operations, metadata: metadata(r.metadata) }).await.map_err(|e| {
            let message = format!("error while executing state transaction: {e}");
            rich(Code::Internal, "ERR_STATE_TRANSACTION", message, &[])
        })?;
    }
    Ok(Response::new(()))
}

pub(super) async fn query(sc: &Sidecar, r: QueryStateRequest) -> Answer<QueryStateResponse> {
    let store = store(sc, &r.store_name)?;
    if !store.store.features().contains(&StateFeature::QueryApi) {
        let message = format!("state store {} does not support querying", store.name);
        return Err(rich(Code::Internal, "DAPR_STATE_QUERYING_NOT_SUPPORTED", message, &[]));
    }
    let failed = |e: Error| {
        let message = format!("state store {} query failed: {e}", store.name);
        rich(Code::Internal, "ERR_STATE_QUERY", message, &[])
    };
    let parsed = Query::from_slice(r.query.as_bytes()).map_err(failed)?;
    let response =
        store.store.query(QueryRequest { query: parsed, metadata: metadata(r.metadata) }).await.map_err(failed)?;
    // Only keys under this app's prefix belong to it.
    let results = response
        .results
        .into_iter()
        .filter(|item| match store.keys {
            KeyScheme::Prefix(p) => item.key.starts_with(&format!("{p}||")),
            KeyScheme::None => true,
        })
        .map(|item| QueryStateItem {
            key: store.keys.unwrap(&item.key).to_owned(),
            data: item.data,
            etag: item.etag.unwrap_or_default(),
            error: item.error.unwrap_or_default(),
        })
        .collect();
    Ok(Response::new(QueryStateResponse {
        results,
        token: response.token.unwrap_or_default(),
        metadata: response.metadata.into_iter().collect(),
    }))
}
