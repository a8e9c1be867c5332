//! What a driver can express. The drivers themselves, and which of these each has, are the
//! harness's (one table next to the drivers); a case names what it needs as a
//! [`Requirement::Driver`](crate::Requirement), and the planner skips it with the reason where
//! the driver lacks it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

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
    /// A delivery's attempt count is the component's own (a sidecar's HTTP API and the
    /// pluggable protocol carry none: over them the count would be certify's).
    DeliveryAttempts,
    /// A subscription's dead-letter topic reaches the component (the pluggable protocol has
    /// none: daprd dead-letters itself).
    DeadLetterTopics,
    /// A delivery carries the publisher's metadata (an HTTP app gets it as headers; a gRPC
    /// streaming subscription's event has no field for it, in daprd as here).
    DeliveryMetadata,
    /// The case speaks the sidecar's HTTP API itself: requests as written, and the status
    /// codes, error codes and headers of the answers.
    HttpApi,
    /// Calls carry the case's trace context ([`crate::observability::traced`]) on the wire, as
    /// a sidecar's API does (HTTP headers, gRPC metadata).
    TraceContext,
}

/// How cases reach the component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    /// `in-process`, `http`, `grpc`, `pluggable` or `faults`.
    pub name: String,
    /// What it can express.
    pub capabilities: BTreeSet<DriverCapability>,
}

impl DriverInfo {
    /// A driver named `name` that can express `capabilities`.
    pub fn new(name: &str, capabilities: &[DriverCapability]) -> Self {
        Self { name: name.to_owned(), capabilities: capabilities.iter().copied().collect() }
    }

    /// True when the driver can do `capability`.
    pub fn can(&self, capability: DriverCapability) -> bool {
        self.capabilities.contains(&capability)
    }
}
