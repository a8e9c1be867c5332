//! Concurrency semantics no existing conformance suite checks: histories of concurrent
//! clients on hot keys must be linearizable; racing first-writes have exactly one winner;
//! writers holding the same ETag have at most one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use contract::Error;
use contract::state::{DeleteRequest, GetRequest, SetRequest};

use contract::state::{TransactionOperation, TransactionRequest};

use super::{BLOCK, ETAG, FIRST_WRITE, TRANSACTION, etag, set};
use crate::case;
use crate::case::{Case, CaseResult, Ctx, Finding};
use crate::history::{Input, Output, Recorder};
use crate::linearizability::{Verdict, check};

const CLIENTS: usize = 6;
const KEYS: usize = 3;
const OPS_PER_CLIENT: usize = 40;
const RACERS: usize = 8;
const ROUNDS: usize = 20;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "state.concurrency.linearizable",
            "certify",
            "Reads, writes, ETag compare-and-sets, first-writes and deletes from concurrent clients on a few hot keys MUST be linearizable, and at most 1 % of them may fail with an error other than an ETag mismatch.",
            [ETAG, FIRST_WRITE],
            ["concurrency"],
            120,
            linearizable
        ),
        case!(
            BLOCK,
            "state.concurrency.first-write-one-winner",
            "certify",
            "Concurrent first-writes to a fresh key MUST have exactly one winner, the others refused with an ETag mismatch.",
            [FIRST_WRITE],
            ["concurrency"],
            60,
            first_write_race
        ),
        case!(
            BLOCK,
            "state.concurrency.transactions-atomic-to-readers",
            "certify",
            "A reader MUST never see half of a transaction: after reading one key at transaction n, the other key MUST read at n or later.",
            [TRANSACTION],
            ["concurrency", "transaction"],
            60,
            transactions_atomic_to_readers
        ),
        case!(
            BLOCK,
            "state.concurrency.same-etag-one-winner",
            "certify",
            "Concurrent writes holding the current ETag MUST have exactly one winner, the others refused with an ETag mismatch, and the value left MUST be the winner's.",
            [ETAG],
            ["concurrency"],
            60,
            same_etag_race
        ),
    ]
}

/// A small deterministic generator (xorshift), seeded per trial so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: &str, client: usize) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes().chain(client.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn write_output(result: contract::Result<()>) -> Output {
    match result {
        Ok(()) => Output::Ok,
        Err(Error::EtagMismatch { .. } | Error::EtagInvalid { .. }) => Output::Refused,
        // Anything else may or may not have taken effect.
        Err(e) => Output::Indeterminate { reason: e.to_string() },
    }
}

async fn client(ctx: Ctx, recorder: Arc<Recorder>, id: usize, keys: Arc<Vec<String>>) {
    let Ok(store) = ctx.state() else { return };
    let mut rng = Rng::new(&ctx.namespace, id);
    let mut etags: HashMap<String, String> = HashMap::new();
    for seq in 0..OPS_PER_CLIENT {
        let key = keys[rng.below(keys.len())].clone();
        let value = format!("\"c{id}-{seq}\"");
        let known = etags.get(&key).cloned();
        let roll = rng.below(100);
        match (roll, known) {
            (0..40, _) | (40..65, None) => {
                let output = recorder
                    .record(id, &key, Input::Read, async {
                        match store.get(GetRequest::new(key.clone())).await {
                            Ok(Some(item)) => Output::Found {
                                value: String::from_utf8_lossy(&item.data).into_owned(),
                                etag: item.etag.unwrap_or_default(),
                            },
                            Ok(None) => Output::Absent,
                            Err(e) => Output::Indeterminate { reason: e.to_string() },
                        }
                    })
                    .await;
                match output {
                    Output::Found { etag, .. } => {
                        etags.insert(key, etag);
                    }
                    Output::Absent => {
                        etags.remove(&key);
                    }
                    _ => {}
                }
            }
            (40..65, Some(etag)) => {
                let input = Input::CasWrite { etag: etag.clone(), value: value.clone() };
                recorder
                    .record(id, &key, input, async {
                        write_output(store.set(SetRequest::new(key.clone(), value.clone()).with_etag(etag)).await)
                    })
                    .await;
            }
            (65..75, _) => {
                recorder
                    .record(id, &key, Input::Write { value: value.clone() }, async {
                        write_output(store.set(SetRequest::new(key.clone(), value.clone())).await)
                    })
                    .await;
            }
            (75..85, _) => {
                let input = Input::FirstWrite { value: value.clone() };
                recorder
                    .record(id, &key, input, async {
                        write_output(store.set(SetRequest::new(key.clone(), value.clone()).first_write()).await)
                    })
                    .await;
            }
            (85..93, Some(etag)) => {
                let input = Input::CasDelete { etag: etag.clone() };
                recorder
                    .record(id, &key, input, async {
                        write_output(store.delete(DeleteRequest::new(key.clone()).with_etag(etag)).await)
                    })
                    .await;
            }
            _ => {
                recorder
                    .record(id, &key, Input::Delete, async {
                        write_output(store.delete(DeleteRequest::new(key.clone())).await)
                    })
                    .await;
            }
        }
    }
}

