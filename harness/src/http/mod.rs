//! The HTTP driver: the contract's traits implemented as clients of any Dapr-compatible
//! sidecar's HTTP API, one module per block (mirroring the reference runtime's
//! `sidecar/*_routes.rs`), over one [`SidecarClient`] whose [`SidecarClient::error`] maps every
//! error answer onto the contract's errors.

mod actors;
mod bindings;
mod configuration;
mod invocation;
mod jobs;
mod lock;
mod observability;
mod pubsub;
mod raw;
mod secrets;
mod state;

use std::time::Duration;

use contract::{Error, Metadata, Result};
use serde_json::Value;

pub use actors::HttpActors;
pub use bindings::HttpOutputBinding;
pub use configuration::HttpConfigurationStore;
pub use invocation::HttpInvoker;
pub use jobs::HttpJobs;
pub use lock::HttpLockStore;
pub use observability::{HttpTraceProbe, MetricsEndpoint};
pub(crate) use pubsub::content_type_of;
pub use pubsub::{HttpPubSub, TopicPool};
pub use secrets::HttpSecretStore;
pub use state::HttpStateStore;

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
    #[error("{url} did not answer as a Dapr sidecar: {reason}")]
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
pub struct SidecarClient {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
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

impl SidecarClient {
    /// Reads `/v1.0/metadata`; fails within seconds when nothing listens.
    pub async fn metadata(
        base: &str,
        token: Option<String>,
    ) -> std::result::Result<(SidecarClient, Value), ConnectError> {
        let sidecar = SidecarClient::new(base, token)?;
        let base = sidecar.base.clone();
        let mut request = sidecar.get("/v1.0/metadata").timeout(Duration::from_secs(5));
        if let Some(t) = &sidecar.token {
            request = request.header("dapr-api-token", t);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable { url: base.clone(), reason: root_cause(&e) })?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| ConnectError::NotASidecar {
            url: format!("{base}/v1.0/metadata"),
            reason: format!("status {status}, body is not JSON ({e})"),
        })?;
        Ok((sidecar, body))
    }

    /// A client of the sidecar at `base`, e.g. `http://127.0.0.1:3500`; connects on first use.
    pub fn new(base: &str, token: Option<String>) -> std::result::Result<SidecarClient, ConnectError> {
        let base = base.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| ConnectError::Unreachable { url: base.clone(), reason: e.to_string() })?;
        Ok(SidecarClient { client, base, token })
    }

    /// Reads `/v1.0/metadata` and finds the component `name` of `block`; fails within seconds
    /// when nothing listens.
    pub async fn find(
        base: &str,
        block: &'static str,
        name: &str,
        token: Option<String>,
    ) -> std::result::Result<(SidecarClient, Value), ConnectError> {
        let (sidecar, body) = SidecarClient::metadata(base, token).await?;
        let SidecarClient { client, base, token } = sidecar;
        let components = body["components"].as_array().cloned().unwrap_or_default();
        let prefix = format!("{block}.");
        let of_block: Vec<&Value> =
            components.iter().filter(|c| c["type"].as_str().is_some_and(|t| t.starts_with(&prefix))).collect();
        match of_block.iter().find(|c| c["name"] == name) {
            Some(found) => {
                let found = (*found).clone();
                Ok((SidecarClient { client, base, token }, found))
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
        SidecarClient::find(&self.base, block, name, self.token.clone())
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

    /// Sends `request` with the API token and the caller's trace context, if any; a transport
    /// failure is a backend error naming the sidecar.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let mut request = match &self.token {
            Some(t) => request.header("dapr-api-token", t),
            None => request,
        };
        if let Some(context) = suites::observability::caller_context() {
            for (name, value) in context.headers() {
                request = request.header(name, value);
            }
        }
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

pub(crate) fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_timeout() { format!("timed out ({source})") } else { source.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_fully_escaped() {
        assert_eq!(encode("a b/c+d%ü"), "a%20b%2Fc%2Bd%25%C3%BC");
        assert_eq!(encode("plain-key_1.~"), "plain-key_1.~");
    }
}
