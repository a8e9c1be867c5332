//! Workflow start to completion: a chain of three activities on certify's worker, started and
//! awaited through the target's hub (in-process, the engine; over gRPC, `StartInstance` then
//! `WaitForInstanceCompletion`). Closed loop, so the throughput is workflows per second at the
//! profile's concurrency.

use std::sync::Arc;

use runtime_api::durabletask::{CreateInstanceRequest, OrchestrationStatus};
use suites::workflows::Worker;
use suites::workflows::catalogue::CHAIN;

use super::load::{Load, Measured, Mode, drive};

/// The load a workflow measurement runs under: the profile's, closed loop.
pub fn load(profile: &Load) -> Load {
    Load { mode: Mode::ClosedLoop, ..*profile }
}

/// Runs chain `<prefix>-<i>` on input 1 per operation; anything but COMPLETED with output 8
/// is an error.
pub async fn measure(worker: Arc<Worker>, load: Load, prefix: &str) -> Measured {
    let prefix = prefix.to_owned();
    drive(load, move |i| {
        let (hub, id) = (Arc::clone(worker.hub()), format!("{prefix}-{i}"));
        async move {
            let request = CreateInstanceRequest {
                instance_id: id.clone(),
                name: CHAIN.into(),
                input: Some("1".into()),
                ..Default::default()
            };
            hub.start(request).await.map_err(|e| e.to_string())?;
            let state = hub.wait(&id).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("`{id}` is gone"))?;
            let completed = state.workflow_status == OrchestrationStatus::Completed as i32;
            match (completed, state.output.as_deref()) {
                (true, Some("8")) => Ok(()),
                _ => Err(format!("`{id}` ended {} with {:?}", state.workflow_status, state.output)),
            }
        }
    })
    .await
}
