//! The case model: a case is data about one normative rule plus an async body that checks it
//! against whatever driver runs it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::configuration::{
    ConfigurationItem, ConfigurationSubscription, GetConfigurationRequest, SubscribeConfigurationRequest,
};
use contract::lock::{TryLockRequest, UnlockRequest, UnlockStatus};
use contract::pubsub::{Handler, PublishRequest, SubscribeRequest, Subscription};
use contract::secrets::{GetSecretRequest, SecretData};
use contract::state::{DeleteRequest, GetRequest, Item, SetRequest};
use contract::{
    Block, FeatureSet, LockStore, PubSub, PubSubFeature, SecretFeature, SecretStore, StateFeature, StateStore,
};
use contract::{ConfigurationStore, ConfigurationUpdater};

use crate::pubsub::TopicSet;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// A capability a component claims in its spec, named like Dapr's `tests.yml` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Claim {
    /// ETags on every item, compare-and-set writes.
    #[serde(rename = "etag")]
    Etag,
    /// First-write concurrency.
    #[serde(rename = "first-write")]
    FirstWrite,
    /// Atomic multi-operation transactions.
    #[serde(rename = "transaction")]
    Transaction,
    /// Item expiry.
    #[serde(rename = "ttl")]
    Ttl,
    /// The query API.
    #[serde(rename = "query")]
    Query,
    /// Delete by `||`-prefix.
    #[serde(rename = "delete-with-prefix")]
    DeleteWithPrefix,
    /// Key listing with LIKE patterns.
    #[serde(rename = "keyslike")]
    KeysLike,
    /// Pub/sub: several messages in one publish call.
    #[serde(rename = "bulkpublish")]
    BulkPublish,
    /// Pub/sub: deliveries in batches.
    #[serde(rename = "bulksubscribe")]
    BulkSubscribe,
    /// Pub/sub: messages with one `partitionKey` are handled in publish order.
    #[serde(rename = "ordering")]
    Ordering,
    /// Secret stores: a secret may hold several key/value pairs.
    #[serde(rename = "multiplekeyvaluespersecret")]
    MultiKeySecrets,
    /// Output bindings: the `create` operation.
    #[serde(rename = "create")]
    Create,
    /// Output bindings: the `get` operation (reads back what `create` wrote).
    #[serde(rename = "get")]
    Get,
    /// Output bindings: the `delete` operation.
    #[serde(rename = "delete")]
    Delete,
    /// Output bindings: the `exec` operation (SQL statements).
    #[serde(rename = "exec")]
    Exec,
    /// Bindings: an input binding that delivers what the output binding sends.
    #[serde(rename = "read")]
    Read,
}

