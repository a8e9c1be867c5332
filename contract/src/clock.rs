//! Injectable time, so TTL, lock expiry and redelivery backoff are tested without sleeping.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::watch;

/// A source of wall-clock time and of sleeps measured on that clock.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// Completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// A shared clock handle, as components hold it.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock: `SystemTime::now` and tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The default clock handle.
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to. Sleeps on it complete when [`ManualClock::advance`]
/// moves time past their deadline.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    now: Mutex<SystemTime>,
    ticks: watch::Sender<SystemTime>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock").field("now", &self.now()).finish()
    }
}

impl ManualClock {
    /// A clock that starts at `start`.
    pub fn starting_at(start: SystemTime) -> Self {
        let (ticks, _) = watch::channel(start);
        Self { inner: Arc::new(ManualInner { now: Mutex::new(start), ticks }) }
    }

    /// A clock that starts at a fixed, readable instant (2030-01-01T00:00:00Z).
    pub fn new() -> Self {
        Self::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000))
    }

    /// Moves time forward and wakes every sleep whose deadline has passed.
    pub fn advance(&self, by: Duration) {
        let mut now = self.inner.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
        self.inner.ticks.send_replace(*now);
    }

    /// This clock as a shared handle.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.inner.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let deadline = self.now() + duration;
        let mut ticks = self.inner.ticks.subscribe();
        Box::pin(async move {
            loop {
                if *ticks.borrow_and_update() >= deadline {
                    return;
                }
                if ticks.changed().await.is_err() {
                    // The clock is gone; nothing will ever advance it, so never complete.
                    futures::future::pending::<()>().await;
                }
            }
        })
    }
}

/// Formats a time as RFC 3339 in UTC with second precision, as Dapr's `ttlExpireTime`.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleep_completes_only_after_advance() {
        let clock = ManualClock::new();
        let sleep = clock.sleep(Duration::from_secs(5));
        let handle = tokio::spawn(sleep);
        clock.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!handle.is_finished());
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(1), handle)
            .await
            .expect("sleep should complete after the deadline")
            .expect("task");
    }

    #[test]
    fn rfc3339_is_utc_seconds() {
        assert_eq!(rfc3339(ManualClock::new().now()), "2030-01-01T00:00:00Z");
    }
}
