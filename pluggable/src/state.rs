//! The state store over gRPC, both ways: [`PluggableStateStore`] is a pluggable component as a
//! contract `StateStore` (how certify drives one), and [`StateService`] serves contract stores
//! as a pluggable component, one per instance that calls `Init`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use contract::state::{
    BulkGetItem, Concurrency, Consistency, DeleteRequest, GetRequest, Item, QueryItem, QueryRequest, QueryResponse,
    SetRequest, StateOptions, TransactionOperation, TransactionRequest,
};
use contract::state_query::Query;
use contract::{Error, FeatureSet, Metadata, Result, StateFeature, StateStore};
use serde_json::Value;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::conventions::{from_status, to_status};
use crate::instances::{Factory, Instances};
use crate::proto::components as pb;
use crate::{Answer, feature_names, features_of, metadata_request, with_instance};
use pb::queriable_state_store_client::QueriableStateStoreClient;
use pb::state_store_client::StateStoreClient;
use pb::transactional_state_store_client::TransactionalStateStoreClient;
use pb::transactional_store_multi_max_size_client::TransactionalStoreMultiMaxSizeClient;

/// A pluggable component's state store, reached over its socket.
#[derive(Debug, Clone)]
pub struct PluggableStateStore {
    channel: Channel,
    instance: String,
    features: FeatureSet<StateFeature>,
    /// Feature names the component listed that this build does not know.
    pub unknown_features: Vec<String>,
    /// The most operations a transaction may hold, as `MultiMaxSize` answered.
    multi_max_size: Option<usize>,
}

fn etag(etag: Option<&str>) -> Option<pb::Etag> {
    etag.map(|value| pb::Etag { value: value.to_owned() })
}

fn options(options: StateOptions) -> Option<pb::StateOptions> {
    use pb::state_options::{StateConcurrency, StateConsistency};
    let concurrency = match options.concurrency {
        Concurrency::FirstWrite => StateConcurrency::ConcurrencyFirstWrite,
        Concurrency::LastWrite => StateConcurrency::ConcurrencyLastWrite,
    };
    let consistency = match options.consistency {
        Consistency::Eventual => StateConsistency::ConsistencyEventual,
        Consistency::Strong => StateConsistency::ConsistencyStrong,
    };
    Some(pb::StateOptions { concurrency: concurrency as i32, consistency: consistency as i32 })
}

fn set_message(r: &SetRequest) -> pb::SetRequest {
    pb::SetRequest {
        key: r.key.clone(),
        value: r.value.clone(),
        etag: etag(r.etag()),
        metadata: r.metadata.clone().into_iter().collect(),
        options: options(r.options),
        content_type: r.content_type.clone().unwrap_or_default(),
    }
}

fn delete_message(r: &DeleteRequest) -> pb::DeleteRequest {
    pb::DeleteRequest {
        key: r.key.clone(),
        etag: etag(r.etag()),
        metadata: r.metadata.clone().into_iter().collect(),
        options: options(r.options),
    }
}

fn get_message(r: GetRequest) -> pb::GetRequest {
    let consistency = match r.consistency {
        Consistency::Eventual => pb::state_options::StateConsistency::ConsistencyEventual,
        Consistency::Strong => pb::state_options::StateConsistency::ConsistencyStrong,
    };
    pb::GetRequest { key: r.key, metadata: r.metadata.into_iter().collect(), consistency: consistency as i32 }
}

/// An answered item; by Dapr's pluggable state, no data and no ETag is an absent key.
fn item_of(
    data: Vec<u8>,
    etag: Option<pb::Etag>,
    metadata: std::collections::HashMap<String, String>,
    content_type: String,
) -> Option<Item> {
    if data.is_empty() && etag.is_none() {
        return None;
    }
    Some(Item {
        data,
        etag: etag.map(|e| e.value),
        metadata: metadata.into_iter().collect(),
        content_type: Some(content_type).filter(|c| !c.is_empty()),
    })
}