impl Claim {
    /// Every claim.
    pub const ALL: &'static [Claim] = &[
        Claim::Etag,
        Claim::FirstWrite,
        Claim::Transaction,
        Claim::Ttl,
        Claim::Query,
        Claim::DeleteWithPrefix,
        Claim::KeysLike,
        Claim::BulkPublish,
        Claim::BulkSubscribe,
        Claim::Ordering,
        Claim::MultiKeySecrets,
        Claim::Create,
        Claim::Get,
        Claim::Delete,
        Claim::Exec,
        Claim::Read,
    ];

    /// The spec name.
    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Etag => "etag",
            Claim::FirstWrite => "first-write",
            Claim::Transaction => "transaction",
            Claim::Ttl => "ttl",
            Claim::Query => "query",
            Claim::DeleteWithPrefix => "delete-with-prefix",
            Claim::KeysLike => "keyslike",
            Claim::BulkPublish => "bulkpublish",
            Claim::BulkSubscribe => "bulksubscribe",
            Claim::Ordering => "ordering",
            Claim::MultiKeySecrets => "multiplekeyvaluespersecret",
            Claim::Create => "create",
            Claim::Get => "get",
            Claim::Delete => "delete",
            Claim::Exec => "exec",
            Claim::Read => "read",
        }
    }

    /// The feature a store advertises for this claim, if Dapr has one.
    pub fn feature(self) -> Option<StateFeature> {
        match self {
            Claim::Etag => Some(StateFeature::Etag),
            Claim::Transaction => Some(StateFeature::Transactional),
            Claim::Ttl => Some(StateFeature::Ttl),
            Claim::Query => Some(StateFeature::QueryApi),
            Claim::DeleteWithPrefix => Some(StateFeature::DeleteWithPrefix),
            Claim::KeysLike => Some(StateFeature::KeysLike),
            Claim::FirstWrite
            | Claim::BulkPublish
            | Claim::BulkSubscribe
            | Claim::Ordering
            | Claim::MultiKeySecrets
            | Claim::Create
            | Claim::Get
            | Claim::Delete
            | Claim::Exec
            | Claim::Read => None,
        }
    }

    /// The building blocks this claim means something for (`ttl` is item expiry for state
    /// stores and message expiry for pub/sub; `query` is the state query API and a binding's
    /// SQL `query` operation).
    pub fn blocks(self) -> &'static [Block] {
        match self {
            Claim::Ttl => &[Block::State, Block::PubSub],
            Claim::Query => &[Block::State, Block::Bindings],
            Claim::Create | Claim::Get | Claim::Delete | Claim::Exec | Claim::Read => &[Block::Bindings],
            Claim::BulkPublish | Claim::BulkSubscribe | Claim::Ordering => &[Block::PubSub],
            Claim::MultiKeySecrets => &[Block::SecretStores],
            _ => &[Block::State],
        }
    }

    /// The claim for an advertised feature (how `--sidecar` defaults its claims).
    pub fn for_feature(feature: StateFeature) -> Option<Claim> {
        Claim::ALL.iter().copied().find(|c| c.feature() == Some(feature))
    }

    /// Parses a spec name.
    pub fn parse(name: &str) -> Option<Claim> {
        Claim::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a case applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// The component claims this.
    Claimed(Claim),
    /// The component does not claim this (negative feature checks).
    NotClaimed(Claim),
    /// The driver can do this.
    Driver(DriverCapability),
}

/// What a driver can express; the Dapr HTTP API cannot express everything the contract can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverCapability {
    /// Values that are not JSON (raw bytes).
    BinaryValues,
    /// Bulk failures reported per key (state) or per entry (pub/sub).
    KeyedBulkErrors,
    /// State bulk writes, in particular, report their failures per key (the pluggable
    /// protocol's `BulkSet` and `BulkDelete` answer one status for the whole call).
    KeyedStateBulkErrors,
    /// Delete-with-prefix is callable.
    DeleteWithPrefix,
    /// Keys-like is callable.
    KeysLike,
    /// Optional operations answer `Unsupported` when not implemented.
    TypedUnsupported,
    /// Several subscriptions to one topic, in consumer groups of the case's choosing.
    ConsumerGroups,
    /// A subscription can be closed while the component runs.
    Unsubscribe,
    /// Deliveries arrive as a sidecar's CloudEvents, envelope and all.
    CloudEvents,
    /// The app answers deliveries with HTTP status codes (404, 500).
    AppStatusCodes,
    /// A binding's list of operations can be read (the Dapr HTTP API has no call for it).
    ListsOperations,
    /// The network to the backend can be faulted and the backend restarted.
    Faults,
    /// A subscription's dead-letter topic reaches the component (the pluggable protocol has
    /// none: daprd dead-letters itself).
    DeadLetterTopics,
}

/// How cases reach the component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    /// `in-process` or `http`.
    pub name: String,
    /// What it can express.
    pub capabilities: BTreeSet<DriverCapability>,
}

impl DriverInfo {
    /// The in-process driver: the component's trait object, everything expressible.
    pub fn in_process() -> Self {
        Self {
            name: "in-process".into(),
            capabilities: [
                DriverCapability::BinaryValues,
                DriverCapability::KeyedBulkErrors,
                DriverCapability::KeyedStateBulkErrors,
                DriverCapability::DeleteWithPrefix,
                DriverCapability::KeysLike,
                DriverCapability::TypedUnsupported,
                DriverCapability::ConsumerGroups,
                DriverCapability::Unsubscribe,
                DriverCapability::ListsOperations,
                DriverCapability::DeadLetterTopics,
            ]
            .into(),
        }
    }

