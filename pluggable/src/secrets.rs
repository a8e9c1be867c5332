//! The secret store over gRPC, both ways: [`PluggableSecretStore`] drives a pluggable secret
//! store as daprd does, and [`SecretService`] serves a contract store as one.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use contract::secrets::{GetSecretRequest, SecretData};
use contract::{FeatureSet, Metadata, Result, SecretFeature, SecretStore};
use tonic::transport::Channel;
use tonic::{Request, Response};

use crate::conventions::{from_status, to_status};
use crate::instances::{Factory, Instances};
use crate::proto::components as pb;
use crate::{Answer, feature_names, features_of, metadata_request, with_instance};
use pb::secret_store_client::SecretStoreClient;

/// A pluggable component's secret store, reached over its socket.
#[derive(Debug, Clone)]
pub struct PluggableSecretStore {
    channel: Channel,
    instance: String,
    features: FeatureSet<SecretFeature>,
    /// Feature names the component listed that this build does not know.
    pub unknown_features: Vec<String>,
}

impl PluggableSecretStore {
    /// Initialises instance `instance` with `properties` and reads its features, as daprd does.
    pub async fn init(channel: Channel, instance: &str, properties: BTreeMap<String, String>) -> Result<Self> {
        let mut client = SecretStoreClient::new(channel.clone());
        let init = pb::SecretStoreInitRequest { metadata: metadata_request(properties) };
        client.init(with_instance(instance, init)).await.map_err(|s| from_status("", s))?;
        let listed = client
            .features(with_instance(instance, pb::FeaturesRequest {}))
            .await
            .map_err(|s| from_status("", s))?
            .into_inner()
            .features;
        let (features, unknown_features) = features_of(listed);
        Ok(Self { channel, instance: instance.to_owned(), features, unknown_features })
    }

    fn client(&self) -> SecretStoreClient<Channel> {
        SecretStoreClient::new(self.channel.clone())
    }
}

#[async_trait]
impl SecretStore for PluggableSecretStore {
    fn features(&self) -> FeatureSet<SecretFeature> {
        self.features.clone()
    }

    async fn get(&self, request: GetSecretRequest) -> Result<SecretData> {
        let message = pb::GetSecretRequest { key: request.name, metadata: request.metadata.into_iter().collect() };
        let answer = self.client().get(with_instance(&self.instance, message)).await.map_err(|s| from_status("", s))?;
        Ok(answer.into_inner().data.into_iter().collect())
    }

    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, SecretData>> {
        let message = pb::BulkGetSecretRequest { metadata: metadata.into_iter().collect() };
        let answer =
            self.client().bulk_get(with_instance(&self.instance, message)).await.map_err(|s| from_status("", s))?;
        Ok(answer.into_inner().data.into_iter().map(|(name, s)| (name, s.secrets.into_iter().collect())).collect())
    }

    async fn ping(&self) -> Result<()> {
        let ping = with_instance(&self.instance, pb::PingRequest {});
        self.client().ping(ping).await.map(drop).map_err(|s| from_status("", s))
    }
}

/// Builds a secret store for an instance from its Component metadata.
pub type SecretStoreFactory = Factory<Arc<dyn SecretStore>>;

/// Serves contract secret stores as a pluggable secret store, one per instance.
#[derive(Clone)]
pub struct SecretService {
    instances: Arc<Instances<Arc<dyn SecretStore>>>,
}

impl SecretService {
    /// A service building stores with `make`.
    pub fn new(make: SecretStoreFactory) -> Self {
        Self { instances: Arc::new(Instances::new(make)) }
    }
}

#[async_trait]
impl pb::secret_store_server::SecretStore for SecretService {
    async fn init(&self, request: Request<pb::SecretStoreInitRequest>) -> Answer<pb::SecretStoreInitResponse> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata, false).await?;
        Ok(Response::new(pb::SecretStoreInitResponse {}))
    }

    async fn features(&self, request: Request<pb::FeaturesRequest>) -> Answer<pb::FeaturesResponse> {
        let store = self.instances.get(&request)?;
        let features = feature_names(&store.features());
        Ok(Response::new(pb::FeaturesResponse { features }))
    }

    async fn get(&self, request: Request<pb::GetSecretRequest>) -> Answer<pb::GetSecretResponse> {
        let store = self.instances.get(&request)?;
        let m = request.into_inner();
        let get = GetSecretRequest { name: m.key, metadata: m.metadata.into_iter().collect() };
        let data = store.get(get).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::GetSecretResponse { data: data.into_iter().collect() }))
    }

    async fn bulk_get(&self, request: Request<pb::BulkGetSecretRequest>) -> Answer<pb::BulkGetSecretResponse> {
        let store = self.instances.get(&request)?;
        let metadata = request.into_inner().metadata.into_iter().collect();
        let all = store.bulk_get(metadata).await.map_err(|e| to_status(&e))?;
        let data = all
            .into_iter()
            .map(|(name, secrets)| (name, pb::SecretResponse { secrets: secrets.into_iter().collect() }))
            .collect();
        Ok(Response::new(pb::BulkGetSecretResponse { data }))
    }

    async fn ping(&self, request: Request<pb::PingRequest>) -> Answer<pb::PingResponse> {
        self.instances.get(&request)?.ping().await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::PingResponse {}))
    }
}