/// The keys of a bulk write, to name in its error.
fn keys_of<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let keys: Vec<&str> = keys.collect();
    match keys.as_slice() {
        [one] => (*one).to_owned(),
        _ => format!("one of {}", keys.join(", ")),
    }
}

/// A query as the protocol carries it: each filter as an `Any` holding its JSON.
fn query_message(query: &Query) -> pb::Query {
    let json = query.to_json();
    let filter = json
        .get("filter")
        .and_then(Value::as_object)
        .map(|f| {
            f.iter()
                .map(|(op, v)| {
                    (op.clone(), prost_types::Any { type_url: String::new(), value: v.to_string().into_bytes() })
                })
                .collect()
        })
        .unwrap_or_default();
    let sort = query
        .sort
        .iter()
        .map(|s| pb::Sorting {
            key: s.key.clone(),
            order: match s.order {
                contract::state_query::Order::Desc => pb::sorting::Order::Desc as i32,
                contract::state_query::Order::Asc => pb::sorting::Order::Asc as i32,
            },
        })
        .collect();
    let pagination = json.get("page").map(|p| pb::Pagination {
        limit: p.get("limit").and_then(Value::as_i64).unwrap_or_default(),
        token: p.get("token").and_then(Value::as_str).unwrap_or_default().to_owned(),
    });
    pb::Query { filter, sort, pagination }
}

/// The inverse of [`query_message`].
fn query_of(message: Option<pb::Query>) -> Result<Query> {
    let message = message.unwrap_or_default();
    let mut json = serde_json::Map::new();
    if !message.filter.is_empty() {
        let mut filter = serde_json::Map::new();
        for (op, any) in message.filter {
            let value: Value = serde_json::from_slice(&any.value)
                .map_err(|e| Error::InvalidArgument(format!("filter `{op}` does not hold JSON: {e}")))?;
            filter.insert(op, value);
        }
        json.insert("filter".into(), Value::Object(filter));
    }
    if !message.sort.is_empty() {
        let sort = message
            .sort
            .iter()
            .map(|s| {
                let order = if s.order == pb::sorting::Order::Desc as i32 { "DESC" } else { "ASC" };
                serde_json::json!({"key": s.key, "order": order})
            })
            .collect();
        json.insert("sort".into(), Value::Array(sort));
    }
    if let Some(p) = message.pagination {
        let mut page = serde_json::Map::new();
        if p.limit > 0 {
            page.insert("limit".into(), p.limit.into());
        }
        if !p.token.is_empty() {
            page.insert("token".into(), p.token.into());
        }
        json.insert("page".into(), Value::Object(page));
    }
    Query::from_json(&Value::Object(json))
}

impl PluggableStateStore {
    /// Initialises the component's instance `instance` with `properties` (its Component
    /// metadata) and reads its features, as daprd does.
    pub async fn init(channel: Channel, instance: &str, properties: BTreeMap<String, String>) -> Result<Self> {
        let mut client = StateStoreClient::new(channel.clone());
        let init = pb::InitRequest { metadata: metadata_request(properties) };
        client.init(with_instance(instance, init)).await.map_err(|s| from_status("", s))?;
        let listed = client
            .features(with_instance(instance, pb::FeaturesRequest {}))
            .await
            .map_err(|s| from_status("", s))?
            .into_inner()
            .features;
        let (features, unknown_features) = features_of(listed);
        // As daprd: a store that cannot say has no limit.
        let multi_max_size = TransactionalStoreMultiMaxSizeClient::new(channel.clone())
            .multi_max_size(with_instance(instance, pb::MultiMaxSizeRequest {}))
            .await
            .ok()
            .and_then(|answer| usize::try_from(answer.into_inner().max_size).ok())
            .filter(|max| *max > 0);
        Ok(Self { channel, instance: instance.to_owned(), features, unknown_features, multi_max_size })
    }

