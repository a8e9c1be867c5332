//! What pub/sub cases observe with: the topics a trial may use, payloads that name their
//! trial, and an inbox that records every delivery a handler saw and answers per a policy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contract::pubsub::{BulkHandler, Handler, Message, Outcome};
use futures::FutureExt;
use serde_json::json;

use crate::case::{CaseResult, Finding};

/// The topics one trial may use. Over HTTP they are declared to the sidecar before it starts
/// (a sidecar reads the app's subscriptions once), so a trial leases a set instead of naming
/// its own; in-process they are simply named after the trial.
#[derive(Clone)]
pub struct TopicSet {
    /// The main topic; its subscriptions use [`TopicSet::dead_letter`].
    pub main: String,
    /// The dead-letter topic of `main`.
    pub dead_letter: String,
    /// A second, independent topic.
    pub other: String,
    /// A topic subscribed with `rawPayload` (over HTTP).
    pub raw: String,
    /// A topic subscribed in bulk (over HTTP).
    pub bulk: String,
    /// Unique to the trial; every payload starts with it, so deliveries left over from an
    /// earlier trial on a leased topic are recognised and ignored.
    pub nonce: String,
    _lease: Option<Arc<dyn Send + Sync>>,
}

impl std::fmt::Debug for TopicSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSet").field("main", &self.main).field("nonce", &self.nonce).finish()
    }
}

impl TopicSet {
    /// Topics named `{prefix}-main`, `{prefix}-dlq`, …, held by `lease` until dropped.
    pub fn named(prefix: &str, lease: Option<Arc<dyn Send + Sync>>) -> Self {
        Self {
            main: format!("{prefix}-main"),
            dead_letter: format!("{prefix}-dlq"),
            other: format!("{prefix}-other"),
            raw: format!("{prefix}-raw"),
            bulk: format!("{prefix}-bulk"),
            nonce: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            _lease: lease,
        }
    }

    /// The payload of message `seq` in series `tag`: `{nonce}:{tag}:{seq}`.
    pub fn payload(&self, tag: &str, seq: u64) -> Vec<u8> {
        format!("{}:{tag}:{seq}", self.nonce).into_bytes()
    }

    /// The series and number of a payload of this trial; `None` for anyone else's.
    pub fn parse(&self, data: &[u8]) -> Option<(String, u64)> {
        let text = std::str::from_utf8(data).ok()?;
        let rest = text.strip_prefix(&self.nonce)?.strip_prefix(':')?;
        let (tag, seq) = rest.rsplit_once(':')?;
        Some((tag.to_owned(), seq.parse().ok()?))
    }

    /// True when `data` belongs to this trial (binary payloads start with the nonce too).
    pub fn owns(&self, data: &[u8]) -> bool {
        data.starts_with(self.nonce.as_bytes())
    }
}

/// Where a trial gets its topics.
#[async_trait]
pub trait TopicSource: Send + Sync {
    /// Topics for the trial with `namespace`; waits while all are in use.
    async fn lease(&self, namespace: &str) -> Result<TopicSet, String>;
}

/// Topics named after the trial's namespace: any subscription can be made at any time.
#[derive(Debug, Clone, Copy, Default)]
pub struct NamespacedTopics;

#[async_trait]
impl TopicSource for NamespacedTopics {
    async fn lease(&self, namespace: &str) -> Result<TopicSet, String> {
        Ok(TopicSet::named(namespace, None))
    }
}

/// Reason of [`Outcome::Retry`] meaning "the handler failed" (an HTTP app answers 500) rather
/// than "the handler asked for a retry" (RETRY).
pub const HANDLER_ERROR: &str = "the handler failed";
/// Reason of [`Outcome::Drop`] meaning "the app has no such route" (an HTTP app answers 404).
pub const NOT_FOUND: &str = "the app has no handler for this message";

/// One delivery as a handler saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Series and number, from the payload.
    pub tag: String,
    /// The number in the series.
    pub seq: u64,
    /// What the handler answered.
    pub outcome: Outcome,
    /// Which subscriber (of several in one case) saw it.
    pub subscriber: usize,
    /// When, since the inbox was made.
    pub at: Duration,
}

/// Decides a delivery's fate from the message and how often this handler saw its id before.
pub type Policy = Arc<dyn Fn(&Message, u32) -> Outcome + Send + Sync>;

/// Records deliveries of one trial.
#[derive(Clone)]
pub struct Inbox {
    topics: TopicSet,
    started: Instant,
    seen: Arc<Mutex<Vec<Delivery>>>,
    foreign: Arc<Mutex<usize>>,
}

impl Inbox {
    /// An empty inbox for `topics`.
    pub fn new(topics: &TopicSet) -> Self {
        Self { topics: topics.clone(), started: Instant::now(), seen: Arc::default(), foreign: Arc::default() }
    }

