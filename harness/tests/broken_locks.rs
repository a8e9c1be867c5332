//! Broken lock stores in the test tree. One whose check-and-set is not atomic (check, pause,
//! take) must fail mutual exclusion and the one-winner race in 20 runs out of 20. One whose
//! unlock ignores the owner, and one whose leases end at half their expiry, must fail exactly
//! the rules they break, through both drivers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contract::lock::{TryLockRequest, UnlockRequest, UnlockStatus};
use contract::{Component, ComponentContext, LockStore, Result};
use harness::{Filter, Session, Source, Spec};
use reports::Verdict;

mod common;

#[derive(Default)]
struct RacyLock {
    leases: Mutex<HashMap<String, (String, Instant)>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Defect {
    UnlockIgnoresOwner,
    HalfLease,
    /// Answers a held lock with an error instead of `false`.
    BusyIsError,
    /// Lets an owner release a lease that has already expired.
    ExpiredStillOwned,
}

/// An atomic lock store with one defect.
struct Flawed {
    leases: Mutex<HashMap<String, (String, Instant)>>,
    defect: Defect,
}

#[async_trait]
impl LockStore for Flawed {
    async fn try_lock(&self, request: TryLockRequest) -> Result<bool> {
        request.validate()?;
        let mut leases = self.leases.lock().expect("lock");
        if leases.get(&request.resource_id).is_some_and(|(_, until)| *until > Instant::now()) {
            if self.defect == Defect::BusyIsError {
                return Err(contract::Error::Backend("resource busy".into()));
            }
            return Ok(false);
        }
        let mut lease = Duration::from_secs(request.expiry_in_seconds as u64);
        if self.defect == Defect::HalfLease {
            lease /= 2;
        }
        leases.insert(request.resource_id, (request.lock_owner, Instant::now() + lease));
        Ok(true)
    }

