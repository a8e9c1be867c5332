//! Virtual actors (actors-workflows-jobs.md §1): the engine behind the actor API. An actor is
//! active from its first turn until it has been idle for its type's `actorIdleTimeout`; each
//! id takes one turn at a time (a FIFO lock shared by method calls, reminder and timer fires),
//! except calls that continue a reentrant chain (`Dapr-Reentrancy-Id`, up to `maxStackDepth`).
//! State lives in the actor state store under `<app>||<type>||<id>||<key>`; reminders are jobs
//! of a [`crate::jobs::Scheduler`] kept in that store (so they survive the runtime); timers
//! are tasks in memory. The app is an [`ActorApp`]: the sidecar's HTTP app, or certify's
//! recorder in-process.

mod api;
mod host;
pub mod period;
mod reminders;
mod state;
mod timers;

pub(crate) use host::enc;
pub use host::{ActorApp, ActorConfig, Callback, NoApp, Reply, TypeConfig};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use contract::actors::ActorId;
use contract::{Error, StateStore};
use tokio::sync::OnceCell;

/// The state store an `actors.*` component keeps actors in (a runtime without a store
/// flagged `actorStateStore` uses it).
pub struct ActorStore(pub Arc<dyn StateStore>);

/// Registers `actors.<store>` for every `state.<store>` of `registry`: the actor runtime over
/// that store, with the store's own metadata (`actors.redis` is actors kept in Redis). A store
/// without ETags and transactions cannot back actors, and is refused as daprd refuses it.
pub fn register_over_state_stores(registry: &mut contract::Registry) {
    crate::register_over_state_stores(registry, contract::Block::ACTORS, |state_type, store| {
        let features = store.features();
        if !features.contains(&contract::StateFeature::Etag)
            || !features.contains(&contract::StateFeature::Transactional)
        {
            return Err(format!(
                "`{state_type}` cannot back actors: an actor state store needs ETags and transactions"
            ));
        }
        Ok(contract::Component::new(contract::Block::ACTORS).with(Arc::new(ActorStore(store))))
    });
}

/// The actor runtime as metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorStatus {
    /// Actors can run here: there is an actor state store.
    pub running: bool,
    /// The app hosts actor types.
    pub host_ready: bool,
    /// Active actors, by type.
    pub active: std::collections::BTreeMap<String, usize>,
}

