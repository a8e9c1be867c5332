//! The bindings suite: every B-rule of Dapr's suite, made to check what it names. Dapr's
//! suite only name-checks `exec`/`query`, never runs `delete`, and accepts any input event as
//! proof of `read`; here `get` must return exactly what `create` wrote, `delete` must remove
//! it, SQL statements must really run, and the input side must deliver the very payloads sent.
//!
//! Input events reach cases through a [`BindingInbox`]: one reader per binding and driver for
//! the whole run (a sidecar, too, reads an input binding once), fanned out to every trial
//! listening at the time. Each trial recognises its own payloads by its namespace.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use contract::bindings::{BindingEvent, BindingHandler, InvokeRequest, InvokeResponse};
use contract::{Block, OutputBinding};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::case::{Case, CaseResult, Claim, Ctx, DriverCapability, Finding, Must, Reach, Requirement};
use crate::suite::Suite;
use crate::{case, ensure, ensure_eq};

const BLOCK: Block = Block::BINDINGS;
/// The output side, which sends what the cases check.
pub const OUTPUT: Reach = Reach::of::<dyn OutputBinding>("output binding");
/// Where the input side's events arrive. Not a need of the suite: a component that claims
/// `read` without one fails its reading cases.
pub const INBOX: Reach = Reach::of::<BindingInbox>("input binding whose events certify receives");

/// The bindings suite: every case sends through the output side.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[OUTPUT], cases, prepare: None };

/// Input events of one binding, handed to every trial listening when they arrive. Events
/// nobody listens for (leftovers of earlier runs on a durable queue) are acknowledged and
/// dropped.
#[derive(Debug, Default)]
pub struct BindingInbox {
    listeners: Mutex<Vec<mpsc::UnboundedSender<BindingEvent>>>,
    /// Payloads whose next delivery the app fails on purpose.
    fail_next: Mutex<BTreeSet<Vec<u8>>>,
}

/// The app's answer to an event it was told to fail.
pub const FAILED_ON_PURPOSE: &str = "certify failed this delivery on purpose";

impl BindingInbox {
    /// Starts receiving every event delivered from now on.
    pub fn listen(&self) -> mpsc::UnboundedReceiver<BindingEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.listeners.lock().unwrap_or_else(PoisonError::into_inner).push(tx);
        rx
    }

    /// Makes the next delivery of exactly `data` fail, so the binding has to deliver it again.
    pub fn fail_next_delivery_of(&self, data: Vec<u8>) {
        self.fail_next.lock().unwrap_or_else(PoisonError::into_inner).insert(data);
    }

    /// Hands `event` to every listener (and forgets listeners that stopped); the app's
    /// answer is an error only for an event it was told to fail.
    pub fn deliver(&self, event: BindingEvent) -> Result<(), String> {
        let fail = self.fail_next.lock().unwrap_or_else(PoisonError::into_inner).remove(&event.data);
        self.listeners.lock().unwrap_or_else(PoisonError::into_inner).retain(|l| l.send(event.clone()).is_ok());
        match fail {
            true => Err(FAILED_ON_PURPOSE.into()),
            false => Ok(()),
        }
    }

    /// A handler for an input binding that delivers here.
    pub fn handler(self: &Arc<Self>) -> BindingHandler {
        let inbox = Arc::clone(self);
        Arc::new(move |event| {
            let answer = inbox.deliver(event).map(|()| Vec::new());
            Box::pin(async move { answer })
        })
    }
}

use Claim::{Create, Delete, Exec, Get, Query, Read};
use Requirement::{Claimed, Driver};

