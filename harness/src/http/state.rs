//! State through a sidecar: `/v1.0/state/{store}` (get, save, delete, bulk, transactions,
//! query); values travel as JSON, as the API carries them.

use async_trait::async_trait;
use contract::state::{
    BulkGetItem, DeleteRequest, GetRequest, Item, QueryItem, QueryRequest, QueryResponse, SetRequest, StateOptions,
    TransactionOperation, TransactionRequest,
};
use contract::{Error, FeatureSet, Metadata, Result, StateFeature, StateStore};
use serde_json::{Value, json};

use super::{ConnectError, SidecarClient, encode, query_string};

/// A state store reached through a sidecar.
#[derive(Debug, Clone)]
pub struct HttpStateStore {
    sidecar: SidecarClient,
    store: String,
    features: FeatureSet<StateFeature>,
}

fn options_json(options: &StateOptions) -> Value {
    json!({
        "concurrency": options.concurrency.as_str(),
        "consistency": options.consistency.as_str(),
    })
}

impl HttpStateStore {
    /// Connects to the sidecar at `base` (e.g. `http://127.0.0.1:3500`) and its state store
    /// `store`, learning the store's features from `/v1.0/metadata`. Fails within seconds when
    /// nothing listens.
    pub async fn connect(base: &str, store: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, found) = SidecarClient::find(base, "state", store, token).await?;
        let features = found["capabilities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str()?.parse::<StateFeature>().ok())
            .collect();
        Ok(Self { sidecar, store: store.to_owned(), features })
    }

    fn item_json(request: &SetRequest) -> Result<Value> {
        let value: Value = serde_json::from_slice(&request.value).map_err(|_| {
            Error::unsupported("writing a value that is not JSON (the Dapr HTTP API carries JSON values only)")
        })?;
        let mut item = json!({"key": request.key, "value": value, "options": options_json(&request.options)});
        // As given, an empty ETag included: the sidecar must take `""` as none (S35).
        if let Some(etag) = &request.etag {
            item["etag"] = json!(etag);
        }
        if !request.metadata.is_empty() {
            item["metadata"] = json!(request.metadata);
        }
        if let Some(ct) = &request.content_type {
            item["contentType"] = json!(ct);
        }
        Ok(item)
    }
}