/// One active actor.
struct Slot {
    /// Held for a turn; fair, so turns queue FIFO.
    turn: tokio::sync::Mutex<()>,
    /// The reentrancy id of the turn in progress and how deep its chain is.
    chain: Mutex<Option<(String, u32)>>,
    /// When its last turn ended.
    last: Mutex<Instant>,
    /// Deactivated: a call that waited on it finds the actor anew.
    gone: AtomicBool,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The actors of one runtime.
pub struct Engine {
    me: std::sync::Weak<Engine>,
    app_id: String,
    app: Arc<dyn ActorApp>,
    config: OnceCell<ActorConfig>,
    active: Mutex<HashMap<ActorId, Arc<Slot>>>,
    store: Option<Arc<dyn StateStore>>,
    reminders: Arc<crate::jobs::Scheduler>,
    timers: timers::Timers,
    stopped: AtomicBool,
}

impl Engine {
    /// The engine of app `app_id`, hosted by `app`, over the actor state store `store` (none:
    /// state and reminders answer daprd's "no actor state store" errors).
    pub fn new(app_id: &str, app: Arc<dyn ActorApp>, store: Option<Arc<dyn StateStore>>) -> Arc<Self> {
        let reminders = match &store {
            Some(store) => {
                let namespace = std::env::var("NAMESPACE").unwrap_or_default();
                let key = format!("dapr-reminders||{namespace}||{app_id}");
                crate::jobs::Scheduler::durable(crate::jobs::JobStore::new(Arc::clone(store), key))
            }
            None => Arc::default(),
        };
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            app_id: app_id.to_owned(),
            app,
            config: OnceCell::new(),
            active: Mutex::default(),
            store,
            reminders,
            timers: timers::Timers::default(),
            stopped: AtomicBool::new(false),
        })
    }

    /// Takes up the reminders kept by an earlier run and starts deactivating idle actors;
    /// call once the app can be called.
    pub async fn start(self: &Arc<Self>) {
        // As daprd, the app's actor types are read once it listens.
        let hosted = self.config().await.types.len();
        if hosted > 0 {
            tracing::info!(types = hosted, store = self.store.is_some(), "the app hosts actors");
        }
        match self.reminders.restore(self.reminder_target()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(reminders = n, "reminders kept from an earlier run taken up"),
            Err(why) => tracing::error!(%why, "the reminders kept from an earlier run cannot be taken up"),
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(engine) = weak.upgrade() else { return };
                if engine.stopped.load(Ordering::SeqCst) {
                    return;
                }
                engine.deactivate_idle().await;
            }
        });
    }

    /// Stops reminders and timers, waits for turns in flight (each type's drain timeout) and
    /// deactivates every actor.
    pub async fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.reminders.stop();
        self.timers.stop_all();
        let active: Vec<(ActorId, Arc<Slot>)> = locked(&self.active).drain().collect();
        for (actor, slot) in active {
            let drain = self.type_config(&actor.actor_type).await.map_or(Duration::from_secs(2), |c| c.drain);
            let _turn = tokio::time::timeout(drain, slot.turn.lock()).await;
            slot.gone.store(true, Ordering::SeqCst);
            if let Err(e) = self.app.deactivate(&actor).await {
                tracing::warn!(%actor, error = %e, "the app did not take the deactivation");
            }
        }
    }

    /// The app's actor configuration, read once.
    pub async fn config(&self) -> &ActorConfig {
        self.config
            .get_or_init(|| async {
                match self.app.config().await {
                    Ok(doc) => ActorConfig::parse(&doc),
                    Err(e) => {
                        tracing::debug!(error = %e, "the app hosts no actors");
                        ActorConfig::default()
                    }
                }
            })
            .await
    }

    /// What metadata reports: whether actors can run here (an actor state store), whether the
    /// app hosts any, and the active actors by type.
    pub fn status(&self) -> ActorStatus {
        let mut active = std::collections::BTreeMap::new();
        for actor in locked(&self.active).keys() {
            *active.entry(actor.actor_type.clone()).or_insert(0) += 1;
        }
        ActorStatus {
            running: self.store.is_some(),
            host_ready: self.config.get().is_some_and(|c| !c.types.is_empty()),
            active,
        }
    }

    async fn type_config(&self, actor_type: &str) -> Option<TypeConfig> {
        self.config().await.types.get(actor_type).cloned()
    }

    /// Whether `actor` is active here.
    fn is_active(&self, actor: &ActorId) -> bool {
        locked(&self.active).get(actor).is_some_and(|s| !s.gone.load(Ordering::SeqCst))
    }

    fn slot(&self, actor: &ActorId) -> Arc<Slot> {
        let mut active = locked(&self.active);
        let slot = active.entry(actor.clone()).or_insert_with(|| {
            Arc::new(Slot {
                turn: tokio::sync::Mutex::new(()),
                chain: Mutex::new(None),
                last: Mutex::new(Instant::now()),
                gone: AtomicBool::new(false),
            })
        });
        Arc::clone(slot)
    }

    /// Runs `body` in a turn of `actor` (activating it): at once when `reentrancy` continues
    /// the chain in progress (reentrancy on), else after the turns queued before it. `body`
    /// gets the chain's reentrancy id when reentrancy is on.
    async fn in_turn<T, F, Fut>(&self, actor: &ActorId, reentrancy: Option<&str>, body: F) -> Result<T, Error>
    where
        F: FnOnce(Option<String>) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let config = self.type_config(&actor.actor_type).await.ok_or_else(|| not_hosted(actor))?;
        loop {
            let slot = self.slot(actor);
            if let (Some(max), Some(id)) = (config.reentrancy, reentrancy) {
                let entered = match &mut *locked(&slot.chain) {
                    Some((current, depth)) if current == id => {
                        if *depth >= max {
                            return Err(stack_depth(max));
                        }
                        *depth += 1;
                        true
                    }
                    _ => false,
                };
                if entered {
                    let out = body(Some(id.to_owned())).await;
                    if let Some((_, depth)) = &mut *locked(&slot.chain) {
                        *depth -= 1;
                    }
                    return Ok(out);
                }
            }
            let turn = slot.turn.lock().await;
            if slot.gone.load(Ordering::SeqCst) {
                continue;
            }
            let chain =
                config.reentrancy.map(|_| reentrancy.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned));
            *locked(&slot.chain) = chain.clone().map(|id| (id, 1));
            let out = body(chain).await;
            *locked(&slot.chain) = None;
            *locked(&slot.last) = Instant::now();
            drop(turn);
            return Ok(out);
        }
    }

    /// Deactivates the actors idle past their type's timeout: each leaves the table, loses its
    /// timers, and the app is told.
    async fn deactivate_idle(&self) {
        let candidates: Vec<(ActorId, Arc<Slot>)> =
            locked(&self.active).iter().map(|(a, s)| (a.clone(), Arc::clone(s))).collect();
        for (actor, slot) in candidates {
            let Some(config) = self.type_config(&actor.actor_type).await else { continue };
            if locked(&slot.last).elapsed() < config.idle_timeout {
                continue;
            }
            // Free means no turn in progress and none queued (the lock is fair).
            let Ok(_turn) = slot.turn.try_lock() else { continue };
            if locked(&slot.chain).is_some() {
                continue;
            }
            slot.gone.store(true, Ordering::SeqCst);
            locked(&self.active).remove(&actor);
            self.timers.stop_actor(&actor);
            if let Err(e) = self.app.deactivate(&actor).await {
                tracing::warn!(%actor, error = %e, "the app did not take the deactivation");
            }
        }
    }
}

pub(crate) fn coded(status: u16, code: &str, message: impl Into<String>) -> Error {
    Error::Coded { status, code: code.to_owned(), message: message.into() }
}

fn not_hosted(actor: &ActorId) -> Error {
    coded(500, "ERR_ACTOR_INVOKE_METHOD", format!("did not find address for actor {actor}"))
}

fn stack_depth(max: u32) -> Error {
    coded(500, "ERR_ACTOR_STACK_DEPTH", format!("maximum stack depth of {max} exceeded for a reentrant actor call"))
}

/// `dapr.internal.*` types are the runtime's own (workflows): 403 on state, reminders, timers.
fn refuse_reserved(actor: &ActorId) -> Result<(), Error> {
    if actor.actor_type.starts_with("dapr.internal.") {
        return Err(coded(403, "ERR_ACTOR_TYPE_RESERVED", format!("actor type {} is reserved", actor.actor_type)));
    }
    Ok(())
}

/// daprd's `ValidateName` for reminder and timer names (and ids).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.chars().any(|c| matches!(c, '#' | '?' | '\0' | '/' | '\\') || (c as u32) < 0x20 || c as u32 == 0x7F)
}
