//! Observability: the sidecar's own trace context and metrics, through its HTTP or gRPC API
//! (there is no in-process form). The component is the sidecar's app, named by its id; the
//! metrics endpoint is the one the session knows (`--metrics`, or the reference runtime's).

use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, Parts};
use suites::observability::{Scrape, TraceProbe};

use super::{BlockDriver, GrpcLink, HttpLink};
use crate::grpc::GrpcTraceProbe;
use crate::http::{ConnectError, HttpTraceProbe, MetricsEndpoint, SidecarClient};

/// The observability block.
pub(super) struct Observability;

#[async_trait]
impl BlockDriver for Observability {
    fn block(&self) -> Block {
        Block::OBSERVABILITY
    }

    async fn http(&self, link: &HttpLink<'_>, _: &str, _: Option<&Component>) -> Option<Result<Parts, ConnectError>> {
        let probe = SidecarClient::new(link.url, link.token.clone()).map(HttpTraceProbe);
        Some(probe.map(|p| parts(Arc::new(p), link.metrics)))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        _: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        Some(Ok(parts(Arc::new(GrpcTraceProbe(link.sidecar.clone())), link.metrics)))
    }
}

fn parts(probe: Arc<dyn TraceProbe>, metrics: Option<&str>) -> Parts {
    let parts = Parts::default().with(probe);
    match metrics {
        Some(url) => parts.with(Arc::new(MetricsEndpoint::new(url)) as Arc<dyn Scrape>),
        None => parts,
    }
}