fn compact(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn metadata_of(value: &Value) -> Metadata {
    value
        .as_object()
        .map(|m| {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl StateStore for HttpStateStore {
    fn features(&self) -> FeatureSet<StateFeature> {
        self.features.clone()
    }

    async fn ping(&self) -> Result<()> {
        let response = self.sidecar.send(self.sidecar.get("/v1.0/healthz/outbound")).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::Backend(format!("outbound health answered {}", response.status())))
        }
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        let consistency = request.consistency.as_str().to_owned();
        let path = format!(
            "/v1.0/state/{}/{}{}",
            encode(&self.store),
            encode(&request.key),
            query_string(&request.metadata, &[("consistency", consistency)])
        );
        let response = self.sidecar.send(self.sidecar.get(&path)).await?;
        match response.status().as_u16() {
            204 => Ok(None),
            200 => {
                let headers = response.headers().clone();
                let etag = headers.get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let metadata = headers
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((k.as_str().strip_prefix("metadata.")?.to_owned(), v.to_str().ok()?.to_owned()))
                    })
                    .map(|(k, v)| {
                        (if k.eq_ignore_ascii_case("ttlexpiretime") { "ttlExpireTime".to_owned() } else { k }, v)
                    })
                    .collect();
                let data = response.bytes().await.map_err(|e| Error::Backend(e.to_string()))?.to_vec();
                Ok(Some(Item { data, etag, metadata, content_type: None }))
            }
            _ => Err(self.sidecar.error(&request.key, response).await),
        }
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        self.bulk_set(vec![request]).await
    }

    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        let items = requests.iter().map(Self::item_json).collect::<Result<Vec<_>>>()?;
        let key = if requests.len() == 1 { requests[0].key.clone() } else { "<bulk>".to_owned() };
        let response =
            self.sidecar.send(self.sidecar.post(&format!("/v1.0/state/{}", encode(&self.store))).json(&items)).await?;
        if response.status().is_success() { Ok(()) } else { Err(self.sidecar.error(&key, response).await) }
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        let extra = [("concurrency", request.options.concurrency.as_str().to_owned())];
        let path = format!(
            "/v1.0/state/{}/{}{}",
            encode(&self.store),
            encode(&request.key),
            query_string(&request.metadata, &extra)
        );
        let mut call = self.sidecar.delete(&path);
        if let Some(etag) = &request.etag {
            call = call.header("if-match", etag.as_str());
        }
        let response = self.sidecar.send(call).await?;
        if response.status().is_success() { Ok(()) } else { Err(self.sidecar.error(&request.key, response).await) }
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkGetItem>> {
        let keys: Vec<&str> = requests.iter().map(|r| r.key.as_str()).collect();
        let metadata = requests.first().map(|r| r.metadata.clone()).unwrap_or_default();
        let body = json!({"keys": keys, "metadata": metadata});
        let response = self
            .sidecar
            .send(self.sidecar.post(&format!("/v1.0/state/{}/bulk", encode(&self.store))).json(&body))
            .await?;
        if !response.status().is_success() {
            return Err(self.sidecar.error("<bulk>", response).await);
        }
        let answers: Vec<Value> =
            response.json().await.map_err(|e| Error::Backend(format!("bulk get answer is not a JSON array: {e}")))?;
        Ok(answers
            .into_iter()
            .map(|a| BulkGetItem {
                key: a["key"].as_str().unwrap_or_default().to_owned(),
                item: a.get("data").map(|d| Item {
                    data: compact(d),
                    etag: a["etag"].as_str().map(str::to_owned),
                    metadata: metadata_of(&a["metadata"]),
                    content_type: None,
                }),
                error: a["error"].as_str().filter(|e| !e.is_empty()).map(str::to_owned),
            })
            .collect())
    }

    async fn transact(&self, request: TransactionRequest) -> Result<()> {
        let operations = request
            .operations
            .iter()
            .map(|op| match op {
                TransactionOperation::Set(set) => Ok(json!({"operation": "upsert", "request": Self::item_json(set)?})),
                TransactionOperation::Delete(delete) => {
                    let mut r = json!({"key": delete.key, "options": options_json(&delete.options)});
                    if let Some(etag) = &delete.etag {
                        r["etag"] = json!(etag);
                    }
                    if !delete.metadata.is_empty() {
                        r["metadata"] = json!(delete.metadata);
                    }
                    Ok(json!({"operation": "delete", "request": r}))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let body = json!({"operations": operations, "metadata": request.metadata});
        let response = self
            .sidecar
            .send(self.sidecar.post(&format!("/v1.0/state/{}/transaction", encode(&self.store))).json(&body))
            .await?;
        if response.status().is_success() { Ok(()) } else { Err(self.sidecar.error("<transaction>", response).await) }
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryResponse> {
        let path = format!("/v1.0-alpha1/state/{}/query{}", encode(&self.store), query_string(&request.metadata, &[]));
        let response = self.sidecar.send(self.sidecar.post(&path).json(&request.query.to_json())).await?;
        match response.status().as_u16() {
            204 => Ok(QueryResponse::default()),
            200 => {
                let body: Value =
                    response.json().await.map_err(|e| Error::Backend(format!("query answer is not JSON: {e}")))?;
                let results = body["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| QueryItem {
                        key: r["key"].as_str().unwrap_or_default().to_owned(),
                        data: r.get("data").map(compact).unwrap_or_default(),
                        etag: r["etag"].as_str().map(str::to_owned),
                        error: r["error"].as_str().filter(|e| !e.is_empty()).map(str::to_owned),
                    })
                    .collect();
                Ok(QueryResponse {
                    results,
                    token: body["token"].as_str().map(str::to_owned),
                    metadata: metadata_of(&body["metadata"]),
                })
            }
            _ => Err(self.sidecar.error("<query>", response).await),
        }
    }
}
