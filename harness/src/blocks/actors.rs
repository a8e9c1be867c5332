//! Actors: in-process, the reference runtime's actor engine over an `actors.*` component's
//! store, hosting its actors in certify's [`ActorHost`] directly; through a sidecar, its actor
//! API over HTTP, with certify's app as the host (`/dapr/config`, the callbacks).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use contract::actors::ActorId;
use contract::{Actors as ActorApi, Block, Component, Parts};
use reference_runtime::actors::{ActorApp, ActorStore, Callback, Engine, Reply};
use serde_json::Value;
use suites::actors::{ActorHost, ActorRestarts, Kind, RestartableActors, Unbacked};
use suites::observability::TraceContext;

use super::{BlockDriver, HttpLink};
use crate::app::App;
use crate::http::{ConnectError, HttpActors};

/// The actors block.
pub(super) struct Actors;

/// The app id the in-process engines key their actors' state and reminders under, with a
/// suffix per run: runs sharing a store never take up each other's reminders.
const APP_ID: &str = "certify";

fn run_app_id() -> String {
    format!("{APP_ID}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

#[async_trait]
impl BlockDriver for Actors {
    fn block(&self) -> Block {
        Block::ACTORS
    }

    async fn local(&self, component: &Component, _reads: bool) -> Result<Parts, String> {
        let Some(store) = component.parts().get::<ActorStore>() else {
            return Err("this actors component has no store certify can host actors over in-process".into());
        };
        let host = Arc::new(ActorHost::default());
        let app: Arc<dyn ActorApp> = Arc::new(Hosted(Arc::clone(&host)));
        let app_id = run_app_id();
        let engine = Engine::new(&app_id, Arc::clone(&app), Some(Arc::clone(&store.0)));
        engine.start().await;
        let api: Arc<dyn ActorApi> = engine;
        host.connect(Arc::downgrade(&api));
        let unbacked: Arc<dyn ActorApi> = Engine::new(&app_id, Arc::clone(&app), None);
        let restarts = OwnRuntimes { app_id, app, store: Arc::clone(&store.0), opened: AtomicU64::new(0) };
        Ok(Parts::default()
            .with(api)
            .with(host)
            .with(Arc::new(Unbacked(unbacked)))
            .with(Arc::new(restarts) as Arc<dyn ActorRestarts>))
    }

    fn declare(&self, app: &App, _: &str, _: Option<&Component>) -> bool {
        app.actor_host();
        true
    }

    async fn http(&self, link: &HttpLink<'_>, _: &str, _: Option<&Component>) -> Option<Result<Parts, ConnectError>> {
        let actors = HttpActors::connect(link.url, link.token.clone()).await;
        Some(actors.map(|actors| {
            let api: Arc<dyn ActorApi> = Arc::new(actors);
            let host = link.app.actor_host();
            host.connect(Arc::downgrade(&api));
            Parts::default().with(api).with(host)
        }))
    }
}

/// Runtimes of a case's own over the component's store, each with an app id of its own so
/// its reminders are its own.
struct OwnRuntimes {
    app_id: String,
    app: Arc<dyn ActorApp>,
    store: Arc<dyn contract::StateStore>,
    opened: AtomicU64,
}

#[async_trait]
impl ActorRestarts for OwnRuntimes {
    async fn own(&self) -> contract::Result<Arc<dyn RestartableActors>> {
        let app_id = format!("{}-own-{}", self.app_id, self.opened.fetch_add(1, Ordering::Relaxed));
        let engine = Engine::new(&app_id, Arc::clone(&self.app), Some(Arc::clone(&self.store)));
        engine.start().await;
        Ok(Arc::new(Restarting {
            app_id,
            app: Arc::clone(&self.app),
            store: Arc::clone(&self.store),
            engine: Mutex::new(engine),
        }))
    }
}

/// A runtime the case may restart.
struct Restarting {
    app_id: String,
    app: Arc<dyn ActorApp>,
    store: Arc<dyn contract::StateStore>,
    engine: Mutex<Arc<Engine>>,
}

impl Restarting {
    fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.engine.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl ActorApi for Restarting {
    async fn invoke(
        &self,
        actor: &ActorId,
        call: contract::actors::Invocation,
    ) -> contract::Result<contract::actors::Answer> {
        self.engine().invoke(actor, call).await
    }
    async fn state(&self, actor: &ActorId, key: &str) -> contract::Result<Option<Vec<u8>>> {
        self.engine().state(actor, key).await
    }
    async fn transact(&self, actor: &ActorId, ops: Vec<contract::actors::StateOp>) -> contract::Result<()> {
        self.engine().transact(actor, ops).await
    }
    async fn set_reminder(&self, actor: &ActorId, reminder: contract::actors::Reminder) -> contract::Result<()> {
        self.engine().set_reminder(actor, reminder).await
    }
    async fn reminder(&self, actor: &ActorId, name: &str) -> contract::Result<Option<contract::actors::Reminder>> {
        self.engine().reminder(actor, name).await
    }
    async fn delete_reminder(&self, actor: &ActorId, name: &str) -> contract::Result<()> {
        self.engine().delete_reminder(actor, name).await
    }
    async fn set_timer(&self, actor: &ActorId, timer: contract::actors::Timer) -> contract::Result<()> {
        self.engine().set_timer(actor, timer).await
    }
    async fn delete_timer(&self, actor: &ActorId, name: &str) -> contract::Result<()> {
        self.engine().delete_timer(actor, name).await
    }
}

#[async_trait]
impl RestartableActors for Restarting {
    async fn restart(&self) -> contract::Result<()> {
        self.engine().stop().await;
        let engine = Engine::new(&self.app_id, Arc::clone(&self.app), Some(Arc::clone(&self.store)));
        engine.start().await;
        *self.engine.lock().unwrap_or_else(PoisonError::into_inner) = engine;
        Ok(())
    }
}

/// Certify's host as the engine's app, in this process.
struct Hosted(Arc<ActorHost>);

#[async_trait]
impl ActorApp for Hosted {
    async fn config(&self) -> Result<Value, String> {
        Ok(ActorHost::config())
    }

    async fn call(
        &self,
        actor: &ActorId,
        callback: Callback<'_>,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<Reply, String> {
        let (kind, name) = match callback {
            Callback::Method(m) => (Kind::Method, m),
            Callback::Reminder(n) => (Kind::Reminder, n),
            Callback::Timer(n) => (Kind::Timer, n),
        };
        let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let (reentrancy, trace) = (header(contract::actors::REENTRANCY_HEADER), TraceContext::read(header));
        let reply = self.0.callback(actor, kind, name, body, reentrancy, trace).await;
        Ok(Reply { status: reply.status, headers: reply.headers, body: reply.body })
    }

    async fn deactivate(&self, actor: &ActorId) -> Result<(), String> {
        self.0.deactivated(actor);
        Ok(())
    }
}
