//! Claims: the capabilities a component claims in its spec, named like the operations of
//! Dapr's `tests.yml`.

use std::fmt;

use contract::{Block, StateFeature};
use serde::{Deserialize, Serialize};

/// A capability a component claims in its spec, named like Dapr's `tests.yml` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Pub/sub: a consumer group keeps what it has not acknowledged, and what is published
    /// while it has no subscriber, for its next subscriber (Kafka consumer groups, durable
    /// queues; not a plain in-memory bus).
    #[serde(rename = "durable-groups")]
    DurableGroups,
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
        Claim::DurableGroups,
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
            Claim::DurableGroups => "durable-groups",
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
            | Claim::DurableGroups
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
            Claim::Ttl => &[Block::STATE, Block::PUBSUB],
            Claim::Query => &[Block::STATE, Block::BINDINGS],
            Claim::Create | Claim::Get | Claim::Delete | Claim::Exec | Claim::Read => &[Block::BINDINGS],
            Claim::BulkPublish | Claim::BulkSubscribe | Claim::Ordering | Claim::DurableGroups => &[Block::PUBSUB],
            Claim::MultiKeySecrets => &[Block::SECRET_STORES],
            _ => &[Block::STATE],
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