    /// The faults driver: in-process, through fault proxies, with control over the backends.
    pub fn faults() -> Self {
        let mut info = Self::in_process();
        info.name = "faults".into();
        info.capabilities.insert(DriverCapability::Faults);
        info
    }

    /// The gRPC driver of pluggable components: the protocol carries what the contract does,
    /// except delete-with-prefix and keys-like, which it has no calls for, per-key failures
    /// of state bulk writes, and dead-letter topics, which daprd handles itself.
    pub fn grpc() -> Self {
        let mut info = Self::in_process();
        info.name = "grpc".into();
        info.capabilities.remove(&DriverCapability::DeleteWithPrefix);
        info.capabilities.remove(&DriverCapability::KeysLike);
        info.capabilities.remove(&DriverCapability::DeadLetterTopics);
        info.capabilities.remove(&DriverCapability::KeyedStateBulkErrors);
        info
    }

    /// True when the driver can do `capability`.
    pub fn can(&self, capability: DriverCapability) -> bool {
        self.capabilities.contains(&capability)
    }
}

/// Per-component settings from the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// A syntactically valid ETag that is never current (Dapr's `badEtag`).
    #[serde(default = "default_bad_etag")]
    pub bad_etag: String,
    /// Extra seconds a TTL may overrun before the item must be gone.
    #[serde(default = "default_ttl_slack")]
    pub ttl_slack_seconds: u64,
    /// Pub/sub: the component's configured delivery attempts before dead-lettering; when
    /// given, a message always retried must be delivered exactly this often.
    #[serde(default)]
    pub max_delivery_attempts: Option<u32>,
    /// Pub/sub and input bindings: how long sent messages may take to arrive.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout_seconds: u64,
    /// Output bindings: the request metadata naming the item (`key` for Redis, `fileName`
    /// for local storage).
    #[serde(default = "default_binding_key")]
    pub binding_key: String,
    /// Fault scenarios: how long a component may take to work again after a fault ends.
    #[serde(default = "default_recovery_budget")]
    pub recovery_budget_seconds: u64,
    /// Fault scenarios: how long one call may take to fail while the network is broken.
    #[serde(default = "default_fault_call_timeout")]
    pub fault_call_timeout_seconds: u64,
    /// Locks: how far from its expiry a lock may be freed, in milliseconds.
    #[serde(default = "default_lock_tolerance")]
    pub lock_expiry_tolerance_ms: u64,
}

fn default_recovery_budget() -> u64 {
    15
}

fn default_fault_call_timeout() -> u64 {
    30
}

fn default_lock_tolerance() -> u64 {
    200
}

fn default_binding_key() -> String {
    "key".into()
}

fn default_delivery_timeout() -> u64 {
    30
}

fn default_bad_etag() -> String {
    "bad-etag".into()
}

fn default_ttl_slack() -> u64 {
    1
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bad_etag: default_bad_etag(),
            ttl_slack_seconds: default_ttl_slack(),
            max_delivery_attempts: None,
            delivery_timeout_seconds: default_delivery_timeout(),
            binding_key: default_binding_key(),
            lock_expiry_tolerance_ms: default_lock_tolerance(),
            recovery_budget_seconds: default_recovery_budget(),
            fault_call_timeout_seconds: default_fault_call_timeout(),
        }
    }
}

