//! Jobs: the sidecar's Jobs API over HTTP or gRPC, with certify as the app its triggers reach
//! (`POST /job/{name}`, or `OnJobEvent` for an app served over gRPC, into the app's
//! `JobInbox`); the component is the sidecar's app, named by its id.

use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, Jobs as Scheduler, Parts};

use super::{BlockDriver, GrpcLink, HttpLink};
use crate::app::App;
use crate::grpc::GrpcJobs;
use crate::http::{ConnectError, HttpJobs};

/// The jobs block.
pub(super) struct Jobs;

#[async_trait]
impl BlockDriver for Jobs {
    fn block(&self) -> Block {
        Block::JOBS
    }

    fn declare(&self, app: &App, _: &str, _: Option<&Component>) -> bool {
        app.job_inbox();
        true
    }

    async fn http(&self, link: &HttpLink<'_>, _: &str, _: Option<&Component>) -> Option<Result<Parts, ConnectError>> {
        let jobs = HttpJobs::connect(link.url, link.token.clone()).await;
        Some(jobs.map(|j| Parts::default().with(Arc::new(j) as Arc<dyn Scheduler>).with(link.app.job_inbox())))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        _: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let jobs = Arc::new(GrpcJobs::new(link.sidecar)) as Arc<dyn Scheduler>;
        Some(Ok(Parts::default().with(jobs).with(link.app.job_inbox())))
    }
}