/// The share of contending calls that may fail with an error other than an ETag refusal when
/// nothing is faulted. Such a call may or may not have taken effect, so the checker cannot hold
/// it against the store; a store that errors its way out of contention breaks the contract.
const MAX_ERROR_SHARE: f64 = 0.01;

async fn linearizable(ctx: Ctx) -> CaseResult {
    let contention = check_clients(&ctx, async {}).await?;
    let allowed = (contention.operations as f64 * MAX_ERROR_SHARE).floor() as usize;
    ctx.evidence.set(serde_json::json!({
        "operations": contention.operations,
        "errors": contention.errors.len(),
        "allowed_errors": allowed,
        "first_errors": contention.errors.iter().take(5).collect::<Vec<_>>(),
    }));
    if contention.errors.len() > allowed {
        return Err(Finding::Fail(format!(
            "{} of {} calls under contention failed with errors other than an ETag mismatch (at most {allowed}, {:.0} %, may): first: {}",
            contention.errors.len(),
            contention.operations,
            MAX_ERROR_SHARE * 100.0,
            contention.errors.first().map_or("", String::as_str)
        )));
    }
    Ok(())
}

/// What concurrent clients did: how many calls, and why the ones that errored did.
pub(crate) struct Contention {
    /// Calls made.
    pub operations: usize,
    /// The errors (other than ETag refusals) of the calls that failed.
    pub errors: Vec<String>,
}

/// Runs the concurrent clients while `during` runs beside them (a fault schedule), checks
/// their history, and answers what they did.
pub(crate) async fn check_clients(
    ctx: &Ctx,
    during: impl std::future::Future<Output = ()>,
) -> Result<Contention, Finding> {
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| ctx.key(&format!("hot-{i}"))).collect());
    let recorder = Arc::new(Recorder::new());
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(ctx.clone(), Arc::clone(&recorder), id, Arc::clone(&keys))))
        .collect();
    during.await;
    for task in tasks {
        task.await.map_err(|e| Finding::Fail(format!("a client task failed: {e}")))?;
    }
    let history = recorder.history();
    let verdict = check(&history, Duration::from_secs(20));
    let errors: Vec<String> = history
        .operations
        .iter()
        .filter_map(|o| match &o.output {
            Output::Indeterminate { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    let indeterminate = errors.len();
    match verdict {
        Verdict::Linearizable => Ok(Contention { operations: history.operations.len(), errors }),
        Verdict::Inconclusive { reason } => Err(Finding::Inconclusive(reason)),
        Verdict::NotLinearizable { key, reason, minimal } => {
            ctx.evidence.set(serde_json::json!({
                "checker": "linearizability",
                "seed": ctx.namespace,
                "key": key,
                "operations": history.operations.len(),
                "indeterminate": indeterminate,
                "minimal": minimal,
            }));
            let steps: Vec<String> = minimal.iter().map(describe).collect();
            Err(Finding::Fail(format!(
                "not linearizable ({} operations from {CLIENTS} clients, seed {}): {reason}: {}",
                history.operations.len(),
                ctx.namespace,
                steps.join("; ")
            )))
        }
    }
}

/// One operation as a person reads it: `c2 cas(e=…)→"c1-3" ok [1.203–1.210 ms]`.
pub(crate) fn describe(op: &crate::history::Operation) -> String {
    let input = match &op.input {
        Input::Read => "read".to_owned(),
        Input::Write { value } => format!("write {value}"),
        Input::CasWrite { etag, value } => format!("write {value} if etag {etag}"),
        Input::FirstWrite { value } => format!("first-write {value}"),
        Input::Delete => "delete".to_owned(),
        Input::CasDelete { etag } => format!("delete if etag {etag}"),
    };
    let output = match &op.output {
        Output::Found { value, etag } => format!("{value} (etag {etag})"),
        Output::Absent => "absent".to_owned(),
        Output::Ok => "ok".to_owned(),
        Output::Refused => "refused".to_owned(),
        Output::Indeterminate { reason } => format!("? ({reason})"),
    };
    let end = op.complete_ns.map_or("…".to_owned(), |c| format!("{:.3}", c as f64 / 1e6));
    format!("client {} {input} → {output} [{:.3}–{end} ms]", op.client, op.invoke_ns as f64 / 1e6)
}

async fn race<F, Fut>(racers: usize, start: F) -> Vec<contract::Result<()>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = contract::Result<()>> + Send + 'static,
{
    let tasks: Vec<_> = (0..racers).map(|i| tokio::spawn(start(i))).collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap_or_else(|e| Err(Error::Backend(format!("task failed: {e}")))));
    }
    results
}

/// The winners of a race. A loser must be refused with an ETag mismatch: any other error under
/// contention breaks the contract (S34, S26), so it fails the case rather than leaving it open.
fn tally(results: &[contract::Result<()>]) -> Result<usize, Finding> {
    if let Some(Err(e)) = results.iter().find(|r| r.is_err() && !super::etag::is_mismatch(r)) {
        return Err(Finding::Fail(format!("a racer that lost was answered `{e}`, not an ETag mismatch")));
    }
    Ok(results.iter().filter(|r| r.is_ok()).count())
}

