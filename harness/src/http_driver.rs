//! The HTTP driver: the contract's `StateStore` implemented as a client of any
//! Dapr-compatible sidecar's HTTP API, so the same cases certify a sidecar black-box.
//!
//! What the HTTP API cannot express (raw byte values, per-key bulk errors, delete-with-prefix,
//! keys-like) is declared in [`http_driver_info`], and the planner skips those cases with the
//! reason instead of failing them.

use std::time::Duration;

use async_trait::async_trait;
use contract::state::{
    BulkGetItem, DeleteRequest, GetRequest, Item, QueryItem, QueryRequest, QueryResponse, SetRequest, StateOptions,
    TransactionOperation, TransactionRequest,
};
use contract::{Error, FeatureSet, Metadata, Result, StateFeature, StateStore};
use serde_json::{Value, json};
use suites::{DriverCapability, DriverInfo};

/// What the HTTP driver can express.
pub fn http_driver_info() -> DriverInfo {
    DriverInfo {
        name: "http".into(),
        capabilities: [
            DriverCapability::CloudEvents,
            DriverCapability::AppStatusCodes,
            DriverCapability::DeadLetterTopics,
        ]
        .into(),
    }
}

/// Connecting to a sidecar failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing answered.
    #[error("cannot reach the sidecar at {url}: {reason} (is it running, and is the port right?)")]
    Unreachable {
        /// The sidecar's base URL.
        url: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// It answered, but not as a Dapr sidecar.
    #[error("{url}/v1.0/metadata did not answer as a Dapr sidecar: {reason}")]
    NotASidecar {
        /// The sidecar's base URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// It has no component of that name and block.
    #[error("the sidecar at {url} has no {block} store named `{name}` (its {block} stores: {known})")]
    NoSuchStore {
        /// The sidecar's base URL.
        url: String,
        /// The building block.
        block: &'static str,
        /// The name asked for.
        name: String,
        /// The state stores it has.
        known: String,
    },
}

/// A sidecar's HTTP API: the client, the base URL and the API token every call carries.
#[derive(Debug, Clone)]
pub struct Sidecar {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A state store reached through a sidecar.
#[derive(Debug, Clone)]
pub struct HttpStateStore {
    sidecar: Sidecar,
    store: String,
    features: FeatureSet<StateFeature>,
}

/// Percent-encodes a path segment: everything but RFC 3986 unreserved characters.
pub(crate) fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

pub(crate) fn query_string(metadata: &Metadata, extra: &[(&str, String)]) -> String {
    let pairs: Vec<String> = metadata
        .iter()
        .map(|(k, v)| format!("metadata.{}={}", encode(k), encode(v)))
        .chain(extra.iter().map(|(k, v)| format!("{k}={}", encode(v))))
        .collect();
    if pairs.is_empty() { String::new() } else { format!("?{}", pairs.join("&")) }
}

fn options_json(options: &StateOptions) -> Value {
    json!({
        "concurrency": options.concurrency.as_str(),
        "consistency": options.consistency.as_str(),
    })
}

impl Sidecar {
    /// Reads `/v1.0/metadata`; fails within seconds when nothing listens.
    pub async fn metadata(base: &str, token: Option<String>) -> std::result::Result<(Sidecar, Value), ConnectError> {
        let base = base.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| ConnectError::Unreachable { url: base.clone(), reason: e.to_string() })?;
        let mut request = client.get(format!("{base}/v1.0/metadata")).timeout(Duration::from_secs(5));
        if let Some(t) = &token {
            request = request.header("dapr-api-token", t);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable { url: base.clone(), reason: root_cause(&e) })?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| ConnectError::NotASidecar {
            url: base.clone(),
            reason: format!("status {status}, body is not JSON ({e})"),
        })?;
        Ok((Sidecar { client, base, token }, body))
    }

    /// Reads `/v1.0/metadata` and finds the component `name` of `block`; fails within seconds
    /// when nothing listens.
    pub async fn find(
        base: &str,
        block: &'static str,
        name: &str,
        token: Option<String>,
    ) -> std::result::Result<(Sidecar, Value), ConnectError> {
        let (sidecar, body) = Sidecar::metadata(base, token).await?;
        let Sidecar { client, base, token } = sidecar;
        let components = body["components"].as_array().cloned().unwrap_or_default();
        let prefix = format!("{block}.");
        let of_block: Vec<&Value> =
            components.iter().filter(|c| c["type"].as_str().is_some_and(|t| t.starts_with(&prefix))).collect();
        match of_block.iter().find(|c| c["name"] == name) {
            Some(found) => {
                let found = (*found).clone();
                Ok((Sidecar { client, base, token }, found))
            }
            None => {
                let known = of_block.iter().filter_map(|c| c["name"].as_str()).collect::<Vec<_>>().join(", ");
                Err(ConnectError::NoSuchStore {
                    url: base,
                    block,
                    name: name.to_owned(),
                    known: if known.is_empty() { "none".into() } else { known },
                })
            }
        }
    }

    /// Checks the sidecar answers and still serves component `name` of `block` (its ping over
    /// HTTP: the API has no per-component ping).
    pub async fn ping_component(&self, block: &'static str, name: &str) -> Result<()> {
        Sidecar::find(&self.base, block, name, self.token.clone())
            .await
            .map(|_| ())
            .map_err(|e| Error::Backend(e.to_string()))
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET of `path`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    /// A POST to `path`.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    /// A request of `path` with any verb.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A DELETE of `path`.
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path))
    }

    /// Sends `request` with the API token; a transport failure is a backend error naming the sidecar.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let request = match &self.token {
            Some(t) => request.header("dapr-api-token", t),
            None => request,
        };
        request
            .send()
            .await
            .map_err(|e| Error::Backend(format!("cannot reach the sidecar at {}: {}", self.base, root_cause(&e))))
    }

    /// Maps an error answer onto the contract's errors, as daprd's status codes mean them.
    pub async fn error(&self, key: &str, response: reqwest::Response) -> Error {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = body["errorCode"].as_str().unwrap_or_default().to_owned();
        let message = body["message"].as_str().map(str::to_owned).unwrap_or(text);
        let described = format!("{status} {code}: {message}");
        match status {
            409 => Error::etag_mismatch(key, described),
            400 if message.contains("invalid etag") => Error::EtagInvalid { key: key.to_owned(), reason: described },
            400 | 413 => Error::InvalidArgument(described),
            404 => Error::NotFound { what: described },
            _ => Error::Backend(described),
        }
    }
}

