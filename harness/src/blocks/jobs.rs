//! Jobs: the sidecar's Jobs API over HTTP, with certify as the app its triggers reach
//! (`POST /job/{name}` into the app's `JobInbox`); the component is the sidecar's app, named by
//! its id.

use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, Jobs as Scheduler, Parts};

use super::{BlockDriver, HttpLink};
use crate::app::App;
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
}
