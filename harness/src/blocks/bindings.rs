//! Bindings: in-process as built (one reader of the input side for the run, fanned out to the
//! trials listening), over HTTP through `/v1.0/bindings` with input events delivered to the
//! app, over gRPC through the pluggable `OutputBinding` and `InputBinding` services.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use contract::pubsub::Subscription;
use contract::{Block, Component, InputBinding, OutputBinding, Parts};
use suites::Claim;
use suites::bindings::BindingInbox;

use super::{BlockDriver, GrpcLink, HttpLink, PluggableSocket};
use crate::app::App;
use crate::grpc::GrpcOutputBinding;
use crate::http::{ConnectError, HttpOutputBinding};

/// A binding reached through a sidecar, with the app's inbox of its input events when the
/// sidecar reads its input side.
fn with_inbox(output: Arc<dyn OutputBinding>, app: &App, name: &str, served: Option<&Component>) -> Parts {
    let handles = Parts::default().with(output);
    match served.is_none_or(|c| c.as_input_binding().is_some()).then(|| app.binding(name)).flatten() {
        Some(inbox) => handles.with(inbox),
        None => handles,
    }
}

/// The bindings block.
pub(super) struct Bindings;

/// Reads `input` for the run into an inbox trials listen to; the handles keep the reading.
async fn reading(input: &Arc<dyn InputBinding>) -> Result<Parts, contract::Error> {
    let inbox = Arc::new(BindingInbox::default());
    let reading = input.read(inbox.handler()).await?;
    Ok(Parts::default().with(inbox).with(Arc::new(reading) as Arc<Subscription>))
}

#[async_trait]
impl BlockDriver for Bindings {
    fn block(&self) -> Block {
        Block::BINDINGS
    }

    async fn local(&self, component: &Component, reads: bool) -> Result<Parts, String> {
        let mut handles = Parts::default();
        if let Some(output) = component.as_output_binding() {
            handles.insert(Arc::clone(output));
        }
        // Only when asked: a reader nobody listens to would compete with a sidecar's for the
        // same events.
        if let Some(input) = component.as_input_binding().filter(|_| reads) {
            let read = reading(input).await.map_err(|e| format!("the input binding could not start reading: {e}"))?;
            handles = handles.merged(&read);
        }
        Ok(handles)
    }

    fn declare(&self, app: &App, name: &str, served: Option<&Component>) -> bool {
        // The sidecar reads an input side only if the component has one (unknown black-box).
        let reads = served.is_none_or(|c| c.as_input_binding().is_some());
        if reads {
            app.add_binding(name);
        }
        reads
    }

    async fn http(
        &self,
        link: &HttpLink<'_>,
        name: &str,
        served: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let output = HttpOutputBinding::connect(link.url, name, link.token.clone()).await;
        Some(output.map(|o| with_inbox(Arc::new(o), link.app, name, served)))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        name: &str,
        served: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let output = GrpcOutputBinding::connect(link.sidecar, name).await;
        Some(output.map(|o| with_inbox(Arc::new(o), link.app, name, served)))
    }

    fn pluggable_services(&self) -> &'static [&'static str] {
        &[pluggable::services::OUTPUT_BINDING, pluggable::services::INPUT_BINDING]
    }

    async fn pluggable(&self, socket: &PluggableSocket<'_>, instance: &str) -> Result<Parts, String> {
        let (outputs, inputs) =
            (socket.serves(pluggable::services::OUTPUT_BINDING), socket.serves(pluggable::services::INPUT_BINDING));
        let build = async {
            let mut handles = Parts::default();
            if outputs {
                let output = pluggable::bindings::PluggableOutputBinding::init(
                    socket.channel.clone(),
                    instance,
                    socket.metadata.clone(),
                )
                .await
                .map_err(|e| e.to_string())?;
                handles.insert(Arc::new(output) as Arc<dyn OutputBinding>);
            }
            if inputs {
                let input = pluggable::bindings::PluggableInputBinding::init(
                    socket.channel.clone(),
                    instance,
                    socket.metadata.clone(),
                )
                .await
                .map_err(|e| e.to_string())?;
                // One reader for the run, as daprd has; trials listen to its inbox.
                let input: Arc<dyn InputBinding> = Arc::new(input);
                handles = handles.merged(&reading(&input).await.map_err(|e| e.to_string())?);
            }
            Ok(handles)
        };
        build.await
    }

    fn advertised(&self, handles: &Parts) -> BTreeSet<Claim> {
        let operations = handles.get::<dyn OutputBinding>().map(|o| o.operations()).unwrap_or_default();
        let mut claims: BTreeSet<Claim> = Claim::ALL
            .iter()
            .copied()
            .filter(|c| c.blocks().contains(&Block::BINDINGS) && operations.iter().any(|op| op == c.as_str()))
            .collect();
        if handles.has::<BindingInbox>() && handles.has::<Subscription>() {
            claims.insert(Claim::Read);
        }
        claims
    }
}