/// Every bindings case.
fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "bindings.basic.ping",
            "B3",
            "Ping MUST succeed against a reachable binding, and so MUST a `create` right after it (where the binding claims one), so that a ping that answers without its backend (as a sidecar's does) is not taken for one.",
            [],
            [],
            15,
            ping
        ),
        case!(
            BLOCK,
            "bindings.operations.listed",
            "B4",
            "The output binding MUST list every operation it is certified for.",
            [Driver(DriverCapability::ListsOperations)],
            [],
            15,
            operations_listed
        ),
        case!(
            BLOCK,
            "bindings.invoke.unknown-operation-rejected",
            "certify",
            "Invoking an operation the binding does not have MUST fail, not succeed doing nothing.",
            [],
            [],
            15,
            unknown_operation
        ),
        case!(BLOCK, "bindings.create.accepted", "B6", "A `create` MUST succeed.", [Claimed(Create)], [], 15, create),
        case!(
            BLOCK,
            "bindings.get.round-trip",
            "B7",
            "A `get` MUST return exactly the bytes the latest `create` of that item wrote.",
            [Claimed(Create), Claimed(Get)],
            [],
            15,
            get_round_trip
        ),
        case!(
            BLOCK,
            "bindings.get.binary-round-trip",
            "certify",
            "A `get` MUST return binary data (every byte value) exactly as `create` wrote it.",
            [Claimed(Create), Claimed(Get), Driver(DriverCapability::BinaryValues)],
            [],
            15,
            get_binary
        ),
        case!(
            BLOCK,
            "bindings.delete.removes",
            "B10",
            "After `delete`, a `get` of the item MUST return no data; so MUST a `get` of an item never created.",
            [Claimed(Create), Claimed(Get), Claimed(Delete)],
            [],
            15,
            delete_removes
        ),
        case!(
            BLOCK,
            "bindings.read.delivers-created",
            "B9",
            "The input binding MUST deliver the payload the output binding sent, byte for byte.",
            [Claimed(Create), Claimed(Read)],
            [],
            60,
            read_delivers_created
        ),
        case!(
            BLOCK,
            "bindings.read.every-event",
            "certify",
            "Every payload sent MUST be delivered by the input binding at least once.",
            [Claimed(Create), Claimed(Read)],
            [],
            60,
            read_every_event
        ),
        case!(
            BLOCK,
            "bindings.read.failed-event-redelivered",
            "certify",
            "An event the app failed to handle MUST be delivered again.",
            [Claimed(Create), Claimed(Read)],
            [],
            60,
            read_redelivers_failed
        ),
        case!(
            BLOCK,
            "bindings.trace.carried",
            "O7",
            "A `create`'s trace id MUST reach the app with the input event it causes: the sidecar puts the call's `traceparent` in the output binding's metadata (O7) and continues the trace an input event's metadata carries (daprd's `sendBindingEventToApp`). Needs a binding that carries a create's metadata to its input events (inconclusive otherwise).",
            [Claimed(Create), Claimed(Read), Driver(DriverCapability::TraceContext)],
            ["observability"],
            60,
            trace_carried
        ),
        case!(
            BLOCK,
            "bindings.sql.exec-and-query",
            "B4",
            "`exec` MUST run statements with their parameters and report rows affected; `query` MUST answer the rows as JSON; invalid SQL MUST fail.",
            [Claimed(Exec), Claimed(Query)],
            [],
            30,
            sql_exec_and_query
        ),
    ]
    .into_iter()
    .chain(crate::http_api::bindings::cases())
    .collect()
}

/// The operations a claim names.
fn operation(claim: Claim) -> Option<&'static str> {
    match claim {
        Create => Some("create"),
        Get => Some("get"),
        Delete => Some("delete"),
        Exec => Some("exec"),
        Query => Some("query"),
        _ => None,
    }
}

pub(crate) fn output(ctx: &Ctx) -> Result<&Arc<dyn OutputBinding>, Finding> {
    ctx.reach(OUTPUT)
}

/// A JSON payload naming the trial: compact with sorted keys, so a sidecar that re-encodes
/// JSON (daprd does) passes it on byte-identical.
pub(crate) fn payload(ctx: &Ctx, n: u64) -> Vec<u8> {
    json!({"certify": ctx.namespace, "n": n}).to_string().into_bytes()
}

pub(crate) fn keyed(ctx: &Ctx, operation: &str, data: Vec<u8>, key: &str) -> InvokeRequest {
    InvokeRequest::new(operation, data).with_metadata(ctx.settings.binding_key.clone(), key)
}

