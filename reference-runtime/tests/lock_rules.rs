//! `lock.in-memory` against the L-rules of conformance-rules.md and the holes: contention,
//! re-acquire after unlock and after expiry, invalid expiry, expiry precision.

mod common;

use std::sync::Arc;
use std::time::Duration;

use contract::lock::{TryLockRequest, UnlockRequest, UnlockStatus};
use contract::{Error, LockStore, ManualClock};

async fn store() -> (Arc<dyn LockStore>, ManualClock) {
    let clock = ManualClock::new();
    let c = common::build("lock.in-memory", &[], &clock).await;
    (c.as_lock().cloned().expect("a lock store"), clock)
}

fn lock(resource: &str, owner: &str, expiry: i32) -> TryLockRequest {
    TryLockRequest { resource_id: resource.into(), lock_owner: owner.into(), expiry_in_seconds: expiry }
}

fn unlock(resource: &str, owner: &str) -> UnlockRequest {
    UnlockRequest { resource_id: resource.into(), lock_owner: owner.into() }
}

#[tokio::test]
async fn l02_to_l07_lock_and_unlock_statuses() {
    let (s, _) = store().await;
    assert!(s.try_lock(lock("k1", "conftest", 15)).await.expect("L2"));
    assert!(s.try_lock(lock("k2", "conftest", 3)).await.expect("L3"));
    assert!(!s.try_lock(lock("k1", "conftest", 15)).await.expect("L4: not re-entrant, not an error"));
    assert_eq!(s.unlock(unlock("nonexistent", "conftest")).await.expect("L5"), UnlockStatus::LockDoesNotExist);
    assert_eq!(s.unlock(unlock("k1", "nonowner")).await.expect("L6"), UnlockStatus::LockBelongsToOthers);
    assert_eq!(s.unlock(unlock("k1", "conftest")).await.expect("L7"), UnlockStatus::Success);
    assert!(s.try_lock(lock("k1", "other", 15)).await.expect("re-acquire after unlock"));
}

#[tokio::test]
async fn l08_expiry_is_precise() {
    let (s, clock) = store().await;
    assert!(s.try_lock(lock("k", "a", 3)).await.expect("lock"));
    clock.advance(Duration::from_millis(2999));
    assert!(!s.try_lock(lock("k", "b", 3)).await.expect("still held just before expiry"));
    clock.advance(Duration::from_millis(1));
    assert!(s.try_lock(lock("k", "b", 3)).await.expect("free at expiry"));
    assert_eq!(s.unlock(unlock("k", "a")).await.expect("old owner"), UnlockStatus::LockBelongsToOthers);
}

#[tokio::test]
async fn unlock_after_expiry_reports_no_lock() {
    let (s, clock) = store().await;
    assert!(s.try_lock(lock("k", "a", 1)).await.expect("lock"));
    clock.advance(Duration::from_secs(1));
    assert_eq!(s.unlock(unlock("k", "a")).await.expect("unlock"), UnlockStatus::LockDoesNotExist);
}

#[tokio::test]
async fn invalid_requests_are_rejected() {
    let (s, _) = store().await;
    for request in [lock("k", "a", 0), lock("k", "a", -5), lock("", "a", 1), lock("k", "", 1)] {
        assert!(matches!(s.try_lock(request.clone()).await, Err(Error::InvalidArgument(_))), "{request:?}");
    }
    assert!(matches!(s.unlock(unlock("", "a")).await, Err(Error::InvalidArgument(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contention_has_exactly_one_winner() {
    let (s, _) = store().await;
    for round in 0..20 {
        let resource = format!("r{round}");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let s = Arc::clone(&s);
                let resource = resource.clone();
                tokio::spawn(async move { s.try_lock(lock(&resource, &format!("owner{i}"), 30)).await.expect("try") })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.expect("task"));
        }
        assert_eq!(winners, 1, "round {round}");
    }
}
