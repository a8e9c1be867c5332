//! Fault scenarios of state stores: recovery after a restart, acknowledged writes kept across
//! one, calls that fail fast in a black hole or a cut, linearizability while connections are cut.

use std::time::{Duration, Instant};

use contract::state::{GetRequest, SetRequest};
use serde_json::json;

use super::{NetworkFault, bound, budget, control, recover};
use crate::case::{CaseResult, Ctx, Finding};
use crate::ensure;
use contract::Block;

use super::scenario;
use crate::case::{Case, Claim, Requirement};

/// Every state fault scenario.
pub(super) fn cases() -> Vec<Case> {
    vec![
        scenario!(
            Block::STATE,
            "faults.state.recovers-after-restart",
            "After its backend restarts, a store MUST serve reads and writes again within the recovery budget (setting `recoveryBudgetSeconds`).",
            [],
            recovers
        ),
        scenario!(
            Block::STATE,
            "faults.state.acknowledged-writes-survive-restart",
            "Every write a store acknowledged MUST be read back exactly after its persistent backend restarts.",
            [],
            writes_survive
        ),
        scenario!(
            Block::STATE,
            "faults.state.black-hole-fails-fast",
            "While nothing gets through to the backend, calls MUST fail within `faultCallTimeoutSeconds`, not hang, and work again within the recovery budget after.",
            [],
            black_hole
        ),
        scenario!(
            Block::STATE,
            "faults.state.cut-fails-fast",
            "While connections to the backend are cut, calls MUST fail within `faultCallTimeoutSeconds`, and work again within the recovery budget after.",
            [],
            cut
        ),
        scenario!(
            Block::STATE,
            "faults.state.linearizable-under-cuts",
            "Concurrent clients' histories MUST stay linearizable while connections are cut and restored (failed calls count as indeterminate), and the store MUST work again within the recovery budget after.",
            [Requirement::Claimed(Claim::Etag)],
            linearizable_under_cuts
        ),
    ]
}

/// Waits until the store works before a scenario faults it: an earlier scenario may have just
/// restarted the same backend, and a store may fail a call or two while it reconnects.
async fn working(ctx: &Ctx, key: &str) -> CaseResult {
    recover(ctx, "before the fault, the store", || write_read(ctx, key, b"before")).await.map(drop)
}

/// One write and one read of `key`, checked.
async fn write_read(ctx: &Ctx, key: &str, value: &[u8]) -> contract::Result<()> {
    let store = ctx.state().map_err(|_| contract::Error::unsupported("no state store"))?;
    store.set(SetRequest::new(key, value.to_vec())).await?;
    match store.get(GetRequest::new(key)).await? {
        Some(item) if item.data == value => Ok(()),
        other => Err(contract::Error::Backend(format!("read back {other:?} after writing `{key}`"))),
    }
}

pub(super) async fn recovers(ctx: Ctx) -> CaseResult {
    let key = ctx.key("recover");
    working(&ctx, &key).await?;
    control(&ctx)?.restart().await?;
    let took = recover(&ctx, "the store", || write_read(&ctx, &key, b"after")).await?;
    ctx.evidence.set(json!({"recovery_ms": took.as_secs_f64() * 1000.0, "budget_s": budget(&ctx).as_secs()}));
    Ok(())
}

