//! Jobs: in-process, a `jobs.*` component's scheduler triggering an inbox of its own; through a
//! sidecar, its Jobs API over HTTP or gRPC, with certify as the app its triggers reach (`POST
//! /job/{name}`, or `OnJobEvent` for an app served over gRPC, into the app's `JobInbox`).
//! Black-box, the component is the sidecar's app, named by its id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use contract::jobs::JobSpec;
use contract::{Block, Component, Jobs as Scheduler, Parts};
use reference_runtime::jobs::{JobTarget, LocalJobs, data};
use runtime_api::runtime::Job;
use suites::jobs::{JobInbox, Restartable, Restarts};

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

    async fn local(&self, component: &Component, _reads: bool) -> Result<Parts, String> {
        let Some(scheduler) = component.parts().get::<reference_runtime::jobs::Scheduler>() else {
            return Err("this jobs component has no scheduler certify can drive in-process".into());
        };
        let inbox = Arc::new(JobInbox::default());
        let target = Arc::new(IntoInbox(Arc::clone(&inbox)));
        let jobs = Arc::new(LocalJobs::new(Arc::clone(scheduler), target)) as Arc<dyn Scheduler>;
        let own = OwnSchedulers { base: Arc::clone(scheduler), inbox: Arc::clone(&inbox), opened: AtomicU64::new(0) };
        Ok(Parts::default().with(jobs).with(inbox).with(Arc::new(own) as Arc<dyn Restarts>))
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

/// Triggers straight into an inbox, as certify's app would take them.
struct IntoInbox(Arc<JobInbox>);

#[async_trait]
impl JobTarget for IntoInbox {
    async fn trigger(&self, job: &Job) -> Result<(), String> {
        self.0.deliver(&job.name, data::app_body(job.data.as_ref()), None)
    }
}

/// Schedulers of a case's own, each over its own key of the component's job store (or in
/// memory, for a component that keeps none).
struct OwnSchedulers {
    base: Arc<reference_runtime::jobs::Scheduler>,
    inbox: Arc<JobInbox>,
    opened: AtomicU64,
}

#[async_trait]
impl Restarts for OwnSchedulers {
    async fn own(&self) -> contract::Result<Arc<dyn Restartable>> {
        let n = self.opened.fetch_add(1, Ordering::Relaxed);
        let store = self.base.store().map(|s| s.sibling(format!("restartable-{n}")));
        let scheduler = reference_runtime::jobs::Scheduler::timed_by(Arc::clone(self.base.clock()), store);
        let target = Arc::new(IntoInbox(Arc::clone(&self.inbox)));
        Ok(Arc::new(Restarting(LocalJobs::new(scheduler, target))))
    }
}

/// A local scheduler the case may restart.
struct Restarting(LocalJobs);

#[async_trait]
impl Scheduler for Restarting {
    async fn schedule(&self, job: JobSpec) -> contract::Result<()> {
        self.0.schedule(job).await
    }
    async fn get(&self, name: &str) -> contract::Result<Option<JobSpec>> {
        self.0.get(name).await
    }
    async fn delete(&self, name: &str) -> contract::Result<()> {
        self.0.delete(name).await
    }
}

#[async_trait]
impl Restartable for Restarting {
    async fn restart(&self) -> contract::Result<()> {
        self.0.restart().await.map(drop).map_err(contract::Error::Backend)
    }
}
