//! Service invocation: through the sidecar to its app (certify, serving the echo), over HTTP
//! (`/v1.0/invoke`, the `dapr-app-id` header) and over gRPC (`InvokeService`); the component is
//! the app, named by its id.

use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, Parts};
use suites::invocation::{HttpApp, Invoker};

use super::{BlockDriver, GrpcLink, HttpLink};
use crate::app::App;
use crate::grpc::GrpcInvoker;
use crate::http::{ConnectError, HttpInvoker};

/// The service-invocation block.
pub(super) struct Invocation;

#[async_trait]
impl BlockDriver for Invocation {
    fn block(&self) -> Block {
        Block::INVOCATION
    }

    fn declare(&self, _: &App, _: &str, _: Option<&Component>) -> bool {
        true
    }

    async fn http(&self, link: &HttpLink<'_>, _: &str, _: Option<&Component>) -> Option<Result<Parts, ConnectError>> {
        let invoker = HttpInvoker::connect(link.url, link.token.clone()).await;
        Some(invoker.map(|i| parts(Arc::new(i), link.app)))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        _: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let invoker = GrpcInvoker::connect(link.sidecar).await;
        Some(invoker.map(|i| parts(Arc::new(i), link.app)))
    }
}

/// The invoker, and whether the app answers with any HTTP status (it does unless it speaks
/// gRPC).
fn parts(invoker: Arc<dyn Invoker>, app: &App) -> Parts {
    let parts = Parts::default().with(invoker);
    if app.over_grpc() { parts } else { parts.with(Arc::new(HttpApp)) }
}