    fn client(&self) -> StateStoreClient<Channel> {
        StateStoreClient::new(self.channel.clone())
    }

    fn request<T>(&self, message: T) -> Request<T> {
        with_instance(&self.instance, message)
    }
}

#[async_trait]
impl StateStore for PluggableStateStore {
    fn features(&self) -> FeatureSet<StateFeature> {
        self.features.clone()
    }

    fn multi_max_size(&self) -> Option<usize> {
        self.multi_max_size
    }

    async fn ping(&self) -> Result<()> {
        self.client().ping(self.request(pb::PingRequest {})).await.map(drop).map_err(|s| from_status("", s))
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        let key = request.key.clone();
        let message = get_message(request);
        let answer = self.client().get(self.request(message)).await.map_err(|s| from_status(&key, s))?.into_inner();
        Ok(item_of(answer.data, answer.etag, answer.metadata, answer.content_type))
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        let message = set_message(&request);
        self.client().set(self.request(message)).await.map(drop).map_err(|s| from_status(&request.key, s))
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        let message = delete_message(&request);
        self.client().delete(self.request(message)).await.map(drop).map_err(|s| from_status(&request.key, s))
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkGetItem>> {
        let items = requests.into_iter().map(get_message).collect();
        let message = pb::BulkGetRequest { items, options: None };
        let answer = self.client().bulk_get(self.request(message)).await.map_err(|s| from_status("", s))?;
        Ok(answer
            .into_inner()
            .items
            .into_iter()
            .map(|i| BulkGetItem {
                item: item_of(i.data, i.etag, i.metadata, i.content_type),
                key: i.key,
                error: Some(i.error).filter(|e| !e.is_empty()),
            })
            .collect())
    }

    /// One call for the lot, as daprd makes it; the protocol answers one status for all.
    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        let keys = keys_of(requests.iter().map(|r| r.key.as_str()));
        let message = pb::BulkSetRequest { items: requests.iter().map(set_message).collect(), options: None };
        self.client().bulk_set(self.request(message)).await.map(drop).map_err(|s| from_status(&keys, s))
    }

    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        let keys = keys_of(requests.iter().map(|r| r.key.as_str()));
        let message = pb::BulkDeleteRequest { items: requests.iter().map(delete_message).collect(), options: None };
        self.client().bulk_delete(self.request(message)).await.map(drop).map_err(|s| from_status(&keys, s))
    }

    async fn transact(&self, request: TransactionRequest) -> Result<()> {
        use pb::transactional_state_operation::Request as Op;
        let operations = request
            .operations
            .iter()
            .map(|op| pb::TransactionalStateOperation {
                request: Some(match op {
                    TransactionOperation::Set(s) => Op::Set(set_message(s)),
                    TransactionOperation::Delete(d) => Op::Delete(delete_message(d)),
                }),
            })
            .collect();
        let message = pb::TransactionalStateRequest { operations, metadata: request.metadata.into_iter().collect() };
        TransactionalStateStoreClient::new(self.channel.clone())
            .transact(self.request(message))
            .await
            .map(drop)
            .map_err(|s| from_status("", s))
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryResponse> {
        let message = pb::QueryRequest {
            query: Some(query_message(&request.query)),
            metadata: request.metadata.into_iter().collect(),
        };
        let answer = QueriableStateStoreClient::new(self.channel.clone())
            .query(self.request(message))
            .await
            .map_err(|s| from_status("", s))?
            .into_inner();
        Ok(QueryResponse {
            results: answer
                .items
                .into_iter()
                .map(|i| QueryItem {
                    key: i.key,
                    data: i.data,
                    etag: i.etag.map(|e| e.value),
                    error: Some(i.error).filter(|e| !e.is_empty()),
                })
                .collect(),
            token: Some(answer.token).filter(|t| !t.is_empty()),
            metadata: answer.metadata.into_iter().collect(),
        })
    }
}