/// What a case body runs against.
#[derive(Clone)]
pub struct Ctx {
    /// The state store, through the driver ([`Absent`] when the target is not a state store).
    pub state: Arc<dyn StateStore>,
    /// The lock store, through the driver ([`Absent`] when the target is not a lock store).
    pub lock: Arc<dyn LockStore>,
    /// The pub/sub component, through the driver ([`Absent`] when the target is not one).
    pub pubsub: Arc<dyn PubSub>,
    /// The secret store, through the driver ([`Absent`] when the target is not one).
    pub secrets: Arc<dyn SecretStore>,
    /// The configuration store, through the driver ([`Absent`] when the target is not one).
    pub configuration: Arc<dyn ConfigurationStore>,
    /// Writes configuration items behind the store's back, when the component has a way to.
    pub config_updater: Option<Arc<dyn ConfigurationUpdater>>,
    /// The output binding, through the driver (`None` when the target has no output side).
    pub binding: Option<Arc<dyn contract::OutputBinding>>,
    /// Events of the input binding, through the driver (`None` when it has no input side).
    pub binding_inbox: Option<Arc<crate::bindings::BindingInbox>>,
    /// Calls app methods through the sidecar (service-invocation targets only).
    pub invoker: Option<Arc<dyn crate::invocation::Invoker>>,
    /// Faults the network to the backend and restarts it (the faults driver only).
    pub faults: Option<Arc<dyn crate::faults::FaultControl>>,
    /// The topics this trial may use.
    pub topics: TopicSet,
    /// The driver.
    pub driver: DriverInfo,
    /// The component's claims.
    pub claims: BTreeSet<Claim>,
    /// The component's settings.
    pub settings: Settings,
    /// The component's name (as a sidecar knows it).
    pub component: String,
    /// A prefix unique to this trial, so parallel and repeated runs never share keys.
    pub namespace: String,
    /// What the case leaves for the report (a history, a checker's verdict).
    pub evidence: Evidence,
}

/// Evidence a case attaches to its record: JSON the report keeps beside the verdict.
#[derive(Debug, Clone, Default)]
pub struct Evidence(Arc<std::sync::Mutex<Option<serde_json::Value>>>);

impl Evidence {
    /// Replaces the evidence.
    pub fn set(&self, value: serde_json::Value) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
    }

    /// The evidence, if any was attached.
    pub fn take(&self) -> Option<serde_json::Value> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("driver", &self.driver.name).field("namespace", &self.namespace).finish()
    }
}

impl Ctx {
    /// A key private to this trial.
    pub fn key(&self, name: &str) -> String {
        format!("{}-{name}", self.namespace)
    }
}

/// Stands in for the blocks a target does not serve; every call says so. The planner only
/// runs a case on targets of its block, so reaching this is a planning bug, reported as a
/// failure rather than a panic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Absent;

fn absent(block: &str) -> contract::Error {
    contract::Error::unsupported(format!("{block} (this target does not serve that building block)"))
}

#[async_trait]
impl StateStore for Absent {
    fn features(&self) -> FeatureSet<StateFeature> {
        FeatureSet::new()
    }

    async fn get(&self, _: GetRequest) -> contract::Result<Option<Item>> {
        Err(absent("state"))
    }

    async fn set(&self, _: SetRequest) -> contract::Result<()> {
        Err(absent("state"))
    }

    async fn delete(&self, _: DeleteRequest) -> contract::Result<()> {
        Err(absent("state"))
    }
}

#[async_trait]
impl LockStore for Absent {
    async fn try_lock(&self, _: TryLockRequest) -> contract::Result<bool> {
        Err(absent("lock"))
    }

    async fn unlock(&self, _: UnlockRequest) -> contract::Result<UnlockStatus> {
        Err(absent("lock"))
    }
}

#[async_trait]
impl PubSub for Absent {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        FeatureSet::new()
    }

    async fn publish(&self, _: PublishRequest) -> contract::Result<()> {
        Err(absent("pubsub"))
    }

    async fn subscribe(&self, _: SubscribeRequest, _: Handler) -> contract::Result<Subscription> {
        Err(absent("pubsub"))
    }
}

#[async_trait]
impl SecretStore for Absent {
    fn features(&self) -> FeatureSet<SecretFeature> {
        FeatureSet::new()
    }

    async fn get(&self, _: GetSecretRequest) -> contract::Result<SecretData> {
        Err(absent("secrets"))
    }