    /// Every delivery so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn times_seen(&self, subscriber: usize, id: &str) -> u32 {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter().filter(|d| d.subscriber == subscriber && d.message.id == id).count() as u32
    }

    fn record(&self, message: Message, subscriber: usize, policy: &Policy) -> Outcome {
        let Some((tag, seq)) = self.topics.parse(&message.data).or_else(|| {
            // Binary payloads: the nonce, then the series and number in the first line.
            self.topics.owns(&message.data).then(|| {
                let line = message.data.split(|b| *b == b'\n').next().unwrap_or_default();
                let text = String::from_utf8_lossy(line).into_owned();
                let mut parts = text.rsplitn(3, ':');
                let seq = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let tag = parts.next().unwrap_or_default().to_owned();
                (tag, seq)
            })
        }) else {
            // Left over from an earlier trial on a leased topic: take it off the topic.
            *self.foreign.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            return Outcome::Success;
        };
        let before = self.times_seen(subscriber, &message.id);
        let outcome = policy(&message, before);
        let delivery = Delivery { message, tag, seq, outcome: outcome.clone(), subscriber, at: self.started.elapsed() };
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).push(delivery);
        outcome
    }

    /// A handler for subscriber number `subscriber` that records and answers per `policy`.
    pub fn handler(&self, subscriber: usize, policy: Policy) -> Handler {
        let inbox = self.clone();
        Arc::new(move |message: Message| {
            let outcome = inbox.record(message, subscriber, &policy);
            async move { outcome }.boxed()
        })
    }

    /// How long since the inbox was made, on the clock of [`Delivery::at`].
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// A bulk handler: each message of a batch is recorded and answered as by [`Inbox::handler`];
    /// the batch sizes are kept too.
    pub fn bulk_handler(&self, subscriber: usize, policy: Policy, batches: Arc<Mutex<Vec<usize>>>) -> BulkHandler {
        let inbox = self.clone();
        Arc::new(move |messages: Vec<Message>| {
            batches.lock().unwrap_or_else(PoisonError::into_inner).push(messages.len());
            let answers: Vec<(String, Outcome)> =
                messages.into_iter().map(|m| (m.id.clone(), inbox.record(m, subscriber, &policy))).collect();
            async move { answers }.boxed()
        })
    }

    /// Waits until `done` holds for the deliveries, or `timeout` passes; then says which.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&[Delivery]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.deliveries()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The numbers of series `tag` that subscriber `subscriber` handled successfully, with how
    /// often each was (more than once is an at-least-once duplicate).
    pub fn handled(&self, subscriber: usize, tag: &str) -> BTreeMap<u64, u32> {
        let mut counts = BTreeMap::new();
        let deliveries = self.deliveries();
        let ok = deliveries.iter().filter(|d| d.outcome == Outcome::Success);
        for d in ok.filter(|d| d.subscriber == subscriber && d.tag == tag) {
            *counts.entry(d.seq).or_insert(0) += 1;
        }
        counts
    }

    /// Evidence for the report: deliveries per series, duplicates, leftovers ignored.
    pub fn summary(&self) -> serde_json::Value {
        let deliveries = self.deliveries();
        let mut per_id: HashMap<(usize, &str), usize> = HashMap::new();
        for d in &deliveries {
            *per_id.entry((d.subscriber, d.message.id.as_str())).or_insert(0) += 1;
        }
        let mut successes: HashMap<(usize, &str, u64), usize> = HashMap::new();
        for d in deliveries.iter().filter(|d| d.outcome == Outcome::Success) {
            *successes.entry((d.subscriber, d.tag.as_str(), d.seq)).or_insert(0) += 1;
        }
        let duplicates: usize = successes.values().map(|n| n - 1).sum();
        json!({
            "deliveries": deliveries.len(),
            "messages": per_id.len(),
            "duplicate_successes": duplicates,
            "leftovers_ignored": *self.foreign.lock().unwrap_or_else(PoisonError::into_inner),
        })
    }
}

/// Every delivery succeeds.
pub fn always_succeed() -> Policy {
    Arc::new(|_, _| Outcome::Success)
}

/// Publishes through `publish` and turns its error into a failure naming `what`.
pub fn published(result: contract::Result<()>, what: &str) -> CaseResult {
    result.map_err(|e| Finding::Fail(format!("publishing {what} failed: {e}")))
}

/// Waits for a subscription to be live: Dapr's suite sleeps 5 s "for e.g. Kafka"; a probe
/// message published until `subscriber` (any, when `None`) sees one on `topic` tells exactly
/// when consumers that join asynchronously are ready.
pub async fn settle(ctx: &crate::case::Ctx, topic: &str, inbox: &Inbox, subscriber: Option<usize>) -> CaseResult {
    let timeout = Duration::from_secs(ctx.settings.delivery_timeout_seconds.max(1));
    let deadline = Instant::now() + timeout;
    let mut n = 0;
    loop {
        let probe = contract::pubsub::PublishRequest::new(topic, ctx.topics()?.payload("probe", n));
        published(ctx.pubsub()?.publish(probe).await, "a probe message")?;
        let seen = |ds: &[Delivery]| {
            ds.iter()
                .any(|d| d.tag == "probe" && d.message.topic == topic && subscriber.is_none_or(|s| s == d.subscriber))
        };
        if inbox.wait_for(Duration::from_millis(500), seen).await {
            return Ok(());
        }
        n += 1;
        if Instant::now() >= deadline {
            return Err(Finding::Fail(format!(
                "no message published to `{topic}` reached its subscriber within {} s of subscribing",
                timeout.as_secs()
            )));
        }
    }
}