    async fn unlock(&self, request: UnlockRequest) -> Result<UnlockStatus> {
        let mut leases = self.leases.lock().expect("lock");
        if self.defect != Defect::ExpiredStillOwned {
            leases.retain(|_, (_, until)| *until > Instant::now());
        }
        Ok(match leases.get(&request.resource_id) {
            None => UnlockStatus::LockDoesNotExist,
            Some((owner, _)) if *owner != request.lock_owner && self.defect != Defect::UnlockIgnoresOwner => {
                UnlockStatus::LockBelongsToOthers
            }
            Some(_) => {
                leases.remove(&request.resource_id);
                UnlockStatus::Success
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlock_that_ignores_the_owner_and_a_short_lease_are_caught() {
    let mut registry = reference_runtime::builtin_registry();
    for (type_name, defect) in [
        ("lock.broken-unlock", Defect::UnlockIgnoresOwner),
        ("lock.broken-lease", Defect::HalfLease),
        ("lock.broken-expired", Defect::ExpiredStillOwned),
    ] {
        registry.register(type_name, move |_ctx: ComponentContext| async move {
            Ok(Component::lock(Arc::new(Flawed { leases: Mutex::default(), defect })))
        });
    }
    let spec = "components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: any-unlock}, spec: {type: lock.broken-unlock, version: v1}}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: short-lease}, spec: {type: lock.broken-lease, version: v1}}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: expired-owned}, spec: {type: lock.broken-expired, version: v1}}
";
    let filter = Filter { skip: vec!["lock.concurrency.".into()], ..Filter::default() };
    let report = common::certify(&registry, spec, &filter).await;
    for prefix in ["", "@http"] {
        let t = |component: &str, case: &str| format!("{component}{prefix}::{case}");
        common::expect_fail(&report, &t("any-unlock", "lock.basic.unlock-by-other-owner"), "unlock by another owner");
        common::expect_fail(&report, &t("short-lease", "lock.expiry.precise"), "earlier than the tolerance");
        common::expect_fail(&report, &t("short-lease", "lock.expiry.lease-expires"), "granted to another owner");
        // Found by mutation testing: nothing checked what unlocking an expired lease answers.
        common::expect_fail(&report, &t("expired-owned", "lock.expiry.unlock-after-expiry"), "expired 1 s lease");
        assert_eq!(common::record(&report, &t("expired-owned", "lock.expiry.lease-expires")).verdict, Verdict::Pass);
        for (component, case) in [
            ("any-unlock", "lock.expiry.precise"),
            ("any-unlock", "lock.basic.acquire-and-release"),
            ("short-lease", "lock.basic.unlock-by-other-owner"),
            ("short-lease", "lock.basic.not-reentrant"),
        ] {
            let record = common::record(&report, &t(component, case));
            assert_eq!(record.verdict, Verdict::Pass, "{record:?}");
        }
    }
}

#[async_trait]
impl LockStore for RacyLock {
    async fn try_lock(&self, request: TryLockRequest) -> Result<bool> {
        let held = {
            let leases = self.leases.lock().expect("lock");
            leases.get(&request.resource_id).is_some_and(|(_, until)| *until > Instant::now())
        };
        if held {
            return Ok(false);
        }
        // The defect: between the check and the take, another owner can do the same.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let until = Instant::now() + Duration::from_secs(request.expiry_in_seconds.max(1) as u64);
        self.leases.lock().expect("lock").insert(request.resource_id, (request.lock_owner, until));
        Ok(true)
    }

    async fn unlock(&self, request: UnlockRequest) -> Result<UnlockStatus> {
        let mut leases = self.leases.lock().expect("lock");
        Ok(match leases.get(&request.resource_id) {
            None => UnlockStatus::LockDoesNotExist,
            Some((owner, _)) if *owner != request.lock_owner => UnlockStatus::LockBelongsToOthers,
            Some(_) => {
                leases.remove(&request.resource_id);
                UnlockStatus::Success
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_non_atomic_lock_fails_mutual_exclusion_every_time() {
    let mut registry = reference_runtime::builtin_registry();
    registry.register("lock.broken-racy", |_ctx: ComponentContext| async move {
        Ok(Component::lock(Arc::new(RacyLock::default())))
    });
    let spec = Spec::parse(
        "racy-lock.yaml",
        Path::new("."),
        "components:\n  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: racy}, spec: {type: lock.broken-racy, version: v1}}\n    drivers: [in-process, http]\n",
    )
    .expect("spec");
    let session =
        Session::open(Source::Spec(spec), &registry, &harness::SessionOptions::default()).await.expect("session");
    let filter = Filter { patterns: vec!["lock.concurrency.".into()], ..Filter::default() };
    for run in 0..20 {
        let report = harness::certify(&session, &filter, 1, "certify run", &mut |_| {}, &|_| {}).await;
        assert_eq!(report.cases.len(), 4);
        for record in &report.cases {
            assert_eq!(record.verdict, Verdict::Fail, "run {run}: {} passed: {record:?}", record.trial);
        }
        let mutex = report.cases.iter().find(|c| c.trial == "racy::lock.concurrency.mutual-exclusion").expect("ran");
        assert!(
            mutex.reason.as_deref().is_some_and(|r| r.contains("found another owner already holding the lock")),
            "{mutex:?}"
        );
    }
}

/// Losing a race is `false`: a store that answers it with an error used to leave the races
/// inconclusive; it breaks the contract, so they fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_that_errors_under_contention_fails() {
    let mut registry = reference_runtime::builtin_registry();
    registry.register("lock.broken-busy", |_ctx: ComponentContext| async move {
        Ok(Component::lock(Arc::new(Flawed { leases: Mutex::default(), defect: Defect::BusyIsError })))
    });
    let spec = "components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: busy}, spec: {type: lock.broken-busy, version: v1}}
";
    let filter = Filter { patterns: vec!["lock.concurrency.".into()], ..Filter::default() };
    let report = common::certify(&registry, spec, &filter).await;
    for prefix in ["", "@http"] {
        common::expect_fail(&report, &format!("busy{prefix}::lock.concurrency.one-winner"), "try-lock failed");
        common::expect_fail(
            &report,
            &format!("busy{prefix}::lock.concurrency.mutual-exclusion"),
            "failed under contention",
        );
    }
}
