//! The gRPC driver: the contract's traits implemented as clients of any Dapr-compatible
//! sidecar's gRPC API (`dapr.proto.runtime.v1.Dapr`), one module per block (mirroring the
//! reference runtime's `grpc/*.rs`), over one [`GrpcSidecar`] whose [`GrpcSidecar::error`]
//! maps every status onto the contract's errors.

mod bindings;
mod configuration;
mod invocation;
mod jobs;
mod lock;
mod observability;
mod pubsub;
mod secrets;
mod state;
pub(crate) mod streaming;
mod workflows;

use std::time::Duration;

use contract::{Error, Metadata};
use runtime_api::runtime::dapr_client::DaprClient;
use runtime_api::runtime::{GetMetadataRequest, GetMetadataResponse, RegisteredComponents};
use runtime_api::tonic::metadata::{Ascii, MetadataValue};
use runtime_api::tonic::transport::{Channel, Endpoint};
use runtime_api::tonic::{Code, Request, Status};

pub use bindings::GrpcOutputBinding;
pub use configuration::GrpcConfigurationStore;
pub use invocation::GrpcInvoker;
pub use jobs::GrpcJobs;
pub use lock::GrpcLockStore;
pub use observability::GrpcTraceProbe;
pub(crate) use observability::trace_metadata;
pub use pubsub::GrpcPubSub;
pub use secrets::GrpcSecretStore;
pub use state::GrpcStateStore;
pub use workflows::GrpcTaskHub;

use crate::http::ConnectError;

/// A sidecar's gRPC API: the client, its address and the API token every call carries.
#[derive(Debug, Clone)]
pub struct GrpcSidecar {
    client: DaprClient<Channel>,
    channel: Channel,
    url: String,
    token: Option<MetadataValue<Ascii>>,
}

/// The `http://HOST:PORT` tonic dials for `grpc://HOST:PORT` (or an `http://` URL as given).
fn dial_url(url: &str) -> String {
    match url.strip_prefix("grpc://") {
        Some(rest) => format!("http://{rest}"),
        None => url.to_owned(),
    }
}

impl GrpcSidecar {
    /// Connects to the sidecar at `url` (`grpc://HOST:PORT`) and reads its metadata; fails
    /// within seconds when nothing listens or what listens is not a Dapr sidecar.
    pub async fn connect(url: &str, token: Option<String>) -> Result<GrpcSidecar, ConnectError> {
        let sidecar = GrpcSidecar::dial(url, token).await?;
        sidecar.metadata().await?;
        Ok(sidecar)
    }

    /// Connects to whatever serves gRPC at `url`, without asking it anything.
    pub async fn dial(url: &str, token: Option<String>) -> Result<GrpcSidecar, ConnectError> {
        let unreachable = |reason: String| ConnectError::Unreachable { url: url.to_owned(), reason };
        let endpoint = Endpoint::from_shared(dial_url(url))
            .map_err(|e| unreachable(format!("not a gRPC address: {e}")))?
            .connect_timeout(Duration::from_secs(3));
        // No per-call timeout on the channel: its timer made every call slower (a trial is
        // bounded by the runner; setup calls bound themselves, as `metadata` does).
        let channel = endpoint.connect().await.map_err(|e| unreachable(root_cause(&e)))?;
        let token = match token {
            None => None,
            Some(t) => Some(t.parse().map_err(|_| unreachable("the API token is not valid ASCII metadata".into()))?),
        };
        Ok(GrpcSidecar { client: DaprClient::new(channel.clone()), channel, url: url.to_owned(), token })
    }

    /// The generated client, to call with [`GrpcSidecar::request`]s.
    pub fn client(&self) -> DaprClient<Channel> {
        self.client.clone()
    }

    /// The channel to it, for the other services on its port (`TaskHubSidecarService`).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// `message` with the API token and the caller's trace context, if any.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token {
            request.metadata_mut().insert("dapr-api-token", token.clone());
        }
        let caller = suites::observability::caller_context();
        for (name, value) in caller.iter().flat_map(|c| c.headers()) {
            if let Ok(value) = value.parse() {
                request.metadata_mut().insert(name, value);
            }
        }
        request
    }

    /// `GetMetadata`.
    pub async fn metadata(&self) -> Result<GetMetadataResponse, ConnectError> {
        let mut client = self.client();
        let call = client.get_metadata(self.request(GetMetadataRequest {}));
        let answer = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer within 30 s")));
        answer.map(|r| r.into_inner()).map_err(|status| ConnectError::NotASidecar {
            url: self.url.clone(),
            reason: format!("GetMetadata answered {:?}: {}", status.code(), status.message()),
        })
    }

    /// Waits until the sidecar lists subscriptions (read from the app once it listens): the
    /// gRPC API has no health endpoint that says so.
    pub async fn wait_for_app_subscriptions(&self) -> Result<(), ConnectError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if !self.metadata().await?.subscriptions.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(ConnectError::NotASidecar {
                    url: self.url.clone(),
                    reason: "it listed no subscriptions within 30 s of certify serving the app: was it started with this --app-port and --app-protocol?".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The component `name` of `block` (a type prefix such as `state`), as `GetMetadata` lists it.
    pub async fn find(&self, block: &'static str, name: &str) -> Result<RegisteredComponents, ConnectError> {
        let prefix = format!("{block}.");
        let of_block: Vec<RegisteredComponents> = self
            .metadata()
            .await?
            .registered_components
            .into_iter()
            .filter(|c| c.r#type.starts_with(&prefix))
            .collect();
        let known = of_block.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
        match of_block.iter().find(|c| c.name == name) {
            Some(found) => Ok(found.clone()),
            None => Err(ConnectError::NoSuchStore {
                url: self.url.clone(),
                block,
                name: name.to_owned(),
                known: if known.is_empty() { "none".into() } else { known },
            }),
        }
    }

    /// Checks the sidecar answers and still serves component `name` of `block` (the API has no
    /// per-component ping).
    pub async fn ping_component(&self, block: &'static str, name: &str) -> contract::Result<()> {
        self.find(block, name).await.map(drop).map_err(|e| Error::Backend(e.to_string()))
    }

    /// Maps a status onto the contract's errors, as daprd's codes mean them: `Aborted` is an
    /// ETag mismatch, an `InvalidArgument` about an ETag an invalid one.
    pub fn error(&self, key: &str, status: Status) -> Error {
        let described = describe(&status);
        match status.code() {
            Code::Aborted => Error::etag_mismatch(key, described),
            Code::InvalidArgument if status.message().contains("invalid etag") => {
                Error::EtagInvalid { key: key.to_owned(), reason: described }
            }
            Code::InvalidArgument => Error::InvalidArgument(described),
            Code::NotFound => Error::NotFound { what: described },
            Code::Unimplemented => Error::unsupported(described),
            _ => Error::Backend(described),
        }
    }
}

/// `CODE REASON: message`, the reason from the status's `ErrorInfo` when it has one.
fn describe(status: &Status) -> String {
    use tonic_types::StatusExt;
    match status.get_details_error_info() {
        Some(info) => format!("{:?} {}: {}", status.code(), info.reason, status.message()),
        None => format!("{:?}: {}", status.code(), status.message()),
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut source = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// Contract metadata as the protocol's map.
fn map(metadata: &Metadata) -> std::collections::HashMap<String, String> {
    metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
