//! Service invocation through a sidecar's gRPC API: `InvokeService` to the app the sidecar
//! fronts, the verb and query in `http_extension`, headers as call metadata. The app's HTTP
//! status comes back in `dapr-http-status`, on success and on error alike.

use async_trait::async_trait;
use contract::{Error, Result};
use runtime_api::common::{self, http_extension::Verb};
use runtime_api::runtime::InvokeServiceRequest;
use runtime_api::tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use suites::invocation::{Addressing, MethodCall, MethodReply};

use super::GrpcSidecar;
use crate::http::ConnectError;

/// Service invocation through a sidecar's gRPC API, to the app it fronts.
#[derive(Debug, Clone)]
pub struct GrpcInvoker {
    sidecar: GrpcSidecar,
    app_id: String,
}

impl GrpcInvoker {
    /// Invokes the app of `sidecar`, named by its metadata.
    pub async fn connect(sidecar: &GrpcSidecar) -> std::result::Result<Self, ConnectError> {
        let app_id = sidecar.metadata().await?.id;
        Ok(Self { sidecar: sidecar.clone(), app_id })
    }
}

fn verb(name: &str) -> Result<Verb> {
    Verb::from_str_name(&name.to_ascii_uppercase())
        .filter(|v| *v != Verb::None)
        .ok_or_else(|| Error::InvalidArgument(format!("`{name}` is not a verb the gRPC API's http_extension has")))
}

/// The call's headers as metadata: names lower-case, as gRPC requires.
fn metadata(headers: &[(String, String)]) -> Result<MetadataMap> {
    let mut map = MetadataMap::new();
    for (name, value) in headers {
        let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| Error::InvalidArgument(format!("`{name}` is not a gRPC metadata name")))?;
        let value = MetadataValue::try_from(value.as_str())
            .map_err(|_| Error::InvalidArgument(format!("the value of `{name}` is not gRPC metadata")))?;
        map.append(key, value);
    }
    Ok(map)
}

/// The status the app answered, from `dapr-http-status`.
fn http_status(metadata: &MetadataMap, otherwise: u16) -> u16 {
    metadata.get("dapr-http-status").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(otherwise)
}

fn headers(metadata: &MetadataMap) -> std::collections::BTreeMap<String, String> {
    metadata
        .iter()
        .filter_map(|entry| match entry {
            runtime_api::tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))
            }
            runtime_api::tonic::metadata::KeyAndValueRef::Binary(..) => None,
        })
        .collect()
}

#[async_trait]
impl suites::invocation::Invoker for GrpcInvoker {
    async fn call(&self, call: MethodCall) -> Result<MethodReply> {
        if call.addressing != Addressing::Path {
            return Err(Error::unsupported("addressing an app other than by InvokeService's `id`"));
        }
        let content_type = call.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        let message = common::InvokeRequest {
            method: call.method.clone(),
            data: Some(runtime_api::prost_types::Any { type_url: String::new(), value: call.body }),
            content_type: content_type.map(|(_, v)| v.clone()).unwrap_or_default(),
            http_extension: Some(common::HttpExtension {
                verb: verb(&call.verb)? as i32,
                querystring: call.query.clone().unwrap_or_default(),
            }),
        };
        let mut request =
            self.sidecar.request(InvokeServiceRequest { id: self.app_id.clone(), message: Some(message) });
        let token = request.metadata().get("dapr-api-token").cloned();
        *request.metadata_mut() = metadata(&call.headers)?;
        if let Some(token) = token {
            request.metadata_mut().insert("dapr-api-token", token);
        }
        match self.sidecar.client().invoke_service(request).await {
            Ok(answer) => {
                let status = http_status(answer.metadata(), 200);
                let headers = headers(answer.metadata());
                let body = answer.into_inner().data.map(|d| d.value).unwrap_or_default();
                Ok(MethodReply { status, headers, body })
            }
            // An app's error status travels as the gRPC status, its body as the message.
            Err(error) if error.metadata().get("dapr-http-status").is_some() => Ok(MethodReply {
                status: http_status(error.metadata(), 500),
                headers: headers(error.metadata()),
                body: error.message().as_bytes().to_vec(),
            }),
            Err(error) => Err(self.sidecar.error(&call.method, error)),
        }
    }
}