fn shown(data: &Option<Vec<u8>>) -> String {
    match data {
        None => "no data".into(),
        Some(d) => format!("{:?}", String::from_utf8_lossy(d)),
    }
}

async fn ping(ctx: Ctx) -> CaseResult {
    output(&ctx)?.ping().await.must("ping")?;
    if !ctx.claims.contains(&Create) {
        ctx.evidence.set(json!({"touched": "only the ping: the binding claims no `create`"}));
        return Ok(());
    }
    let key = ctx.key("ping");
    output(&ctx)?
        .invoke(keyed(&ctx, "create", payload(&ctx, 0), &key))
        .await
        .must("a `create` after the ping")
        .map(drop)
}

async fn operations_listed(ctx: Ctx) -> CaseResult {
    let listed: BTreeSet<String> = output(&ctx)?.operations().iter().map(|o| o.to_ascii_lowercase()).collect();
    let missing: Vec<&str> =
        ctx.claims.iter().filter_map(|c| operation(*c)).filter(|op| !listed.contains(*op)).collect();
    ctx.evidence.set(json!({"listed": listed}));
    ensure!(missing.is_empty(), "the binding lists {listed:?}, without the certified operations {missing:?}");
    Ok(())
}

async fn unknown_operation(ctx: Ctx) -> CaseResult {
    let binding = output(&ctx)?;
    let key = ctx.key("unknown-op");
    let answer = binding.invoke(keyed(&ctx, "certify-no-such-operation", payload(&ctx, 0), &key)).await;
    ensure!(answer.is_err(), "invoking `certify-no-such-operation` answered {answer:?} instead of an error");
    Ok(())
}

async fn create(ctx: Ctx) -> CaseResult {
    let key = ctx.key("create");
    output(&ctx)?.invoke(keyed(&ctx, "create", payload(&ctx, 1), &key)).await.must("create").map(drop)
}

async fn get(ctx: &Ctx, key: &str) -> Result<InvokeResponse, Finding> {
    output(ctx)?.invoke(keyed(ctx, "get", Vec::new(), key)).await.must(&format!("get of `{key}`"))
}

async fn get_round_trip(ctx: Ctx) -> CaseResult {
    let binding = output(&ctx)?;
    let key = ctx.key("round-trip");
    for n in [1, 2] {
        let data = payload(&ctx, n);
        binding.invoke(keyed(&ctx, "create", data.clone(), &key)).await.must(&format!("create #{n}"))?;
        let got = get(&ctx, &key).await?.data;
        ensure!(got.as_deref() == Some(&data[..]), "after create #{n}, get answered {}", shown(&got));
    }
    Ok(())
}

async fn get_binary(ctx: Ctx) -> CaseResult {
    let binding = output(&ctx)?;
    let key = ctx.key("binary");
    let data: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    binding.invoke(keyed(&ctx, "create", data.clone(), &key)).await.must("create")?;
    let got = get(&ctx, &key).await?.data;
    ensure_eq!(got, Some(data), "the bytes `get` returned");
    Ok(())
}

async fn delete_removes(ctx: Ctx) -> CaseResult {
    let binding = output(&ctx)?;
    let never = ctx.key("never-created");
    let got = get(&ctx, &never).await?.data;
    ensure!(got.as_deref().unwrap_or_default().is_empty(), "get of an item never created answered {}", shown(&got));
    let key = ctx.key("deleted");
    binding.invoke(keyed(&ctx, "create", payload(&ctx, 1), &key)).await.must("create")?;
    binding.invoke(keyed(&ctx, "delete", Vec::new(), &key)).await.must("delete")?;
    let got = get(&ctx, &key).await?.data;
    ensure!(got.as_deref().unwrap_or_default().is_empty(), "after delete, get answered {}", shown(&got));
    Ok(())
}

/// Listens on the component's input side, or fails saying it has none.
pub(crate) fn listen(ctx: &Ctx) -> Result<mpsc::UnboundedReceiver<BindingEvent>, Finding> {
    Ok(inbox(ctx)?.listen())
}

