//! Bindings over gRPC, both ways: [`PluggableOutputBinding`] and [`PluggableInputBinding`]
//! drive a pluggable binding as daprd does (`ListOperations` after `Init`; a `Read` stream
//! whose every event is acked with the app's reply), and [`BindingService`] serves contract
//! bindings as one.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use contract::Result;
use contract::bindings::{BindingEvent, BindingHandler, InputBinding, InvokeRequest, InvokeResponse, OutputBinding};
use contract::pubsub::Subscription;
use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::conventions::{from_status, to_status};
use crate::instances::{Factory, Instances};
use crate::proto::components as pb;
use crate::{Answer, metadata_request, with_instance};
use pb::input_binding_client::InputBindingClient;
use pb::output_binding_client::OutputBindingClient;

/// How many events may wait in a stream before the sender waits.
const STREAM_DEPTH: usize = 64;

/// A pluggable component's output binding, reached over its socket.
#[derive(Debug, Clone)]
pub struct PluggableOutputBinding {
    channel: Channel,
    instance: String,
    operations: Vec<String>,
}

impl PluggableOutputBinding {
    /// Initialises instance `instance` with `properties` and lists its operations, as daprd does.
    pub async fn init(channel: Channel, instance: &str, properties: BTreeMap<String, String>) -> Result<Self> {
        let mut client = OutputBindingClient::new(channel.clone());
        let init = pb::OutputBindingInitRequest { metadata: metadata_request(properties) };
        client.init(with_instance(instance, init)).await.map_err(|s| from_status("", s))?;
        let operations = client
            .list_operations(with_instance(instance, pb::ListOperationsRequest {}))
            .await
            .map_err(|s| from_status("", s))?
            .into_inner()
            .operations;
        Ok(Self { channel, instance: instance.to_owned(), operations })
    }
}

#[async_trait]
impl OutputBinding for PluggableOutputBinding {
    fn operations(&self) -> Vec<String> {
        self.operations.clone()
    }

    /// Every operation goes to the component, listed or not: daprd refuses unlisted ones
    /// first, but certification asks what the component itself does with them.
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let message = pb::InvokeRequest {
            data: request.data,
            metadata: request.metadata.into_iter().collect(),
            operation: request.operation,
        };
        let answer = OutputBindingClient::new(self.channel.clone())
            .invoke(with_instance(&self.instance, message))
            .await
            .map_err(|s| from_status("", s))?
            .into_inner();
        Ok(InvokeResponse {
            // The protocol cannot tell an empty body from none; an empty one is none.
            data: Some(answer.data).filter(|d| !d.is_empty()),
            metadata: answer.metadata.into_iter().collect(),
            content_type: Some(answer.content_type).filter(|c| !c.is_empty()),
        })
    }

    async fn ping(&self) -> Result<()> {
        let ping = with_instance(&self.instance, pb::PingRequest {});
        OutputBindingClient::new(self.channel.clone()).ping(ping).await.map(drop).map_err(|s| from_status("", s))
    }
}

/// A pluggable component's input binding, reached over its socket.
#[derive(Debug, Clone)]
pub struct PluggableInputBinding {
    channel: Channel,
    instance: String,
}

impl PluggableInputBinding {
    /// Initialises instance `instance` with `properties`, as daprd does.
    pub async fn init(channel: Channel, instance: &str, properties: BTreeMap<String, String>) -> Result<Self> {
        let init = pb::InputBindingInitRequest { metadata: metadata_request(properties) };
        InputBindingClient::new(channel.clone())
            .init(with_instance(instance, init))
            .await
            .map_err(|s| from_status("", s))?;
        Ok(Self { channel, instance: instance.to_owned() })
    }
}

#[async_trait]
impl InputBinding for PluggableInputBinding {
    async fn read(&self, handler: BindingHandler) -> Result<Subscription> {
        let (acks, outgoing) = mpsc::channel(STREAM_DEPTH);
        let mut events = InputBindingClient::new(self.channel.clone())
            .read(with_instance(&self.instance, ReceiverStream::new(outgoing)))
            .await
            .map_err(|s| from_status("", s))?
            .into_inner();
        let reading = tokio::spawn(async move {
            loop {
                let event = match events.message().await {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(status) => {
                        tracing::warn!(%status, "the read stream ended with an error");
                        break;
                    }
                };
                let (handler, acks) = (Arc::clone(&handler), acks.clone());
                tokio::spawn(async move {
                    let reply =
                        handler(BindingEvent { data: event.data, metadata: event.metadata.into_iter().collect() })
                            .await;
                    let ack = match reply {
                        Ok(response_data) => {
                            pb::ReadRequest { response_data, message_id: event.message_id, response_error: None }
                        }
                        Err(message) => pb::ReadRequest {
                            response_data: Vec::new(),
                            message_id: event.message_id,
                            response_error: Some(pb::AckResponseError { message }),
                        },
                    };
                    // The stream is gone only when reading was stopped.
                    let _ = acks.send(ack).await;
                });
            }
        });
        Ok(Subscription::new(format!("grpc-read:{}", self.instance), move || reading.abort()))
    }

    async fn ping(&self) -> Result<()> {
        let ping = with_instance(&self.instance, pb::PingRequest {});
        InputBindingClient::new(self.channel.clone()).ping(ping).await.map(drop).map_err(|s| from_status("", s))
    }
}