impl HttpStateStore {
    /// Connects to the sidecar at `base` (e.g. `http://127.0.0.1:3500`) and its state store
    /// `store`, learning the store's features from `/v1.0/metadata`. Fails within seconds when
    /// nothing listens.
    pub async fn connect(base: &str, store: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, found) = Sidecar::find(base, "state", store, token).await?;
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
        if let Some(etag) = request.etag() {
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

fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_timeout() { format!("timed out ({source})") } else { source.to_string() }
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
        if let Some(etag) = request.etag() {
            call = call.header("if-match", etag);
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
                    if let Some(etag) = delete.etag() {
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

/// A lock store reached through a sidecar's `/v1.0-alpha1/lock` and `/unlock` routes.
#[derive(Debug, Clone)]
pub struct HttpLockStore {
    sidecar: Sidecar,
    store: String,
}

impl HttpLockStore {
    /// Connects to the sidecar at `base` and its lock store `store`.
    pub async fn connect(base: &str, store: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = Sidecar::find(base, "lock", store, token).await?;
        Ok(Self { sidecar, store: store.to_owned() })
    }

    async fn post(&self, route: &str, body: Value) -> Result<Value> {
        let request = self.sidecar.post(&format!("/v1.0-alpha1/{route}/{}", encode(&self.store))).json(&body);
        let response = self.sidecar.send(request).await?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            200 => Ok(body),
            400 => Err(Error::InvalidArgument(format!(
                "{status} {}: {}",
                body["errorCode"].as_str().unwrap_or_default(),
                body["message"].as_str().unwrap_or(&text)
            ))),
            _ => Err(Error::Backend(format!("{status}: {text}"))),
        }
    }
}

#[async_trait]
impl contract::LockStore for HttpLockStore {
    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("lock", &self.store).await
    }

    async fn try_lock(&self, request: contract::lock::TryLockRequest) -> Result<bool> {
        let body = json!({"resourceId": request.resource_id, "lockOwner": request.lock_owner, "expiryInSeconds": request.expiry_in_seconds});
        let answer = self.post("lock", body).await?;
        answer["success"]
            .as_bool()
            .ok_or_else(|| Error::Backend(format!("the lock answer has no boolean `success`: {answer}")))
    }

    async fn unlock(&self, request: contract::lock::UnlockRequest) -> Result<contract::lock::UnlockStatus> {
        use contract::lock::UnlockStatus;
        let answer =
            self.post("unlock", json!({"resourceId": request.resource_id, "lockOwner": request.lock_owner})).await?;
        match answer["status"].as_i64() {
            Some(0) => Ok(UnlockStatus::Success),
            Some(1) => Ok(UnlockStatus::LockDoesNotExist),
            Some(2) => Ok(UnlockStatus::LockBelongsToOthers),
            Some(3) => Ok(UnlockStatus::InternalError),
            _ => Err(Error::Backend(format!("the unlock answer has no known `status`: {answer}"))),
        }
    }
}

/// A configuration store reached through a sidecar; subscription updates come to `app`.
#[derive(Debug, Clone)]
pub struct HttpConfigurationStore {
    sidecar: Sidecar,
    store: String,
    app: crate::app::App,
}

impl HttpConfigurationStore {
    /// Connects to the sidecar at `base` and its configuration store `store`.
    pub async fn connect(
        base: &str,
        store: &str,
        token: Option<String>,
        app: crate::app::App,
    ) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = Sidecar::find(base, "configuration", store, token).await?;
        Ok(Self { sidecar, store: store.to_owned(), app })
    }

    async fn call(&self, path: &str, keys: &[String]) -> Result<reqwest::Response> {
        let query: Vec<(&str, String)> = keys.iter().map(|k| ("key", k.clone())).collect();
        let path =
            format!("/v1.0/configuration/{}{path}{}", encode(&self.store), query_string(&Metadata::new(), &query));
        let response = self.sidecar.send(self.sidecar.get(&path)).await?;
        if response.status().is_success() { Ok(response) } else { Err(self.sidecar.error(&path, response).await) }
    }
}

#[async_trait]
impl contract::ConfigurationStore for HttpConfigurationStore {
    async fn get(
        &self,
        request: contract::configuration::GetConfigurationRequest,
    ) -> Result<std::collections::BTreeMap<String, contract::configuration::ConfigurationItem>> {
        let response = self.call("", &request.keys).await?;
        if response.status().as_u16() == 204 {
            return Ok(Default::default());
        }
        let body: Value =
            response.json().await.map_err(|e| Error::Backend(format!("the configuration answer is not JSON: {e}")))?;
        Ok(crate::app::configuration_items(&body))
    }

