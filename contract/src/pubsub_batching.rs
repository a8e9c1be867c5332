//! Bulk subscribe on top of single-message delivery: messages that are in flight at the same
//! time are gathered into batches for a [`BulkHandler`], and each waits for its own outcome.
//!
//! Any component whose broker delivers messages concurrently gets bulk subscribe from this,
//! with the component's own ordering and redelivery rules left intact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::pubsub::{BulkHandler, BulkSubscribeConfig, Handler, Message, Outcome};

struct Pending {
    message: Message,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Batch {
    generation: u64,
    pending: Vec<Pending>,
}

struct Batcher {
    config: BulkSubscribeConfig,
    handler: BulkHandler,
    clock: SharedClock,
    batch: Mutex<Batch>,
}

impl Batcher {
    fn push(self: &Arc<Self>, pending: Pending) {
        // A full batch is taken in the same critical section that filled it: taken later, a
        // concurrent push could slip in and overfill it.
        let (full, first_generation) = {
            let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
            batch.pending.push(pending);
            let first = (batch.pending.len() == 1).then_some(batch.generation);
            let full = (batch.pending.len() >= self.config.max_messages_count.max(1)).then(|| batch.take());
            (full, first)
        };
        if let Some(full) = full {
            self.dispatch(full);
        } else if let Some(generation) = first_generation {
            let this = Arc::clone(self);
            let wait = self.clock.sleep(self.config.max_await_duration);
            tokio::spawn(async move {
                wait.await;
                this.flush(generation);
            });
        }
    }

    /// Sends the batch a timer was started for, unless it was already sent (the generation
    /// moved on), so a timer cannot flush a later batch early.
    fn flush(self: &Arc<Self>, generation: u64) {
        let taken = {
            let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
            if generation != batch.generation || batch.pending.is_empty() {
                return;
            }
            batch.take()
        };
        self.dispatch(taken);
    }

    /// Hands `taken` to the handler and each message its outcome.
    fn dispatch(self: &Arc<Self>, taken: Vec<Pending>) {
        let handler = Arc::clone(&self.handler);
        tokio::spawn(async move {
            let messages = taken.iter().map(|p| p.message.clone()).collect();
            let mut outcomes: HashMap<String, Outcome> = handler(messages).await.into_iter().collect();
            for pending in taken {
                let outcome = outcomes
                    .remove(&pending.message.id)
                    .unwrap_or_else(|| Outcome::Retry("the bulk handler gave no status for this entry".into()));
                // The receiver is gone only if the delivery was abandoned; nothing to tell.
                let _ = pending.reply.send(outcome);
            }
        });
    }
}

impl Batch {
    /// Takes the batch, starting the next generation.
    fn take(&mut self) -> Vec<Pending> {
        self.generation += 1;
        std::mem::take(&mut self.pending)
    }
}

/// A single-message handler that batches messages for `handler` per `config`.
pub fn batching_handler(config: BulkSubscribeConfig, handler: BulkHandler, clock: SharedClock) -> Handler {
    let batcher = Arc::new(Batcher { config, handler, clock, batch: Mutex::new(Batch::default()) });
    Arc::new(move |message: Message| {
        let batcher = Arc::clone(&batcher);
        Box::pin(async move {
            let (reply, outcome) = oneshot::channel();
            batcher.push(Pending { message, reply });
            outcome.await.unwrap_or_else(|_| Outcome::Retry("the bulk handler was abandoned".into()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;

    fn message(id: &str) -> Message {
        Message { id: id.into(), ..Message::default() }
    }

    #[tokio::test]
    async fn full_batches_flush_at_once_and_missing_statuses_retry() {
        let clock = ManualClock::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let bulk: BulkHandler = Arc::new(move |batch: Vec<Message>| {
            seen2.lock().expect("lock").push(batch.len());
            Box::pin(
                async move { batch.into_iter().filter(|m| m.id != "b").map(|m| (m.id, Outcome::Success)).collect() },
            )
        });
        let config = BulkSubscribeConfig { max_messages_count: 2, max_await_duration: Duration::from_secs(60) };
        let handler = batching_handler(config, bulk, clock.shared());
        let (a, b) = tokio::join!(handler(message("a")), handler(message("b")));
        assert_eq!(a, Outcome::Success);
        assert!(matches!(b, Outcome::Retry(_)));
        assert_eq!(*seen.lock().expect("lock"), vec![2]);
    }

    #[tokio::test]
    async fn partial_batches_flush_after_the_await_duration() {
        let clock = ManualClock::new();
        let bulk: BulkHandler = Arc::new(|batch: Vec<Message>| {
            Box::pin(async move { batch.into_iter().map(|m| (m.id, Outcome::Success)).collect() })
        });
        let config = BulkSubscribeConfig { max_messages_count: 10, max_await_duration: Duration::from_millis(500) };
        let handler = batching_handler(config, bulk, clock.shared());
        let pending = tokio::spawn(handler(message("a")));
        tokio::task::yield_now().await;
        assert!(!pending.is_finished());
        clock.advance(Duration::from_millis(500));
        let outcome = tokio::time::timeout(Duration::from_secs(1), pending).await.expect("flushed").expect("task");
        assert_eq!(outcome, Outcome::Success);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_pushes_never_overfill_a_batch() {
        let clock = ManualClock::new();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let bulk: BulkHandler = Arc::new(move |batch: Vec<Message>| {
            seen.lock().expect("lock").push(batch.len());
            Box::pin(async move { batch.into_iter().map(|m| (m.id, Outcome::Success)).collect() })
        });
        let config = BulkSubscribeConfig { max_messages_count: 5, max_await_duration: Duration::from_secs(60) };
        let handler = batching_handler(config, bulk, clock.shared());
        let deliveries: Vec<_> = (0..400).map(|i| tokio::spawn(handler(message(&i.to_string())))).collect();
        // An overfilled batch leaves a partial one that only a timer (never fired here) sends.
        let all = async {
            for delivery in deliveries {
                assert_eq!(delivery.await.expect("task"), Outcome::Success);
            }
        };
        let finished = tokio::time::timeout(Duration::from_secs(10), all).await.is_ok();
        let sizes = sizes.lock().expect("lock").clone();
        assert!(finished, "deliveries were left waiting; batch sizes {sizes:?}");
        assert!(sizes.iter().all(|n| *n <= 5), "batch sizes {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 400);
    }
}
