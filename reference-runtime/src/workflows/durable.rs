//! The engine over a state store: stopping, taking instances up after a restart (with the
//! repair of what a crash between two instances' writes left undone), and writing changes.

use runtime_api::durabletask::history_event::EventType;
use runtime_api::durabletask::*;

use super::instance::Instance;
use super::ops::{enqueue_turn, fire, release};
use super::turn::{self, Effect};
use super::{Engine, Inner, Queued, WorkflowError, locked};

impl Engine {
    /// Stops it, as a runtime going down: once a write in progress has landed it writes
    /// nothing more and its timers do nothing, so an engine restarted over the same store is the
    /// only writer.
    pub async fn stop(&self) {
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(self.writer.lock().await);
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Takes up the instances kept by an earlier run: how many. Timers still due are armed
    /// again, activities not answered and events not committed go to the next worker.
    pub async fn restore(&self) -> Result<usize, String> {
        let Some(store) = &self.store else { return Ok(0) };
        let snapshots = match store.load().await {
            Ok(snapshots) => snapshots,
            Err(why) => {
                let _ = self.unusable.set(why.clone());
                return Err(why);
            }
        };
        let count = snapshots.len();
        self.mutate(|inner| {
            for snapshot in snapshots {
                let Some(inst) = Instance::restored(snapshot) else { continue };
                let id = inst.id.clone();
                if !inst.terminal() {
                    for (timer, at) in inst.pending_timers() {
                        let execution = inst.execution_id.clone();
                        self.arm(at, id.clone(), move |engine, id| {
                            engine.mutate(|inner| fire(inner, &id, &execution, timer, at));
                        });
                    }
                    if let Some(at) = inst.deferred.as_ref().and(inst.scheduled_start) {
                        let execution = inst.execution_id.clone();
                        self.arm(at, id.clone(), move |engine, id| {
                            engine.mutate(|inner| release(inner, &id, &execution))
                        });
                    }
                    for task in inst.activities.keys() {
                        inner.queue.push_back(Queued::Activity(id.clone(), *task));
                    }
                }
                inner.instances.insert(id.clone(), inst);
                enqueue_turn(inner, &id);
            }
            self.repair(inner);
        });
        self.flush().await.map_err(|e| e.to_string())?;
        Ok(count)
    }

    /// What a runtime that went down between writing a parent and its child left undone:
    /// a child created in the parent's history but never kept is started; a child that ended
    /// without its parent learning it tells the parent again.
    pub(super) fn repair(&self, inner: &mut Inner) {
        let mut effects = Vec::new();
        for parent in inner.instances.values().filter(|i| !i.terminal()) {
            let answered: Vec<i32> = parent
                .history
                .iter()
                .chain(&parent.inbox)
                .filter_map(|e| match &e.event_type {
                    Some(EventType::ChildWorkflowInstanceCompleted(c)) => Some(c.task_scheduled_id),
                    Some(EventType::ChildWorkflowInstanceFailed(f)) => Some(f.task_scheduled_id),
                    _ => None,
                })
                .collect();
            for e in &parent.history {
                let Some(EventType::ChildWorkflowInstanceCreated(c)) = &e.event_type else { continue };
                if answered.contains(&e.event_id) {
                    continue;
                }
                match inner.instances.get(&c.instance_id) {
                    None => {
                        let request = CreateInstanceRequest {
                            instance_id: c.instance_id.clone(),
                            name: c.name.clone(),
                            version: c.version.clone(),
                            input: c.input.clone(),
                            ..Default::default()
                        };
                        let info = ParentInstanceInfo {
                            task_scheduled_id: e.event_id,
                            name: Some(parent.name.clone()),
                            workflow_instance: Some(parent.workflow_instance()),
                            ..Default::default()
                        };
                        effects.push(Effect::Start(request, Some(info)));
                    }
                    Some(child) if child.terminal() => {
                        let ended =
                            turn::child_ended(e.event_id, child.status, child.output.clone(), child.failure.clone());
                        effects.push(Effect::Parent { parent: parent.id.clone(), event: ended });
                    }
                    Some(_) => {}
                }
            }
        }
        for effect in effects {
            self.apply(inner, effect);
        }
    }

    /// Writes what changed since the last write (nothing without a store).
    pub(super) async fn flush(&self) -> Result<(), WorkflowError> {
        let Some(store) = &self.store else { return Ok(()) };
        let _turn = self.writer.lock().await;
        if self.is_stopped() {
            return Ok(());
        }
        if let Some(why) = self.unusable.get() {
            return Err(WorkflowError::Store(format!("workflows are not kept: {why}")));
        }
        let (batch, index) = {
            let mut inner = locked(&self.inner);
            let dirty = std::mem::take(&mut inner.dirty);
            let batch: Vec<_> = dirty
                .into_iter()
                .map(|id| {
                    let snapshot = inner.instances.get(&id).map(Instance::snapshot);
                    (id, snapshot)
                })
                .collect();
            let index =
                std::mem::take(&mut inner.index_dirty).then(|| inner.instances.keys().cloned().collect::<Vec<_>>());
            (batch, index)
        };
        // What fails to be written is marked changed again, for the next write to retry.
        let mut failed = None;
        for (id, snapshot) in batch {
            if let Err(e) = store.put(&id, snapshot).await {
                locked(&self.inner).dirty.insert(id);
                failed = Some(e);
            }
        }
        if let Some(ids) = index
            && let Err(e) = store.put_index(&ids).await
        {
            locked(&self.inner).index_dirty = true;
            failed = Some(e);
        }
        match failed {
            Some(e) => {
                tracing::error!(error = %e, "workflow changes not kept");
                Err(WorkflowError::Store(e))
            }
            None => Ok(()),
        }
    }
}
