//! Output bindings through a sidecar: `POST /v1.0/bindings/{name}`, data as JSON.

use async_trait::async_trait;
use contract::{Error, Metadata, Result};
use serde_json::{Value, json};

use super::{ConnectError, SidecarClient, encode};

/// An output binding reached through a sidecar: `POST /v1.0/bindings/{name}`.
#[derive(Debug, Clone)]
pub struct HttpOutputBinding {
    sidecar: SidecarClient,
    name: String,
}

impl HttpOutputBinding {
    /// Connects to the sidecar at `base` and its binding `name`.
    pub async fn connect(base: &str, name: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = SidecarClient::find(base, "bindings", name, token).await?;
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
