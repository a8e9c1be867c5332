//! The drivers, and what each can express, in one table. A case that needs something its
//! driver lacks is skipped by the planner with the reason.

use serde::Deserialize;
use suites::DriverCapability::{self, *};
use suites::DriverInfo;

/// How cases reach a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    /// The component's trait object, in this process.
    InProcess,
    /// A Dapr-compatible sidecar's HTTP API.
    Http,
    /// The component in this process, connected to its backends through fault proxies, with
    /// control over the backends: runs only the cases tagged `faults`, after every other
    /// trial, one at a time.
    Faults,
    /// A pluggable component's gRPC API on its Unix socket (`--pluggable`, or a spec
    /// component with `pluggable: {socket}`).
    Pluggable,
    /// A Dapr-compatible sidecar's gRPC API (`dapr.proto.runtime.v1.Dapr`).
    Grpc,
}

/// The in-process driver is the component's own trait object: everything is expressible but
/// what only a sidecar's app sees (CloudEvents, status codes).
const IN_PROCESS: &[DriverCapability] = &[
    BinaryValues,
    KeyedBulkErrors,
    KeyedStateBulkErrors,
    DeleteWithPrefix,
    KeysLike,
    TypedUnsupported,
    ConsumerGroups,
    Unsubscribe,
    ListsOperations,
    DeadLetterTopics,
    DeliveryAttempts,
    DeliveryMetadata,
];

/// What each driver can express.
const CAPABILITIES: &[(DriverKind, &[DriverCapability])] = &[
    (DriverKind::InProcess, IN_PROCESS),
    // The faults driver is the in-process driver through fault proxies.
    (DriverKind::Faults, IN_PROCESS),
    // The Dapr HTTP API carries JSON values only, one status per bulk call, no
    // delete-with-prefix or keys-like, one consumer group per app, no unsubscribe, no
    // operation listing; but the app sees CloudEvents and answers with status codes.
    (DriverKind::Http, &[CloudEvents, AppStatusCodes, DeadLetterTopics, DeliveryMetadata, HttpApi, TraceContext]),
    // The Dapr gRPC API carries bytes, but like HTTP one status per bulk write, no
    // delete-with-prefix, keys-like or operation listing. Deliveries come on streaming
    // subscriptions: CloudEvents as the stream carries them, closable, but settled with
    // SUCCESS/RETRY/DROP rather than status codes, and without the component's attempt count.
    (DriverKind::Grpc, &[BinaryValues, CloudEvents, DeadLetterTopics, Unsubscribe, TraceContext]),
    // The pluggable protocol carries what the contract does, except delete-with-prefix and
    // keys-like (no calls for them), per-key failures of state bulk writes, and dead-letter
    // topics (daprd dead-letters itself).
    (
        DriverKind::Pluggable,
        &[
            BinaryValues,
            KeyedBulkErrors,
            TypedUnsupported,
            ConsumerGroups,
            Unsubscribe,
            ListsOperations,
            DeliveryMetadata,
        ],
    ),
];

impl DriverKind {
    /// The driver's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::InProcess => "in-process",
            DriverKind::Http => "http",
            DriverKind::Faults => "faults",
            DriverKind::Pluggable => "pluggable",
            DriverKind::Grpc => "grpc",
        }
    }

    /// True for the drivers that reach components through a Dapr sidecar's API.
    pub fn through_sidecar(self) -> bool {
        matches!(self, DriverKind::Http | DriverKind::Grpc)
    }

    /// Its description: name and what it can express.
    pub fn info(self) -> DriverInfo {
        let capabilities = CAPABILITIES.iter().find(|(kind, _)| *kind == self).map_or(&[][..], |(_, c)| c);
        DriverInfo::new(self.as_str(), capabilities)
    }

    /// The name of the trial of `case_id` against `component` through this driver:
    /// `component::case` in-process, `component@http::case` otherwise.
    pub fn trial_name(self, component: &str, case_id: &str) -> String {
        match self {
            DriverKind::InProcess => format!("{component}::{case_id}"),
            other => format!("{component}@{}::{case_id}", other.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_driver_declares_what_it_cannot_express() {
        let info = DriverKind::Http.info();
        for cap in [BinaryValues, KeyedBulkErrors, KeyedStateBulkErrors, DeleteWithPrefix, KeysLike] {
            assert!(!info.can(cap), "{cap:?}");
        }
    }

    #[test]
    fn every_driver_has_a_row() {
        for kind in
            [DriverKind::InProcess, DriverKind::Http, DriverKind::Faults, DriverKind::Pluggable, DriverKind::Grpc]
        {
            assert!(CAPABILITIES.iter().any(|(k, _)| *k == kind), "{kind:?}");
        }
    }
}
