//! The distributed-lock suite: every L-rule of Dapr's suite and the holes it leaves
//! (re-acquire after unlock and after expiry, invalid expiry, expiry precision, and mutual
//! exclusion under contention between owners, seen through a shared witness).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use contract::lock::{TryLockRequest, UnlockRequest, UnlockStatus};
use contract::{Block, LockStore};

use crate::case::{Case, CaseResult, Ctx, Finding, Must, Reach};
use crate::suite::Suite;
use crate::{case, ensure, ensure_eq};

const BLOCK: Block = Block::LOCK;
/// The store every lock case calls.
pub const STORE: Reach = Reach::of::<dyn LockStore>("lock store");

/// The lock suite.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[STORE], cases, prepare: None };

impl Ctx {
    /// The lock store, through the driver.
    pub fn lock(&self) -> Result<&Arc<dyn LockStore>, Finding> {
        self.reach(STORE)
    }
}

/// Every lock case.
fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "lock.basic.acquire-and-release",
            "L2,L7",
            "A free lock MUST be granted, and released by its owner with status SUCCESS.",
            [],
            [],
            10,
            acquire_release
        ),
        case!(
            BLOCK,
            "lock.basic.not-reentrant",
            "L4",
            "A held lock MUST NOT be granted again, not even to its owner, and that MUST NOT be an error.",
            [],
            [],
            10,
            not_reentrant
        ),
        case!(
            BLOCK,
            "lock.basic.unlock-missing",
            "L5",
            "Unlocking a lock nobody holds MUST answer LOCK_DOES_NOT_EXIST.",
            [],
            [],
            10,
            unlock_missing
        ),
        case!(
            BLOCK,
            "lock.basic.unlock-by-other-owner",
            "L6",
            "Unlocking someone else's lock MUST answer LOCK_BELONGS_TO_OTHERS and keep it held.",
            [],
            [],
            10,
            unlock_other
        ),
        case!(
            BLOCK,
            "lock.basic.reacquire-after-unlock",
            "certify",
            "A released lock MUST be granted to another owner at once.",
            [],
            [],
            10,
            reacquire
        ),
        case!(
            BLOCK,
            "lock.expiry.lease-expires",
            "L3,L8",
            "A lock MUST stay held until its expiry and be granted to another owner within a second after it.",
            [],
            ["slow"],
            15,
            lease_expires
        ),
        case!(
            BLOCK,
            "lock.expiry.unlock-after-expiry",
            "L5,L8",
            "Once a lease has expired, its owner's unlock MUST answer that the lock does not exist (it is no longer the owner's to release).",
            [],
            [],
            15,
            unlock_after_expiry
        ),
        case!(
            BLOCK,
            "lock.expiry.precise",
            "certify",
            "A lock MUST be free within the stated tolerance (setting `lockExpiryToleranceMs`) of its expiry, and not before.",
            [],
            ["slow"],
            15,
            expiry_precise
        ),
        case!(
            BLOCK,
            "lock.validation.invalid-expiry-rejected",
            "certify",
            "A lock request with a zero or negative expiry MUST be rejected.",
            [],
            [],
            10,
            invalid_expiry
        ),
        case!(
            BLOCK,
            "lock.concurrency.one-winner",
            "certify",
            "Owners racing for a free lock MUST see exactly one of them granted, the others refused (not errors).",
            [],
            ["concurrency"],
            60,
            one_winner
        ),
        case!(
            BLOCK,
            "lock.concurrency.mutual-exclusion",
            "certify",
            "No two owners MUST ever hold a lock at once, under contention, and no owner's call MUST fail.",
            [],
            ["concurrency"],
            60,
            mutual_exclusion
        ),
    ]
    .into_iter()
    .chain(crate::http_api::lock::cases())
    .collect()
}

fn lock(resource: &str, owner: &str, expiry: i32) -> TryLockRequest {
    TryLockRequest { resource_id: resource.into(), lock_owner: owner.into(), expiry_in_seconds: expiry }
}

fn unlock(resource: &str, owner: &str) -> UnlockRequest {
    UnlockRequest { resource_id: resource.into(), lock_owner: owner.into() }
}

async fn acquire_release(ctx: Ctx) -> CaseResult {
    let r = ctx.key("res");
    ensure!(ctx.lock()?.try_lock(lock(&r, "owner-a", 15)).await.must("try-lock")?, "a free lock was not granted");
    ensure_eq!(
        ctx.lock()?.unlock(unlock(&r, "owner-a")).await.must("unlock")?,
        UnlockStatus::Success,
        "unlock by the owner"
    );
    Ok(())
}