pub(super) async fn writes_survive(ctx: Ctx) -> CaseResult {
    const WRITES: usize = 100;
    working(&ctx, &ctx.key("kept-first")).await?;
    let mut acknowledged = Vec::new();
    for n in 0..WRITES {
        let (key, value) = (ctx.key(&format!("kept-{n}")), format!("{}-{n}", ctx.namespace).into_bytes());
        if ctx.state()?.set(SetRequest::new(&key, value.clone())).await.is_ok() {
            acknowledged.push((key, value));
        }
    }
    ensure!(!acknowledged.is_empty(), "no write was acknowledged before the restart");
    control(&ctx)?.restart().await?;
    let probe = ctx.key("kept-probe");
    let took = recover(&ctx, "the store", || write_read(&ctx, &probe, b"probe")).await?;
    let mut lost = Vec::new();
    for (key, value) in &acknowledged {
        match ctx.state()?.get(GetRequest::new(key)).await {
            Ok(Some(item)) if item.data == *value => {}
            Ok(other) => {
                lost.push(format!("{key}: {:?}", other.map(|i| String::from_utf8_lossy(&i.data).into_owned())))
            }
            Err(e) => lost.push(format!("{key}: {e}")),
        }
    }
    ctx.evidence.set(json!({
        "acknowledged": acknowledged.len(), "lost": lost.len(), "recovery_ms": took.as_secs_f64() * 1000.0,
    }));
    ensure!(
        lost.is_empty(),
        "{} of {} acknowledged writes were not read back after the restart: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
    Ok(())
}

/// Under `fault`, a read and a write must each fail within the bound; after healing, the store
/// must recover within the budget.
async fn state_under(ctx: Ctx, fault: NetworkFault) -> CaseResult {
    let faults = control(&ctx)?;
    let key = ctx.key("net");
    working(&ctx, &key).await?;
    let store = ctx.state()?;
    faults.network(Some(fault)).await?;
    // A write and a read at once: each must fail within the bound on its own, and waiting for
    // them one after the other would only double the time the case takes.
    let limit = bound(&ctx);
    let attempt = |what: &'static str, write: bool| {
        let (store, key) = (std::sync::Arc::clone(store), key.clone());
        async move {
            let started = Instant::now();
            let call = async {
                match write {
                    true => store.set(SetRequest::new(&key, b"during".to_vec())).await,
                    false => store.get(GetRequest::new(&key)).await.map(drop),
                }
            };
            match tokio::time::timeout(limit, call).await {
                Err(_) => Err(Finding::Fail(format!(
                    "{what} during a {fault:?} did not return within {limit:?}: a call must fail, not hang"
                ))),
                Ok(Ok(())) => Err(Finding::Fail(format!(
                    "{what} during a {fault:?} succeeded, though nothing could reach the backend"
                ))),
                Ok(Err(_)) => Ok(started.elapsed()),
            }
        }
    };
    let (write, read) = futures::future::join(attempt("a write", true), attempt("a read", false)).await;
    let outcome = write.and_then(|w| read.map(|r| vec![w, r]));
    faults.network(None).await?;
    let failed_in = outcome?;
    let took = recover(&ctx, "the store", || write_read(&ctx, &key, b"after")).await?;
    ctx.evidence.set(json!({
        "failed_in_ms": failed_in.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
        "recovery_ms": took.as_secs_f64() * 1000.0,
    }));
    Ok(())
}

pub(super) async fn black_hole(ctx: Ctx) -> CaseResult {
    state_under(ctx, NetworkFault::BlackHole).await
}

pub(super) async fn cut(ctx: Ctx) -> CaseResult {
    state_under(ctx, NetworkFault::Cut).await
}

pub(super) async fn linearizable_under_cuts(ctx: Ctx) -> CaseResult {
    let faults = control(&ctx)?;
    working(&ctx, &ctx.key("hot-probe")).await?;
    // Cut twice while the clients run; each call during a cut is indeterminate.
    let schedule = async {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let _ = faults.network(Some(NetworkFault::Cut)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = faults.network(None).await;
        }
    };
    let contention = crate::state::concurrency::check_clients(&ctx, schedule).await;
    faults.network(None).await?;
    let indeterminate = contention?.errors.len();
    // A store that never reconnects leaves every later call indeterminate, which the checker
    // cannot hold against it: it must work again.
    let probe = ctx.key("hot-after");
    let took = recover(&ctx, "after the cuts, the store", || write_read(&ctx, &probe, b"after")).await;
    ctx.evidence.set(json!({
        "indeterminate": indeterminate,
        "recovery_ms": took.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
    }));
    took?;
    if indeterminate == 0 {
        return Err(Finding::Inconclusive(
            "no operation overlapped a cut (the clients finished first), so the faults were not exercised".into(),
        ));
    }
    Ok(())
}
