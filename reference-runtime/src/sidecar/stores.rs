//! Where the runtime keeps what must outlive it: the actor state store (a state store flagged
//! `actorStateStore`, else a served `actors.*` component's), and the Jobs API's scheduler and
//! the workflow engine over it, each under a key of the app's in its namespace.

use std::sync::Arc;

use contract::Components;

/// The Jobs API's scheduler: a served `jobs.*` component's; else one keeping its jobs in the
/// state store flagged `actorStateStore` (so they survive a restart, as reminders do), under a
/// key of the app's in its namespace (`NAMESPACE`), so apps sharing the store never see each
/// other's jobs (J8); else one in memory.
pub(super) fn scheduler_of(components: &Components, app_id: &str) -> Arc<crate::jobs::Scheduler> {
    let by_name = components.by_name.values();
    if let Some(served) = by_name.clone().find_map(|c| c.component.parts().get::<crate::jobs::Scheduler>().cloned()) {
        return served;
    }
    match actor_state_store(components) {
        Some(store) => {
            let namespace = std::env::var("NAMESPACE").unwrap_or_default();
            crate::jobs::Scheduler::durable(crate::jobs::JobStore::new(
                store,
                format!("dapr-jobs||{namespace}||{app_id}"),
            ))
        }
        None => Arc::default(),
    }
}

/// The workflow engine: its instances kept in a served `workflows.*` component's store, else
/// in the actor state store (daprd keeps them there), under
/// `dapr-workflows||<NAMESPACE>||<app id>`; else in memory.
pub(super) fn workflows_of(components: &Components, app_id: &str) -> Arc<crate::workflows::Engine> {
    let served = components
        .by_name
        .values()
        .find_map(|c| c.component.parts().get::<crate::workflows::WorkflowStateStore>().map(|s| Arc::clone(&s.0)));
    match served.or_else(|| actor_state_store(components)) {
        Some(store) => {
            let namespace = std::env::var("NAMESPACE").unwrap_or_default();
            crate::workflows::Engine::durable(store, format!("dapr-workflows||{namespace}||{app_id}"))
        }
        None => crate::workflows::Engine::new(),
    }
}

/// The state store flagged `actorStateStore: "true"`, else a served `actors.*` component's.
pub(super) fn actor_state_store(components: &Components) -> Option<Arc<dyn contract::StateStore>> {
    let flagged = |c: &&contract::registry::LoadedComponent| {
        c.manifest.metadata.iter().any(|m| {
            m.name.eq_ignore_ascii_case("actorStateStore")
                && matches!(&m.value, contract::manifest::MetadataValue::Plain(v) if v.eq_ignore_ascii_case("true"))
        })
    };
    let by_name = components.by_name.values();
    by_name.clone().filter(flagged).find_map(|c| c.component.as_state().cloned()).or_else(|| {
        by_name.clone().find_map(|c| c.component.parts().get::<crate::actors::ActorStore>().map(|s| Arc::clone(&s.0)))
    })
}