    async fn subscribe(
        &self,
        request: contract::configuration::SubscribeConfigurationRequest,
    ) -> Result<contract::configuration::ConfigurationSubscription> {
        let body: Value = self
            .call("/subscribe", &request.keys)
            .await?
            .json()
            .await
            .map_err(|e| Error::Backend(format!("the subscribe answer is not JSON: {e}")))?;
        let id = body["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::Backend(format!("the subscribe answer has no id: {body}")))?
            .to_owned();
        let (tx, updates) = tokio::sync::mpsc::unbounded_channel();
        self.app.register_configuration(&self.store, &id, tx);
        Ok(contract::configuration::ConfigurationSubscription { id, updates })
    }

    async fn unsubscribe(&self, id: &str) -> Result<()> {
        // The app keeps listening for `id`: anything the sidecar sends after this is seen.
        self.call(&format!("/{}/unsubscribe", encode(id)), &[]).await.map(|_| ())
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("configuration", &self.store).await
    }
}

/// A secret store reached through a sidecar.
#[derive(Debug, Clone)]
pub struct HttpSecretStore {
    sidecar: Sidecar,
    store: String,
}

impl HttpSecretStore {
    /// Connects to the sidecar at `base` and its secret store `store`.
    pub async fn connect(base: &str, store: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = Sidecar::find(base, "secretstores", store, token).await?;
        Ok(Self { sidecar, store: store.to_owned() })
    }

    async fn read(&self, path: &str, metadata: &Metadata) -> Result<Value> {
        let path = format!("/v1.0/secrets/{}/{path}{}", encode(&self.store), query_string(metadata, &[]));
        let response = self.sidecar.send(self.sidecar.get(&path)).await?;
        if !response.status().is_success() {
            return Err(self.sidecar.error(path.as_str(), response).await);
        }
        response.json().await.map_err(|e| Error::Backend(format!("the secret answer is not JSON: {e}")))
    }
}

fn secret_data(value: &Value) -> Result<contract::secrets::SecretData> {
    let object = value.as_object().ok_or_else(|| Error::Backend(format!("a secret is not a JSON object: {value}")))?;
    object
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_owned())),
            None => Err(Error::Backend(format!("secret key `{k}` is not a string: {v}"))),
        })
        .collect()
}

#[async_trait]
impl contract::SecretStore for HttpSecretStore {
    fn features(&self) -> FeatureSet<contract::SecretFeature> {
        FeatureSet::new()
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("secretstores", &self.store).await
    }

    async fn get(&self, request: contract::secrets::GetSecretRequest) -> Result<contract::secrets::SecretData> {
        secret_data(&self.read(&encode(&request.name), &request.metadata).await?)
    }

    async fn bulk_get(
        &self,
        metadata: Metadata,
    ) -> Result<std::collections::BTreeMap<String, contract::secrets::SecretData>> {
        let answer = self.read("bulk", &metadata).await?;
        let object =
            answer.as_object().ok_or_else(|| Error::Backend(format!("the bulk answer is not an object: {answer}")))?;
        object.iter().map(|(name, data)| Ok((name.clone(), secret_data(data)?))).collect()
    }
}

