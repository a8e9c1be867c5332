//! Actors: in-process, the reference runtime's actor engine over an `actors.*` component's
//! store, hosting its actors in certify's [`ActorHost`] directly; through a sidecar, its actor
//! API over HTTP, with certify's app as the host (`/dapr/config`, the callbacks).

use std::sync::Arc;

use async_trait::async_trait;
use contract::actors::ActorId;
use contract::{Actors as ActorApi, Block, Component, Parts};
use reference_runtime::actors::{ActorApp, ActorStore, Callback, Engine, Reply};
use serde_json::Value;
use suites::actors::{ActorHost, Kind};

use super::{BlockDriver, HttpLink};
use crate::app::App;
use crate::http::{ConnectError, HttpActors};

/// The actors block.
pub(super) struct Actors;

/// The app id the in-process engine keys its actors' state under.
const APP_ID: &str = "certify";

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
        let engine = Engine::new(APP_ID, Arc::new(Hosted(Arc::clone(&host))), Some(Arc::clone(&store.0)));
        engine.start().await;
        let api: Arc<dyn ActorApi> = engine;
        host.connect(Arc::downgrade(&api));
        Ok(Parts::default().with(api).with(host))
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
        let reentrancy = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(contract::actors::REENTRANCY_HEADER))
            .map(|(_, v)| v.clone());
        let reply = self.0.callback(actor, kind, name, body, reentrancy).await;
        Ok(Reply { status: reply.status, headers: reply.headers, body: reply.body })
    }

    async fn deactivate(&self, actor: &ActorId) -> Result<(), String> {
        self.0.deactivated(actor);
        Ok(())
    }
}