    async fn bulk_get(
        &self,
        _: contract::Metadata,
    ) -> contract::Result<std::collections::BTreeMap<String, SecretData>> {
        Err(absent("secrets"))
    }
}

#[async_trait]
impl ConfigurationStore for Absent {
    async fn get(
        &self,
        _: GetConfigurationRequest,
    ) -> contract::Result<std::collections::BTreeMap<String, ConfigurationItem>> {
        Err(absent("configuration"))
    }

    async fn subscribe(&self, _: SubscribeConfigurationRequest) -> contract::Result<ConfigurationSubscription> {
        Err(absent("configuration"))
    }

    async fn unsubscribe(&self, _: &str) -> contract::Result<()> {
        Err(absent("configuration"))
    }
}

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "kebab-case")]
pub enum Finding {
    /// The rule does not hold.
    Fail(String),
    /// The case could not decide (a timing it could not control, a driver limit found at run time).
    Inconclusive(String),
    /// The case does not apply.
    Skip(String),
}

/// What a case body returns.
pub type CaseResult = Result<(), Finding>;

/// A case body.
pub type Body = fn(Ctx) -> BoxFuture<'static, CaseResult>;

/// One normative rule, as data, with its check.
#[derive(Clone)]
pub struct Case {
    /// The stable id, e.g. `state.etag.stale-write-rejected`.
    pub id: &'static str,
    /// The building block.
    pub block: Block,
    /// The rule, as one MUST sentence.
    pub rule: &'static str,
    /// Where the rule comes from (`S26`, or `certify` for rules beyond Dapr's suite).
    pub source: &'static str,
    /// When the case applies.
    pub requires: &'static [Requirement],
    /// Tags such as `ttl`, `concurrency`, `latency`.
    pub tags: &'static [&'static str],
    /// The longest the body may run.
    pub timeout: Duration,
    /// The check.
    pub body: Body,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case").field("id", &self.id).field("rule", &self.rule).finish()
    }
}

impl Case {
    /// Why the case does not apply to a component with `claims` under `driver`, if it does not.
    pub fn skip_reason(&self, claims: &BTreeSet<Claim>, driver: &DriverInfo) -> Option<String> {
        self.requires.iter().find_map(|r| match r {
            Requirement::Claimed(c) if !claims.contains(c) => Some(format!("the component does not claim `{c}`")),
            Requirement::NotClaimed(c) if claims.contains(c) => Some(format!("the component claims `{c}`")),
            Requirement::Driver(cap) if !driver.can(*cap) => Some(format!(
                "the {} driver cannot express this ({})",
                driver.name,
                serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
            )),
            _ => None,
        })
    }

    /// The claims the case is about, for the feature matrix.
    pub fn claims(&self) -> Vec<Claim> {
        self.requires
            .iter()
            .filter_map(|r| match r {
                Requirement::Claimed(c) | Requirement::NotClaimed(c) => Some(*c),
                Requirement::Driver(_) => None,
            })
            .collect()
    }
}

/// Fails the case with a formatted reason unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::case::Finding::Fail(format!($($fmt)+)));
        }
    };
}

/// Fails the case unless two values are equal, showing expected and seen.
#[macro_export]
macro_rules! ensure_eq {
    ($seen:expr, $expected:expr, $($fmt:tt)+) => {{
        let (seen, expected) = (&$seen, &$expected);
        if seen != expected {
            return Err($crate::case::Finding::Fail(format!("{}: expected {:?}, saw {:?}", format!($($fmt)+), expected, seen)));
        }
    }};
}

/// Turns an unexpected error of a call into a failure naming the call.
pub trait Must<T> {
    /// The value, or a failure saying which call failed and how.
    fn must(self, what: &str) -> Result<T, Finding>;
}

impl<T> Must<T> for contract::Result<T> {
    fn must(self, what: &str) -> Result<T, Finding> {
        self.map_err(|e| Finding::Fail(format!("{what} failed: {e}")))
    }
}