async fn not_reentrant(ctx: Ctx) -> CaseResult {
    let r = ctx.key("res");
    ensure!(ctx.lock()?.try_lock(lock(&r, "owner-a", 15)).await.must("first try-lock")?, "a free lock was not granted");
    let again = ctx.lock()?.try_lock(lock(&r, "owner-a", 15)).await.must("second try-lock by the owner")?;
    ensure!(!again, "the owner was granted its own held lock again (locks are not re-entrant)");
    Ok(())
}

async fn unlock_missing(ctx: Ctx) -> CaseResult {
    let status = ctx.lock()?.unlock(unlock(&ctx.key("nonexistent"), "owner-a")).await.must("unlock")?;
    ensure_eq!(status, UnlockStatus::LockDoesNotExist, "unlock of a free lock");
    Ok(())
}

async fn unlock_other(ctx: Ctx) -> CaseResult {
    let r = ctx.key("res");
    ensure!(ctx.lock()?.try_lock(lock(&r, "owner-a", 15)).await.must("try-lock")?, "a free lock was not granted");
    ensure_eq!(
        ctx.lock()?.unlock(unlock(&r, "intruder")).await.must("unlock")?,
        UnlockStatus::LockBelongsToOthers,
        "unlock by another owner"
    );
    ensure!(
        !ctx.lock()?.try_lock(lock(&r, "intruder", 15)).await.must("try-lock")?,
        "the lock was released by someone who did not hold it"
    );
    Ok(())
}

async fn reacquire(ctx: Ctx) -> CaseResult {
    let r = ctx.key("res");
    ensure!(ctx.lock()?.try_lock(lock(&r, "owner-a", 15)).await.must("try-lock")?, "a free lock was not granted");
    ensure_eq!(ctx.lock()?.unlock(unlock(&r, "owner-a")).await.must("unlock")?, UnlockStatus::Success, "unlock");
    ensure!(
        ctx.lock()?.try_lock(lock(&r, "owner-b", 15)).await.must("try-lock")?,
        "a released lock was not granted to the next owner"
    );
    Ok(())
}

