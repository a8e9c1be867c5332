//! The bindings contract: output bindings invoked with an operation, input bindings that
//! deliver events to a handler.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::errors::Result;
use crate::metadata::Metadata;
use crate::pubsub::Subscription;

/// Invoke an output binding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeRequest {
    /// The operation, e.g. `create`, `get`, `list`, `delete`, `exec`, `query`.
    pub operation: String,
    /// The request body.
    pub data: Vec<u8>,
    /// Request metadata (e.g. `fileName`, `key`).
    pub metadata: Metadata,
}

impl InvokeRequest {
    /// An invocation of `operation` with `data`.
    pub fn new(operation: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self { operation: operation.into(), data: data.into(), metadata: Metadata::new() }
    }

    /// The same invocation with one more metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// What an output binding answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeResponse {
    /// The response body; `None` when the binding returns nothing.
    pub data: Option<Vec<u8>>,
    /// Response metadata.
    pub metadata: Metadata,
    /// The body's content type.
    pub content_type: Option<String>,
}

/// An event an input binding delivers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingEvent {
    /// The event's bytes.
    pub data: Vec<u8>,
    /// Event metadata.
    pub metadata: Metadata,
}

/// Handles an input event; `Ok` carries the app's reply body, `Err` a failure the binding
/// reports back to its source.
pub type BindingHandler = Arc<dyn Fn(BindingEvent) -> BoxFuture<'static, Result<Vec<u8>, String>> + Send + Sync>;

/// A binding that sends to an external system.
#[async_trait]
pub trait OutputBinding: Send + Sync {
    /// The operations this binding supports, lower-case.
    fn operations(&self) -> Vec<String>;

    /// Runs one operation. An operation not in [`OutputBinding::operations`] is
    /// [`crate::Error::Unsupported`].
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse>;

    /// Checks the binding can reach its system.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// A binding that receives events from an external system.
#[async_trait]
pub trait InputBinding: Send + Sync {
    /// Starts delivering events to `handler`.
    async fn read(&self, handler: BindingHandler) -> Result<Subscription>;

    /// Checks the binding can reach its system.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