fn inbox(ctx: &Ctx) -> Result<&Arc<BindingInbox>, Finding> {
    ctx.maybe::<BindingInbox>()
        .ok_or_else(|| Finding::Fail("the component claims `read` but has no input binding".into()))
}

/// Sends `count` payloads and waits until each has been delivered; records what was seen.
async fn send_and_collect(ctx: &Ctx, count: u64) -> CaseResult {
    let mut events = listen(ctx)?;
    let binding = output(ctx)?;
    let sent: Vec<Vec<u8>> = (1..=count).map(|n| payload(ctx, n)).collect();
    for (n, data) in sent.iter().enumerate() {
        let key = ctx.key(&format!("event-{n}"));
        binding.invoke(keyed(ctx, "create", data.clone(), &key)).await.must(&format!("create #{}", n + 1))?;
    }
    let deadline = Instant::now() + Duration::from_secs(ctx.settings.delivery_timeout_seconds);
    let wanted: BTreeSet<&[u8]> = sent.iter().map(Vec::as_slice).collect();
    let (mut seen, mut duplicates, mut others, mut foreign) = (BTreeSet::new(), 0u32, 0u32, Vec::new());
    while seen.len() < wanted.len() {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline.into(), events.recv()).await else { break };
        if wanted.contains(event.data.as_slice()) {
            if !seen.insert(event.data.clone()) {
                duplicates += 1;
            }
        } else if String::from_utf8_lossy(&event.data).contains(&ctx.namespace) {
            // Ours, but not byte-identical to anything sent: mangled on the way.
            foreign.push(String::from_utf8_lossy(&event.data).into_owned());
        } else {
            others += 1;
        }
    }
    ctx.evidence.set(json!({
        "sent": count, "delivered": seen.len(), "duplicates": duplicates,
        "other_trials_events": others, "altered": foreign,
    }));
    ensure!(
        foreign.is_empty(),
        "events arrived altered: {foreign:?} (sent e.g. {:?})",
        String::from_utf8_lossy(&sent[0])
    );
    let missing: Vec<String> =
        sent.iter().filter(|d| !seen.contains(*d)).map(|d| String::from_utf8_lossy(d).into_owned()).collect();
    ensure!(
        missing.is_empty(),
        "{} of {count} payloads were not delivered within {} s: {missing:?}",
        missing.len(),
        ctx.settings.delivery_timeout_seconds
    );
    Ok(())
}

async fn read_delivers_created(ctx: Ctx) -> CaseResult {
    send_and_collect(&ctx, 1).await
}

async fn read_every_event(ctx: Ctx) -> CaseResult {
    send_and_collect(&ctx, 20).await
}

async fn read_redelivers_failed(ctx: Ctx) -> CaseResult {
    let mut events = listen(&ctx)?;
    let inbox = inbox(&ctx)?;
    let data = payload(&ctx, 1);
    inbox.fail_next_delivery_of(data.clone());
    let key = ctx.key("redelivered");
    output(&ctx)?.invoke(keyed(&ctx, "create", data.clone(), &key)).await.must("create")?;
    let deadline = Instant::now() + Duration::from_secs(ctx.settings.delivery_timeout_seconds);
    let mut deliveries = 0;
    while deliveries < 2 {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline.into(), events.recv()).await else { break };
        if event.data == data {
            deliveries += 1;
        }
    }
    ctx.evidence.set(json!({"deliveries": deliveries}));
    ensure!(deliveries > 0, "the event was never delivered within {} s", ctx.settings.delivery_timeout_seconds);
    ensure!(
        deliveries > 1,
        "the app failed the event's delivery, and it was not delivered again within {} s",
        ctx.settings.delivery_timeout_seconds
    );
    Ok(())
}

/// The metadata entry [`trace_carried`] sends beside its trace context.
const CARRIED: &str = "certify-carried";

