//! Service invocation through a sidecar, by `/v1.0/invoke/{app}/method/…` and by the
//! `dapr-app-id` header.

use async_trait::async_trait;
use contract::{Error, Result};

use super::{ConnectError, SidecarClient, encode};

/// Service invocation through a sidecar, to the app it fronts (certify, serving the echo).
#[derive(Debug, Clone)]
pub struct HttpInvoker {
    sidecar: SidecarClient,
    app_id: String,
}

impl HttpInvoker {
    /// Connects to the sidecar at `base` and learns its app id from `/v1.0/metadata`.
    pub async fn connect(base: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, metadata) = SidecarClient::metadata(base, token).await?;
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
