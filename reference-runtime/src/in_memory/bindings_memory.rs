//! `bindings.in-memory`: an output/input pair in one component. Every output `create`
//! becomes an input event, delivered in order to the binding's readers; events created while
//! nobody reads are kept until someone does.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use contract::bindings::{BindingEvent, BindingHandler, InvokeRequest, InvokeResponse};
use contract::clock::SharedClock;
use contract::pubsub::Subscription;
use contract::{Error, InputBinding, OutputBinding, Result};
use futures::FutureExt;

/// Deliveries of one event before it is given up on.
const MAX_ATTEMPTS: u32 = 5;
/// The wait between deliveries of a failing event.
const RETRY_BACKOFF: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Channel {
    pending: VecDeque<BindingEvent>,
    readers: Vec<(u64, BindingHandler)>,
    next_reader: usize,
    draining: bool,
}

struct Shared {
    channel: Mutex<Channel>,
    clock: SharedClock,
    next_id: AtomicU64,
}

/// The in-memory binding pair.
#[derive(Clone)]
pub struct InMemoryBinding {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for InMemoryBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InMemoryBinding")
    }
}

impl InMemoryBinding {
    /// An empty binding on `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self { shared: Arc::new(Shared { channel: Mutex::new(Channel::default()), clock, next_id: AtomicU64::new(1) }) }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Channel> {
        self.channel.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the single delivery worker unless one runs or nobody reads.
    fn kick(self: &Arc<Self>) {
        {
            let mut channel = self.lock();
            if channel.draining || channel.readers.is_empty() || channel.pending.is_empty() {
                return;
            }
            channel.draining = true;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move { this.drain().await });
    }

    async fn drain(self: Arc<Self>) {
        loop {
            let (event, handler) = {
                let mut channel = self.lock();
                match channel.pending.front().cloned() {
                    Some(event) if !channel.readers.is_empty() => {
                        let index = channel.next_reader % channel.readers.len();
                        channel.next_reader = channel.next_reader.wrapping_add(1);
                        (event, Arc::clone(&channel.readers[index].1))
                    }
                    _ => {
                        channel.draining = false;
                        return;
                    }
                }
            };
            let mut attempt = 1;
            loop {
                let result = AssertUnwindSafe(handler(event.clone()))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err("the handler panicked".into()));
                match result {
                    Ok(_) => break,
                    Err(reason) if attempt >= MAX_ATTEMPTS => {
                        tracing::warn!(%reason, attempt, "input binding event given up");
                        break;
                    }
                    Err(_) => {
                        attempt += 1;
                        self.clock.sleep(RETRY_BACKOFF).await;
                    }
                }
            }
            self.lock().pending.pop_front();
        }
    }
}

#[async_trait]
impl OutputBinding for InMemoryBinding {
    fn operations(&self) -> Vec<String> {
        vec!["create".to_owned()]
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        if !request.operation.eq_ignore_ascii_case("create") {
            return Err(Error::unsupported(format!("binding operation `{}`", request.operation)));
        }
        self.shared.lock().pending.push_back(BindingEvent { data: request.data, metadata: request.metadata });
        self.shared.kick();
        Ok(InvokeResponse::default())
    }
}

#[async_trait]
impl InputBinding for InMemoryBinding {
    async fn read(&self, handler: BindingHandler) -> Result<Subscription> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.lock().readers.push((id, handler));
        self.shared.kick();
        let shared = Arc::downgrade(&self.shared);
        Ok(Subscription::new(format!("in-memory-binding-{id}"), move || {
            if let Some(shared) = shared.upgrade() {
                shared.lock().readers.retain(|(r, _)| *r != id);
            }
        }))
    }
}
