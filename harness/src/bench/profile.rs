//! What `certify bench` measures and how: the operations, and the bench profile a spec gives
//! (load, payload, operations). Knows nothing else of the harness, so the spec can name it.

use std::time::Duration;

use super::load::{Load, Mode};

/// An operation the load generator can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Read one key.
    StateGet,
    /// Write one key.
    StateSet,
    /// Read ten keys at once.
    StateBulkGet,
    /// A transaction of two upserts.
    StateTransaction,
    /// Take a lock and release it.
    LockUnlock,
    /// Publish a message and wait until the subscriber has it.
    PublishToDelivery,
    /// Call an actor's method (its turn included) and take its answer.
    ActorCall,
    /// Start a workflow of three chained activities and wait for it to complete.
    WorkflowChain,
}

impl Operation {
    /// Every operation.
    pub const ALL: &'static [Operation] = &[
        Operation::StateGet,
        Operation::StateSet,
        Operation::StateBulkGet,
        Operation::StateTransaction,
        Operation::LockUnlock,
        Operation::PublishToDelivery,
        Operation::ActorCall,
        Operation::WorkflowChain,
    ];

    /// Its name in specs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Operation::StateGet => "state.get",
            Operation::StateSet => "state.set",
            Operation::StateBulkGet => "state.bulk-get",
            Operation::StateTransaction => "state.transaction",
            Operation::LockUnlock => "lock.lock-unlock",
            Operation::PublishToDelivery => "pubsub.publish-to-delivery",
            Operation::ActorCall => "actor.call",
            Operation::WorkflowChain => "workflow.chain-of-3",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|o| o.name() == name)
    }
}

/// How benchmarks run (the spec's `bench` section).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchProfile {
    /// The load.
    pub load: Load,
    /// Bytes per value written.
    pub payload_bytes: usize,
    /// The operations to measure.
    pub operations: Vec<Operation>,
}

impl Default for BenchProfile {
    fn default() -> Self {
        Self {
            load: Load {
                mode: Mode::FixedRate(1000.0),
                concurrency: 8,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(3),
            },
            payload_bytes: 1024,
            operations: Operation::ALL.to_vec(),
        }
    }
}
