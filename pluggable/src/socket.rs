//! Unix sockets: dialling a pluggable component and asking what it serves (gRPC reflection
//! `v1alpha`, as daprd does), and serving components on a socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};
use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

/// How long dialling and the reflection call may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Reaching a pluggable component failed.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Nothing is at the path.
    #[error("no socket at {0} (is the component running, and is this its socket?)")]
    Missing(PathBuf),
    /// Something is there, but no gRPC server answered.
    #[error("{path} does not answer as a gRPC server: {reason}")]
    NotGrpc {
        /// The socket.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// The server does not serve reflection, so its services cannot be discovered.
    #[error(
        "{0} serves no gRPC reflection (grpc.reflection.v1alpha.ServerReflection), which daprd needs to discover a pluggable component's services; register the reflection service"
    )]
    NoReflection(PathBuf),
}

/// Dials the component listening on `socket`.
pub async fn dial(socket: &Path) -> Result<Channel, SocketError> {
    if !socket.exists() {
        return Err(SocketError::Missing(socket.to_owned()));
    }
    let path = socket.to_owned();
    let not_grpc = |reason: String| SocketError::NotGrpc { path: socket.to_owned(), reason };
    // The URI is required by the API and ignored by the connector.
    let endpoint = Endpoint::try_from("http://pluggable.invalid")
        .map_err(|e| not_grpc(e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(30));
    endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { tokio::net::UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|e| not_grpc(root_cause(&e)))
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The services the component on `channel` lists through reflection.
pub async fn services(socket: &Path, channel: Channel) -> Result<Vec<String>, SocketError> {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let call = async {
        let mut answers = client.server_reflection_info(futures::stream::iter([request])).await?.into_inner();
        answers.message().await
    };
    let answer = match tokio::time::timeout(CONNECT_TIMEOUT, call).await {
        Err(_) => {
            return Err(SocketError::NotGrpc {
                path: socket.to_owned(),
                reason: format!("no answer within {CONNECT_TIMEOUT:?}"),
            });
        }
        Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
            return Err(SocketError::NoReflection(socket.to_owned()));
        }
        Ok(Err(status)) => {
            return Err(SocketError::NotGrpc { path: socket.to_owned(), reason: root_cause(&status) });
        }
        Ok(Ok(answer)) => answer,
    };
    match answer.and_then(|a| a.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => Ok(list.service.into_iter().map(|s| s.name).collect()),
        other => Err(SocketError::NotGrpc {
            path: socket.to_owned(),
            reason: format!("reflection answered {other:?} to ListServices"),
        }),
    }
}

/// The reflection service listing `services` (fully qualified names) with their descriptors.
pub fn reflection(
    services: &[&str],
) -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<impl tonic_reflection::server::v1alpha::ServerReflection>,
    tonic_reflection::server::Error,
> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET);
    for name in services {
        builder = builder.with_service_name(*name);
    }
    builder.build_v1alpha()
}

/// Binds `socket` (replacing a stale socket file left by an earlier run).
pub fn bind(socket: &Path) -> std::io::Result<tokio_stream::wrappers::UnixListenerStream> {
    if socket.exists() {
        std::fs::remove_file(socket)?;
    }
    Ok(tokio_stream::wrappers::UnixListenerStream::new(tokio::net::UnixListener::bind(socket)?))
}
