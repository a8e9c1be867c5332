//! Operation histories: every operation's client, key, input, output and invoke and
//! completion times. A timeout or transport error is recorded as indeterminate: the operation
//! may or may not have taken effect, and checkers treat it so.

use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What a client asked of one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Input {
    /// Read the key.
    Read,
    /// Write a value without an ETag (last write wins).
    Write {
        /// The value, unique in the history.
        value: String,
    },
    /// Write a value if the ETag is current.
    CasWrite {
        /// The ETag the write is conditional on.
        etag: String,
        /// The value, unique in the history.
        value: String,
    },
    /// Create the key if it does not exist (first-write without an ETag).
    FirstWrite {
        /// The value, unique in the history.
        value: String,
    },
    /// Delete the key.
    Delete,
    /// Delete the key if the ETag is current.
    CasDelete {
        /// The ETag the delete is conditional on.
        etag: String,
    },
}

/// What the store answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Output {
    /// A read found the key with this value and ETag.
    Found {
        /// The value read.
        value: String,
        /// Its ETag.
        etag: String,
    },
    /// A read found no item.
    Absent,
    /// A write or delete succeeded.
    Ok,
    /// A conditional write or delete was refused (ETag mismatch, or the key existed).
    Refused,
    /// No answer could be trusted: the operation may or may not have happened.
    Indeterminate {
        /// The error seen.
        reason: String,
    },
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The client that issued it; each client is sequential.
    pub client: usize,
    /// The key.
    pub key: String,
    /// What was asked.
    pub input: Input,
    /// What came back.
    pub output: Output,
    /// When it was invoked, in ns since the history began.
    pub invoke_ns: u64,
    /// When it completed, in ns since the history began; `None` when indeterminate.
    pub complete_ns: Option<u64>,
}

/// A history of operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The operations, in completion order.
    pub operations: Vec<Operation>,
}

/// Records operations from concurrent clients against one clock.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    operations: Mutex<Vec<Operation>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Self { start: Instant::now(), operations: Mutex::new(Vec::new()) }
    }

    /// Nanoseconds since the recorder started.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Runs `call` as one operation and records it with its output.
    pub async fn record<F>(&self, client: usize, key: &str, input: Input, call: F) -> Output
    where
        F: std::future::Future<Output = Output>,
    {
        let invoke_ns = self.now_ns();
        let output = call.await;
        let complete_ns = match output {
            Output::Indeterminate { .. } => None,
            _ => Some(self.now_ns()),
        };
        let op = Operation { client, key: key.to_owned(), input, output: output.clone(), invoke_ns, complete_ns };
        self.operations.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(op);
        output
    }

    /// The history so far.
    pub fn history(&self) -> History {
        History { operations: self.operations.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() }
    }
}
