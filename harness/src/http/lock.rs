//! Locks through a sidecar: `/v1.0-alpha1/lock/{store}` and `/unlock/{store}`.

use async_trait::async_trait;
use contract::Result;
use serde_json::{Value, json};

use super::{ConnectError, SidecarClient, encode};

/// A lock store reached through a sidecar's `/v1.0-alpha1/lock` and `/unlock` routes.
#[derive(Debug, Clone)]
pub struct HttpLockStore {
    sidecar: SidecarClient,
    store: String,
}

impl HttpLockStore {
    /// Connects to the sidecar at `base` and its lock store `store`.
    pub async fn connect(base: &str, store: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = SidecarClient::find(base, "lock", store, token).await?;
        Ok(Self { sidecar, store: store.to_owned() })
    }

    async fn post(&self, route: &str, body: Value) -> Result<Value> {
        let path = format!("/v1.0-alpha1/{route}/{}", encode(&self.store));
        let response = self.sidecar.send(self.sidecar.post(&path).json(&body)).await?;
        if !response.status().is_success() {
            return Err(self.sidecar.error(&self.store, response).await);
        }
        let text = response.text().await.unwrap_or_default();
        serde_json::from_str(&text)
            .map_err(|_| contract::Error::Backend(format!("the {route} answer is not JSON: {text}")))
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
            .ok_or_else(|| contract::Error::Backend(format!("the lock answer has no boolean `success`: {answer}")))
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
            _ => Err(contract::Error::Backend(format!("the unlock answer has no known `status`: {answer}"))),
        }
    }
}
