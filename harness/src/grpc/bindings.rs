//! Output bindings through a sidecar's gRPC API: `InvokeBinding`, data as bytes.

use async_trait::async_trait;
use contract::Result;
use contract::bindings::{InvokeRequest, InvokeResponse};
use runtime_api::runtime::InvokeBindingRequest;

use super::{GrpcSidecar, map};
use crate::http::ConnectError;

/// An output binding reached through a sidecar's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcOutputBinding {
    sidecar: GrpcSidecar,
    name: String,
}

impl GrpcOutputBinding {
    /// The binding `name` of `sidecar`.
    pub async fn connect(sidecar: &GrpcSidecar, name: &str) -> std::result::Result<Self, ConnectError> {
        sidecar.find("bindings", name).await?;
        Ok(Self { sidecar: sidecar.clone(), name: name.to_owned() })
    }
}

#[async_trait]
impl contract::OutputBinding for GrpcOutputBinding {
    /// The Dapr gRPC API has no call that lists a binding's operations.
    fn operations(&self) -> Vec<String> {
        Vec::new()
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("bindings", &self.name).await
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let call = InvokeBindingRequest {
            name: self.name.clone(),
            data: request.data,
            metadata: map(&request.metadata),
            operation: request.operation,
        };
        let answer = self.sidecar.client().invoke_binding(self.sidecar.request(call)).await;
        let answer = answer.map_err(|s| self.sidecar.error(&self.name, s))?.into_inner();
        // The protocol cannot tell no data from empty data.
        let data = Some(answer.data).filter(|d| !d.is_empty());
        Ok(InvokeResponse { data, metadata: answer.metadata.into_iter().collect(), content_type: None })
    }
}