/// Builds a store for an instance from its Component metadata.
pub type StoreFactory = Factory<Arc<dyn StateStore>>;

/// Serves contract stores as a pluggable state store: `Init` builds one per instance (the
/// `x-component-instance` metadata), and every other call goes to the caller's instance.
#[derive(Clone)]
pub struct StateService {
    instances: Arc<Instances<Arc<dyn StateStore>>>,
}

impl StateService {
    /// A service building stores with `make`.
    pub fn new(make: StoreFactory) -> Self {
        Self { instances: Arc::new(Instances::new(make)) }
    }

    fn store<T>(&self, request: &Request<T>) -> std::result::Result<Arc<dyn StateStore>, Status> {
        self.instances.get(request)
    }
}

fn set_request(m: pb::SetRequest) -> SetRequest {
    SetRequest {
        key: m.key,
        value: m.value,
        etag: m.etag.map(|e| e.value),
        metadata: m.metadata.into_iter().collect(),
        options: state_options(m.options),
        content_type: Some(m.content_type).filter(|c| !c.is_empty()),
    }
}

fn delete_request(m: pb::DeleteRequest) -> DeleteRequest {
    DeleteRequest {
        key: m.key,
        etag: m.etag.map(|e| e.value),
        metadata: m.metadata.into_iter().collect(),
        options: state_options(m.options),
    }
}

fn state_options(m: Option<pb::StateOptions>) -> StateOptions {
    let m = m.unwrap_or_default();
    StateOptions {
        concurrency: if m.concurrency == pb::state_options::StateConcurrency::ConcurrencyFirstWrite as i32 {
            Concurrency::FirstWrite
        } else {
            Concurrency::LastWrite
        },
        consistency: if m.consistency == pb::state_options::StateConsistency::ConsistencyStrong as i32 {
            Consistency::Strong
        } else {
            Consistency::Eventual
        },
    }
}

#[async_trait]
impl pb::state_store_server::StateStore for StateService {
    async fn init(&self, request: Request<pb::InitRequest>) -> Answer<pb::InitResponse> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata, false).await?;
        Ok(Response::new(pb::InitResponse {}))
    }

    async fn features(&self, request: Request<pb::FeaturesRequest>) -> Answer<pb::FeaturesResponse> {
        let store = self.store(&request)?;
        let features = feature_names(&store.features());
        Ok(Response::new(pb::FeaturesResponse { features }))
    }

    async fn delete(&self, request: Request<pb::DeleteRequest>) -> Answer<pb::DeleteResponse> {
        let store = self.store(&request)?;
        store.delete(delete_request(request.into_inner())).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn get(&self, request: Request<pb::GetRequest>) -> Answer<pb::GetResponse> {
        let store = self.store(&request)?;
        let m = request.into_inner();
        let consistency = if m.consistency == pb::state_options::StateConsistency::ConsistencyStrong as i32 {
            Consistency::Strong
        } else {
            Consistency::Eventual
        };
        let get = GetRequest { key: m.key, metadata: m.metadata.into_iter().collect(), consistency };
        let item = store.get(get).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(match item {
            None => pb::GetResponse::default(),
            Some(item) => pb::GetResponse {
                data: item.data,
                etag: item.etag.map(|value| pb::Etag { value }),
                metadata: item.metadata.into_iter().collect(),
                content_type: item.content_type.unwrap_or_default(),
            },
        }))
    }

    async fn set(&self, request: Request<pb::SetRequest>) -> Answer<pb::SetResponse> {
        let store = self.store(&request)?;
        store.set(set_request(request.into_inner())).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::SetResponse {}))
    }

    async fn ping(&self, request: Request<pb::PingRequest>) -> Answer<pb::PingResponse> {
        self.store(&request)?.ping().await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::PingResponse {}))
    }

    async fn bulk_delete(&self, request: Request<pb::BulkDeleteRequest>) -> Answer<pb::BulkDeleteResponse> {
        let store = self.store(&request)?;
        let items = request.into_inner().items.into_iter().map(delete_request).collect();
        store.bulk_delete(items).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::BulkDeleteResponse {}))
    }

    async fn bulk_get(&self, request: Request<pb::BulkGetRequest>) -> Answer<pb::BulkGetResponse> {
        let store = self.store(&request)?;
        let gets = request
            .into_inner()
            .items
            .into_iter()
            .map(|m| GetRequest { key: m.key, metadata: m.metadata.into_iter().collect(), ..GetRequest::default() })
            .collect();
        let items = store.bulk_get(gets).await.map_err(|e| to_status(&e))?;
        let items = items
            .into_iter()
            .map(|i| {
                let item = i.item.unwrap_or_default();
                pb::BulkStateItem {
                    key: i.key,
                    data: item.data,
                    etag: item.etag.map(|value| pb::Etag { value }),
                    error: i.error.unwrap_or_default(),
                    metadata: item.metadata.into_iter().collect(),
                    content_type: item.content_type.unwrap_or_default(),
                }
            })
            .collect();
        Ok(Response::new(pb::BulkGetResponse { items }))
    }

    async fn bulk_set(&self, request: Request<pb::BulkSetRequest>) -> Answer<pb::BulkSetResponse> {
        let store = self.store(&request)?;
        let items = request.into_inner().items.into_iter().map(set_request).collect();
        store.bulk_set(items).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::BulkSetResponse {}))
    }
}