/// Both sides of a binding instance; an instance may have either or both.
#[derive(Clone, Default)]
pub struct BindingPair {
    /// The input side.
    pub input: Option<Arc<dyn InputBinding>>,
    /// The output side.
    pub output: Option<Arc<dyn OutputBinding>>,
}

/// Builds a binding for an instance from its Component metadata.
pub type BindingFactory = Factory<BindingPair>;

/// Serves contract bindings as a pluggable binding. The input and output services of one
/// instance each call `Init`; they share the one binding the first call built.
#[derive(Clone)]
pub struct BindingService {
    instances: Arc<Instances<BindingPair>>,
    input: bool,
}

impl BindingService {
    /// A service building bindings with `make`; with `input`, it serves `InputBinding` too.
    pub fn new(make: BindingFactory, input: bool) -> Self {
        Self { instances: Arc::new(Instances::new(make)), input }
    }

    /// True when the input side is served.
    pub fn has_input(&self) -> bool {
        self.input
    }

    fn output<R>(&self, request: &Request<R>) -> std::result::Result<Arc<dyn OutputBinding>, Status> {
        self.instances.get(request)?.output.ok_or_else(|| Status::unimplemented("this binding has no output side"))
    }
}

type Events = Pin<Box<dyn Stream<Item = std::result::Result<pb::ReadResponse, Status>> + Send>>;

/// Events waiting for their acks, by message id.
type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<std::result::Result<Vec<u8>, String>>>>>;

#[async_trait]
impl pb::output_binding_server::OutputBinding for BindingService {
    async fn init(&self, request: Request<pb::OutputBindingInitRequest>) -> Answer<pb::OutputBindingInitResponse> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata, true).await?;
        Ok(Response::new(pb::OutputBindingInitResponse {}))
    }

    async fn invoke(&self, request: Request<pb::InvokeRequest>) -> Answer<pb::InvokeResponse> {
        let output = self.output(&request)?;
        let m = request.into_inner();
        let invoke = InvokeRequest { operation: m.operation, data: m.data, metadata: m.metadata.into_iter().collect() };
        let answer = output.invoke(invoke).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::InvokeResponse {
            data: answer.data.unwrap_or_default(),
            metadata: answer.metadata.into_iter().collect(),
            content_type: answer.content_type.unwrap_or_default(),
        }))
    }

    async fn list_operations(&self, request: Request<pb::ListOperationsRequest>) -> Answer<pb::ListOperationsResponse> {
        Ok(Response::new(pb::ListOperationsResponse { operations: self.output(&request)?.operations() }))
    }

    async fn ping(&self, request: Request<pb::PingRequest>) -> Answer<pb::PingResponse> {
        self.output(&request)?.ping().await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::PingResponse {}))
    }
}

#[async_trait]
impl pb::input_binding_server::InputBinding for BindingService {
    async fn init(&self, request: Request<pb::InputBindingInitRequest>) -> Answer<pb::InputBindingInitResponse> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata, true).await?;
        Ok(Response::new(pb::InputBindingInitResponse {}))
    }

    type ReadStream = Events;

    async fn read(&self, request: Request<Streaming<pb::ReadRequest>>) -> Answer<Self::ReadStream> {
        let input = self
            .instances
            .get(&request)?
            .input
            .ok_or_else(|| Status::unimplemented("this binding has no input side"))?;
        let mut acks = request.into_inner();
        let (sender, events) = mpsc::channel(STREAM_DEPTH);
        let waiting: Waiting = Arc::default();
        let next_id = Arc::new(AtomicU64::new(1));
        let handler: BindingHandler = {
            let waiting = Arc::clone(&waiting);
            Arc::new(move |event: BindingEvent| {
                let (sender, waiting) = (sender.clone(), Arc::clone(&waiting));
                let id = next_id.fetch_add(1, Ordering::Relaxed).to_string();
                Box::pin(async move {
                    let (acked, ack) = oneshot::channel();
                    waiting.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), acked);
                    let response = pb::ReadResponse {
                        data: event.data,
                        metadata: event.metadata.into_iter().collect(),
                        content_type: String::new(),
                        message_id: id,
                    };
                    if sender.send(Ok(response)).await.is_err() {
                        return Err("the reader's stream closed".to_owned());
                    }
                    ack.await.unwrap_or_else(|_| Err("the stream closed before the event was acked".to_owned()))
                })
            })
        };
        let reading = input.read(handler).await.map_err(|e| to_status(&e))?;
        tokio::spawn(async move {
            while let Ok(Some(ack)) = acks.message().await {
                let acked = waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(&ack.message_id);
                let reply = match ack.response_error {
                    Some(error) => Err(error.message),
                    None => Ok(ack.response_data),
                };
                match acked {
                    Some(acked) => {
                        let _ = acked.send(reply);
                    }
                    None => tracing::warn!(id = %ack.message_id, "an ack for no event in flight"),
                }
            }
            reading.close();
            waiting.lock().unwrap_or_else(PoisonError::into_inner).clear();
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(events))))
    }

    async fn ping(&self, request: Request<pb::PingRequest>) -> Answer<pb::PingResponse> {
        let input = self
            .instances
            .get(&request)?
            .input
            .ok_or_else(|| Status::unimplemented("this binding has no input side"))?;
        input.ping().await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::PingResponse {}))
    }
}
