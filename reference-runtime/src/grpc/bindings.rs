//! Output bindings over gRPC (dapr-grpc-api.md §3.5): the data reaches the binding as given;
//! daprd adds the caller's `traceparent` to the metadata when it has none.

use std::sync::Arc;

use contract::bindings::InvokeRequest;
use contract::{Block, Component, Metadata};
use runtime_api::runtime::{InvokeBindingRequest, InvokeBindingResponse};
use tonic::{Code, Request, Response};

use super::Answer;
use super::status::rich;
use crate::sidecar::Sidecar;

fn failed(name: &str, message: impl std::fmt::Display) -> tonic::Status {
    let message = format!("error invoking output binding {name}: {message}");
    rich(Code::Internal, "ERR_INVOKE_OUTPUT_BINDING", message, &[])
}

pub(super) async fn invoke(sc: &Sidecar, r: Request<InvokeBindingRequest>) -> Answer<InvokeBindingResponse> {
    let (call, _, r) = r.into_parts();
    let output = match sc.components.get(&r.name, Block::BINDINGS).and_then(Component::as_output_binding) {
        Some(output) => Arc::clone(output),
        None => return Err(failed(&r.name, format!("couldn't find output binding {}", r.name))),
    };
    let supported = output.operations();
    if !supported.iter().any(|op| op.eq_ignore_ascii_case(&r.operation)) {
        let why = format!(
            "binding {} does not support operation {}. supported operations:{}",
            r.name,
            r.operation,
            supported.join(" ")
        );
        return Err(failed(&r.name, why));
    }
    let mut metadata: Metadata = r.metadata.into_iter().collect();
    if let Some(traceparent) = call.get("traceparent").and_then(|v| v.to_str().ok()) {
        metadata.entry("traceparent".into()).or_insert_with(|| traceparent.to_owned());
    }
    let request = InvokeRequest { operation: r.operation, data: r.data, metadata };
    let response = output.invoke(request).await.map_err(|e| failed(&r.name, e))?;
    Ok(Response::new(InvokeBindingResponse {
        data: response.data.unwrap_or_default(),
        metadata: response.metadata.into_iter().collect(),
    }))
}