async fn trace_carried(ctx: Ctx) -> CaseResult {
    use crate::observability::{TRACE_ID, TraceContext, trace_id, traced};
    let mut events = listen(&ctx)?;
    let (data, key) = (payload(&ctx, 1), ctx.key("traced"));
    // A marker of the case's own: whether the binding carries a create's metadata at all.
    let create = output(&ctx)?.invoke(keyed(&ctx, "create", data.clone(), &key).with_metadata(CARRIED, &key));
    traced(TraceContext::certify(), create).await.must("a traced create")?;
    let deadline = Instant::now() + Duration::from_secs(ctx.settings.delivery_timeout_seconds);
    let event = loop {
        match tokio::time::timeout_at(deadline.into(), events.recv()).await {
            Ok(Some(event)) if event.data == data => break event,
            Ok(Some(_)) => continue,
            _ => return Err(Finding::Fail("the traced create's event was never delivered".into())),
        }
    };
    let entry = |name: &str| event.metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    if entry(CARRIED).as_deref() != Some(key.as_str()) {
        // Either the binding does not carry metadata or the sidecar dropped it on the way:
        // from here the two look alike, so this is no verdict either way.
        return Err(Finding::Inconclusive(
            "the create's metadata did not reach its input event (a binding that does not carry metadata, or a sidecar that drops it), so the trace context could not be followed".into(),
        ));
    }
    let received = entry("traceparent").unwrap_or_default();
    ctx.evidence.set(json!({"event_metadata": event.metadata}));
    ensure_eq!(
        trace_id(&received),
        Some(TRACE_ID.to_owned()),
        "the trace id of the traceparent `{received}` the app received with the event"
    );
    Ok(())
}

fn sql(statement: &str, params: Value) -> InvokeRequest {
    InvokeRequest::new("", Vec::new()).with_metadata("sql", statement).with_metadata("params", params.to_string())
}

async fn sql_exec_and_query(ctx: Ctx) -> CaseResult {
    let binding = output(&ctx)?;
    let table = format!("certify_{}", ctx.namespace.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
    let exec = |statement: String, params: Value| {
        let mut request = sql(&statement, params);
        request.operation = "exec".into();
        async move { binding.invoke(request).await.must(&format!("exec `{statement}`")) }
    };
    let query = |statement: String, params: Value| {
        let mut request = sql(&statement, params);
        request.operation = "query".into();
        async move {
            let answer = binding.invoke(request).await.must(&format!("query `{statement}`"))?;
            let data = answer.data.unwrap_or_default();
            serde_json::from_slice::<Value>(&data).map_err(|e| {
                Finding::Fail(format!(
                    "query `{statement}` answered {:?}, not JSON: {e}",
                    String::from_utf8_lossy(&data)
                ))
            })
        }
    };
    let affected = |answer: &InvokeResponse| answer.metadata.get("rows-affected").cloned();
    exec(format!("CREATE TABLE {table} (k TEXT PRIMARY KEY, n INTEGER)"), json!([])).await?;
    let outcome = async {
        for (k, n) in [("a", 1), ("b", 2)] {
            let answer = exec(format!("INSERT INTO {table} (k, n) VALUES ($1, $2)"), json!([k, n])).await?;
            ensure_eq!(affected(&answer), Some("1".to_owned()), "rows-affected of inserting `{k}`");
        }
        let answer = exec(format!("UPDATE {table} SET n = n + 10"), json!([])).await?;
        ensure_eq!(affected(&answer), Some("2".to_owned()), "rows-affected of updating both rows");
        let rows = query(format!("SELECT k, n FROM {table} ORDER BY k"), json!([])).await?;
        ensure_eq!(rows, json!([["a", 11], ["b", 12]]), "the rows `query` answered");
        let rows = query(format!("SELECT n FROM {table} WHERE k = $1"), json!(["b"])).await?;
        ensure_eq!(rows, json!([[12]]), "the rows of a parameterised `query`");
        let mut bad = sql("THIS IS NOT SQL", json!([]));
        bad.operation = "exec".into();
        let answer = binding.invoke(bad).await;
        ensure!(answer.is_err(), "exec of invalid SQL answered {answer:?} instead of an error");
        Ok(())
    }
    .await;
    let dropped = exec(format!("DROP TABLE {table}"), json!([])).await;
    outcome.and(dropped.map(drop))
}
