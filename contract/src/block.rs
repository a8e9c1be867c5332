//! Building blocks, named by the prefix of `spec.type` (`state`, `pubsub`, …). A block is an
//! open name, not a closed list: a new block is a constant here (or in its own crate), and
//! everything above finds it by that name.

use std::fmt;

/// A building block: the `spec.type` prefix of its components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Block(&'static str);

impl Block {
    /// `state.*`
    pub const STATE: Block = Block("state");
    /// `pubsub.*`
    pub const PUBSUB: Block = Block("pubsub");
    /// `bindings.*`
    pub const BINDINGS: Block = Block("bindings");
    /// `secretstores.*`
    pub const SECRET_STORES: Block = Block("secretstores");
    /// `configuration.*`
    pub const CONFIGURATION: Block = Block("configuration");
    /// `lock.*`
    pub const LOCK: Block = Block("lock");
    /// Service invocation: the sidecar's app-to-app API. No component type has this prefix;
    /// it is certified black-box, with certify as the app.
    pub const INVOCATION: Block = Block("invocation");
    /// The Jobs API's scheduler: not a component either; certified black-box, with certify as
    /// the app its triggers reach.
    pub const JOBS: Block = Block("jobs");
    /// The sidecar's own trace context and metrics: no backend; certified through a sidecar.
    pub const OBSERVABILITY: Block = Block("observability");
    /// Virtual actors: the runtime's actor engine over the actor state store, with the app
    /// hosting the actors (certify, when it certifies).
    pub const ACTORS: Block = Block("actors");
    /// Workflows: the runtime's durable workflow engine over the actor state store, with a
    /// durabletask worker running the workflows (certify's, when it certifies).
    pub const WORKFLOWS: Block = Block("workflows");

    /// A block named by `prefix`.
    pub const fn new(prefix: &'static str) -> Block {
        Block(prefix)
    }

    /// The `spec.type` prefix, e.g. `state`.
    pub fn prefix(self) -> &'static str {
        self.0
    }

    /// True when `type_name` (e.g. `state.redis`) is a component type of this block.
    pub fn owns(self, type_name: &str) -> bool {
        type_name.split('.').next() == Some(self.0)
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_owns_the_types_it_prefixes() {
        assert!(Block::STATE.owns("state.redis") && Block::STATE.owns("state"));
        assert!(!Block::STATE.owns("statestore.redis") && !Block::PUBSUB.owns("state.redis"));
        assert_eq!(Block::new("toy").to_string(), "toy");
    }
}