async fn first_write_race(ctx: Ctx) -> CaseResult {
    for round in 0..ROUNDS {
        let key = ctx.key(&format!("fw-race-{round}"));
        let state = Arc::clone(ctx.state()?);
        let results = race(RACERS, |i| {
            let (state, key) = (Arc::clone(&state), key.clone());
            async move { state.set(SetRequest::new(key, format!("\"racer-{i}\"")).first_write()).await }
        })
        .await;
        let winners = tally(&results)?;
        if winners != 1 {
            return Err(Finding::Fail(format!(
                "round {round}: {winners} of {RACERS} concurrent first-writes to a fresh key succeeded"
            )));
        }
    }
    Ok(())
}

async fn same_etag_race(ctx: Ctx) -> CaseResult {
    for round in 0..ROUNDS {
        let key = ctx.key(&format!("etag-race-{round}"));
        set(&ctx, &key, "\"start\"").await?;
        let e = etag(&ctx, &key).await?;
        let state = Arc::clone(ctx.state()?);
        let results = race(RACERS, |i| {
            let (state, key, e) = (Arc::clone(&state), key.clone(), e.clone());
            async move { state.set(SetRequest::new(key, format!("\"racer-{i}\"")).with_etag(e)).await }
        })
        .await;
        let winners = tally(&results)?;
        if winners != 1 {
            return Err(Finding::Fail(format!(
                "round {round}: {winners} of {RACERS} writes holding the current ETag succeeded"
            )));
        }
        let left = super::data(&ctx, &key).await?.unwrap_or_default();
        let expected = results.iter().position(Result::is_ok).map(|i| format!("\"racer-{i}\"")).unwrap_or_default();
        if left != expected.as_bytes() {
            return Err(Finding::Fail(format!(
                "round {round}: the value left is {} but the winner wrote {expected}",
                String::from_utf8_lossy(&left)
            )));
        }
    }
    Ok(())
}

fn version_of(data: Option<Vec<u8>>) -> Option<u64> {
    String::from_utf8(data?).ok()?.trim_matches('"').strip_prefix('t')?.parse().ok()
}

async fn transactions_atomic_to_readers(ctx: Ctx) -> CaseResult {
    const TRANSACTIONS: u64 = 150;
    let (a, b) = (ctx.key("tx-a"), ctx.key("tx-b"));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (state, a, b, done, started) =
            (Arc::clone(ctx.state()?), a.clone(), b.clone(), Arc::clone(&done), Arc::clone(&started));
        tokio::spawn(async move {
            // Readers first, and a yield after each transaction, so reads interleave with
            // writes even when every call completes without waiting (in-process stores).
            while started.load(std::sync::atomic::Ordering::SeqCst) < 4 {
                tokio::task::yield_now().await;
            }
            let mut result = Ok(());
            for n in 1..=TRANSACTIONS {
                tokio::task::yield_now().await;
                let value = format!("\"t{n}\"");
                let operations = vec![
                    TransactionOperation::Set(SetRequest::new(a.clone(), value.clone())),
                    TransactionOperation::Set(SetRequest::new(b.clone(), value)),
                ];
                if let Err(e) = state.transact(TransactionRequest { operations, metadata: Default::default() }).await {
                    result = Err(e);
                    break;
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            result
        })
    };
    let store = ctx.state()?;
    let readers: Vec<_> = (0..4)
        .map(|i| {
            let (state, done, started) = (Arc::clone(store), Arc::clone(&done), Arc::clone(&started));
            // Half the readers read a then b, half b then a.
            let (first, second) = if i % 2 == 0 { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
            tokio::spawn(async move {
                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut observed = 0usize;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::task::yield_now().await;
                    let x = version_of(state.get(GetRequest::new(first.clone())).await?.map(|i| i.data));
                    let y = version_of(state.get(GetRequest::new(second.clone())).await?.map(|i| i.data));
                    if let (Some(x), Some(y)) = (x, y) {
                        observed += 1;
                        if y < x {
                            return Ok(Err(format!("read `{first}` at transaction {x}, then `{second}` at transaction {y}: half a transaction was visible")));
                        }
                    }
                }
                Ok::<_, contract::Error>(Ok(observed))
            })
        })
        .collect();
    let mut observed = 0;
    for r in readers {
        match r.await {
            Ok(Ok(Ok(n))) => observed += n,
            Ok(Ok(Err(violation))) => return Err(Finding::Fail(violation)),
            Ok(Err(e)) => return Err(Finding::Inconclusive(format!("a reader's call failed: {e}"))),
            Err(e) => return Err(Finding::Fail(format!("a reader task failed: {e}"))),
        }
    }
    match writer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Finding::Fail(format!("a transaction failed: {e}"))),
        Err(e) => return Err(Finding::Fail(format!("the writer task failed: {e}"))),
    }
    if observed == 0 {
        return Err(Finding::Inconclusive("no reader saw the transactions while they ran".into()));
    }
    Ok(())
}