/// An output binding reached through a sidecar: `POST /v1.0/bindings/{name}`.
#[derive(Debug, Clone)]
pub struct HttpOutputBinding {
    sidecar: Sidecar,
    name: String,
}

impl HttpOutputBinding {
    /// Connects to the sidecar at `base` and its binding `name`.
    pub async fn connect(base: &str, name: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = Sidecar::find(base, "bindings", name, token).await?;
        Ok(Self { sidecar, name: name.to_owned() })
    }
}

#[async_trait]
impl contract::OutputBinding for HttpOutputBinding {
    /// The Dapr HTTP API has no call that lists a binding's operations.
    fn operations(&self) -> Vec<String> {
        Vec::new()
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("bindings", &self.name).await
    }

    async fn invoke(&self, request: contract::bindings::InvokeRequest) -> Result<contract::bindings::InvokeResponse> {
        // The API carries `data` as JSON and hands the binding its re-encoding, so only JSON
        // passes through unchanged.
        let data = match request.data.is_empty() {
            true => Value::Null,
            false => serde_json::from_slice(&request.data).map_err(|_| {
                Error::InvalidArgument("the Dapr HTTP API carries binding data as JSON; this data is not JSON".into())
            })?,
        };
        let body = json!({"operation": request.operation, "data": data, "metadata": request.metadata});
        let path = format!("/v1.0/bindings/{}", encode(&self.name));
        let response = self.sidecar.send(self.sidecar.post(&path).json(&body)).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.sidecar.error(&self.name, response).await);
        }
        let metadata: Metadata = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().strip_prefix("metadata.")?.to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let data = match status.as_u16() {
            204 => None,
            _ => Some(
                response
                    .bytes()
                    .await
                    .map_err(|e| Error::Backend(format!("reading the binding's answer: {e}")))?
                    .to_vec(),
            ),
        };
        Ok(contract::bindings::InvokeResponse { data, metadata, content_type })
    }
}

/// Service invocation through a sidecar, to the app it fronts (certify, serving the echo).
#[derive(Debug, Clone)]
pub struct HttpInvoker {
    sidecar: Sidecar,
    app_id: String,
}

impl HttpInvoker {
    /// Connects to the sidecar at `base` and learns its app id from `/v1.0/metadata`.
    pub async fn connect(base: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, metadata) = Sidecar::metadata(base, token).await?;
        let app_id = match metadata["id"].as_str() {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => {
                return Err(ConnectError::NotASidecar {
                    url: base.to_owned(),
                    reason: "its metadata names no app id (`id`), so there is no app to invoke".into(),
                });
            }
        };
        Ok(Self { sidecar, app_id })
    }

    /// The app id the sidecar serves.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }
}

#[async_trait]
impl suites::invocation::Invoker for HttpInvoker {
    async fn call(&self, call: suites::invocation::MethodCall) -> Result<suites::invocation::MethodReply> {
        use suites::invocation::Addressing;
        let verb = reqwest::Method::from_bytes(call.verb.as_bytes())
            .map_err(|_| Error::InvalidArgument(format!("`{}` is not an HTTP verb", call.verb)))?;
        let mut path = match call.addressing {
            Addressing::Path => format!("/v1.0/invoke/{}/method/{}", encode(&self.app_id), call.method),
            Addressing::Header | Addressing::None => format!("/{}", call.method),
        };
        if let Some(q) = &call.query {
            path.push('?');
            path.push_str(q);
        }
        let mut request = self.sidecar.request(verb, &path).body(call.body);
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        if call.addressing == Addressing::Header {
            request = request.header("dapr-app-id", &self.app_id);
        }
        let response = self.sidecar.send(request).await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = response.bytes().await.map_err(|e| Error::Backend(format!("reading the answer: {e}")))?.to_vec();
        Ok(suites::invocation::MethodReply { status, headers, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suites::DriverCapability;

    #[test]
    fn segments_are_fully_escaped() {
        assert_eq!(encode("a b/c+d%ü"), "a%20b%2Fc%2Bd%25%C3%BC");
        assert_eq!(encode("plain-key_1.~"), "plain-key_1.~");
    }

    #[test]
    fn the_http_driver_declares_what_it_cannot_express() {
        let info = http_driver_info();
        for cap in [
            DriverCapability::BinaryValues,
            DriverCapability::KeyedBulkErrors,
            DriverCapability::KeyedStateBulkErrors,
            DriverCapability::DeleteWithPrefix,
            DriverCapability::KeysLike,
        ] {
            assert!(!info.can(cap), "{cap:?}");
        }
    }
}