async fn lease_expires(ctx: Ctx) -> CaseResult {
    let r = ctx.key("lease");
    let taken = Instant::now();
    ensure!(ctx.lock()?.try_lock(lock(&r, "owner-a", 2)).await.must("try-lock")?, "a free lock was not granted");
    // Held for the whole lease (checked until 1.5 s, clear of clock granularity)...
    while taken.elapsed() < Duration::from_millis(1500) {
        ensure!(
            !ctx.lock()?.try_lock(lock(&r, "owner-b", 2)).await.must("try-lock")?,
            "the 2 s lease was granted to another owner after {:?}",
            taken.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and free within a second after it ends.
    loop {
        if ctx.lock()?.try_lock(lock(&r, "owner-b", 2)).await.must("try-lock")? {
            return Ok(());
        }
        if taken.elapsed() > Duration::from_secs(3) {
            return Err(Finding::Fail(format!("the 2 s lease still held after {:?}", taken.elapsed())));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn unlock_after_expiry(ctx: Ctx) -> CaseResult {
    let r = ctx.key("expired");
    ensure!(ctx.lock()?.try_lock(lock(&r, "owner-a", 1)).await.must("try-lock")?, "a free lock was not granted");
    let tolerance = Duration::from_millis(ctx.settings.lock_expiry_tolerance_ms);
    tokio::time::sleep(Duration::from_millis(1300) + tolerance).await;
    let status = ctx.lock()?.unlock(unlock(&r, "owner-a")).await.must("unlock after the lease expired")?;
    ensure_eq!(status, UnlockStatus::LockDoesNotExist, "the owner's unlock of its expired 1 s lease");
    Ok(())
}

async fn expiry_precise(ctx: Ctx) -> CaseResult {
    const POLL: Duration = Duration::from_millis(10);
    let tolerance = Duration::from_millis(ctx.settings.lock_expiry_tolerance_ms);
    let r = ctx.key("precise");
    let sent = Instant::now();
    ensure!(ctx.lock()?.try_lock(lock(&r, "owner-a", 1)).await.must("try-lock")?, "a free lock was not granted");
    let granted = Instant::now();
    // The lease ends 1 s after the store took the lock: between `sent` and `granted`.
    let (earliest, latest) = (sent + Duration::from_secs(1), granted + Duration::from_secs(1));
    loop {
        let asked = Instant::now();
        let free = ctx.lock()?.try_lock(lock(&r, "owner-b", 5)).await.must("try-lock")?;
        if free {
            let freed = asked.duration_since(sent);
            ctx.evidence.set(serde_json::json!({
                "expiry_ms": 1000,
                "freed_after_ms": freed.as_secs_f64() * 1000.0,
                "tolerance_ms": tolerance.as_millis() as u64,
            }));
            // Granted on a try that started at `asked`: the lock was free by the time it answered.
            ensure!(
                Instant::now() + tolerance >= earliest,
                "the 1 s lease was granted to another owner {:?} after it was taken, earlier than the tolerance of {tolerance:?} allows",
                freed
            );
            return Ok(());
        }
        ensure!(
            asked <= latest + tolerance,
            "the 1 s lease was still held {:?} after it was taken (tolerance {tolerance:?})",
            asked.duration_since(sent)
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn invalid_expiry(ctx: Ctx) -> CaseResult {
    for expiry in [0, -1] {
        let result = ctx.lock()?.try_lock(lock(&ctx.key("invalid"), "owner-a", expiry)).await;
        ensure!(result.is_err(), "a lock with expiry {expiry} was answered {result:?}, not rejected");
    }
    Ok(())
}

async fn one_winner(ctx: Ctx) -> CaseResult {
    for round in 0..20 {
        let r = ctx.key(&format!("race-{round}"));
        let lock_store = ctx.lock()?;
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (store, r) = (Arc::clone(lock_store), r.clone());
                tokio::spawn(async move { store.try_lock(lock(&r, &format!("owner-{i}"), 30)).await })
            })
            .collect();
        let mut granted = 0;
        for t in tasks {
            match t.await {
                Ok(Ok(true)) => granted += 1,
                Ok(Ok(false)) => {}
                // Losing a race is `false`, not an error (L3): an error under contention is a
                // contract violation, not a reason to give up judging.
                Ok(Err(e)) => {
                    return Err(Finding::Fail(format!("round {round}: a racing owner's try-lock failed with `{e}`")));
                }
                Err(e) => return Err(Finding::Fail(format!("a racer task failed: {e}"))),
            }
        }
        ensure!(granted == 1, "round {round}: {granted} of 16 racing owners were granted the same free lock");
    }
    Ok(())
}

/// Grants the mutual-exclusion case needs to see before it judges.
const WANTED_GRANTS: usize = 32;

async fn mutual_exclusion(ctx: Ctx) -> CaseResult {
    let r = ctx.key("mutex");
    // The witness: how many owners believe they hold the lock right now.
    let holders = Arc::new(AtomicUsize::new(0));
    let overlap = Arc::new(AtomicUsize::new(0));
    let stolen = Arc::new(AtomicUsize::new(0));
    let granted = Arc::new(AtomicUsize::new(0));
    let attempts = Arc::new(AtomicUsize::new(0));
    // Each owner tries 40 times, and on until enough grants were seen to judge, within a time
    // budget: a slow store (or driver) would otherwise be judged on a handful of grants.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let lock_store = ctx.lock()?;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, r) = (Arc::clone(lock_store), r.clone());
            let (holders, overlap, stolen, granted, attempts) = (
                Arc::clone(&holders),
                Arc::clone(&overlap),
                Arc::clone(&stolen),
                Arc::clone(&granted),
                Arc::clone(&attempts),
            );
            tokio::spawn(async move {
                let owner = format!("owner-{i}");
                let mut tries = 0;
                while (tries < 40 || granted.load(Ordering::SeqCst) < WANTED_GRANTS)
                    && tokio::time::Instant::now() < deadline
                {
                    tries += 1;
                    attempts.fetch_add(1, Ordering::SeqCst);
                    if store.try_lock(lock(&r, &owner, 30)).await? {
                        granted.fetch_add(1, Ordering::SeqCst);
                        if holders.fetch_add(1, Ordering::SeqCst) != 0 {
                            overlap.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        holders.fetch_sub(1, Ordering::SeqCst);
                        // A lease that is gone or someone else's when its holder releases it was
                        // taken over while held.
                        if store.unlock(unlock(&r, &owner)).await? != UnlockStatus::Success {
                            stolen.fetch_add(1, Ordering::SeqCst);
                        }
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
                Ok::<_, contract::Error>(())
            })
        })
        .collect();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(Finding::Fail(format!("an owner's call failed under contention with `{e}`")));
            }
            Err(e) => return Err(Finding::Fail(format!("an owner task failed: {e}"))),
        }
    }
    let (overlap, stolen, granted) =
        (overlap.load(Ordering::SeqCst), stolen.load(Ordering::SeqCst), granted.load(Ordering::SeqCst));
    ensure!(
        overlap == 0,
        "{overlap} of {granted} grants found another owner already holding the lock ({stolen} leases were taken over while held)"
    );
    ensure!(
        stolen == 0,
        "{stolen} of {granted} leases were taken over while held: their owners found them gone or someone else's at release"
    );
    if granted < WANTED_GRANTS {
        let attempts = attempts.load(Ordering::SeqCst);
        return Err(Finding::Inconclusive(format!(
            "only {granted} grants in {attempts} attempts within 5 s: too few to judge"
        )));
    }
    Ok(())
}