#[async_trait]
impl pb::transactional_state_store_server::TransactionalStateStore for StateService {
    async fn transact(
        &self,
        request: Request<pb::TransactionalStateRequest>,
    ) -> Answer<pb::TransactionalStateResponse> {
        use pb::transactional_state_operation::Request as Op;
        let store = self.store(&request)?;
        let m = request.into_inner();
        let mut operations = Vec::new();
        for op in m.operations {
            operations.push(match op.request {
                Some(Op::Set(s)) => TransactionOperation::Set(set_request(s)),
                Some(Op::Delete(d)) => TransactionOperation::Delete(delete_request(d)),
                None => return Err(Status::invalid_argument("a transaction operation is neither a set nor a delete")),
            });
        }
        let metadata: Metadata = m.metadata.into_iter().collect();
        store.transact(TransactionRequest { operations, metadata }).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::TransactionalStateResponse {}))
    }
}

#[async_trait]
impl pb::queriable_state_store_server::QueriableStateStore for StateService {
    async fn query(&self, request: Request<pb::QueryRequest>) -> Answer<pb::QueryResponse> {
        let store = self.store(&request)?;
        let m = request.into_inner();
        let query = query_of(m.query).map_err(|e| to_status(&e))?;
        let answer = store
            .query(QueryRequest { query, metadata: m.metadata.into_iter().collect() })
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::QueryResponse {
            items: answer
                .results
                .into_iter()
                .map(|i| pb::QueryItem {
                    key: i.key,
                    data: i.data,
                    etag: i.etag.map(|value| pb::Etag { value }),
                    error: i.error.unwrap_or_default(),
                    content_type: String::new(),
                })
                .collect(),
            token: answer.token.unwrap_or_default(),
            metadata: answer.metadata.into_iter().collect(),
        }))
    }
}

#[async_trait]
impl pb::transactional_store_multi_max_size_server::TransactionalStoreMultiMaxSize for StateService {
    async fn multi_max_size(&self, request: Request<pb::MultiMaxSizeRequest>) -> Answer<pb::MultiMaxSizeResponse> {
        let limit = self.store(&request)?.multi_max_size();
        let max_size = limit.and_then(|max| i64::try_from(max).ok()).unwrap_or(-1);
        Ok(Response::new(pb::MultiMaxSizeResponse { max_size }))
    }
}
