//! A runtime of their own for the servers certify starts in-process: the reference sidecar and
//! the bench's loopback floors.
//!
//! A real sidecar is another process, so every call to it crosses threads. Served on the
//! client's own runtime, one worker could carry a whole round trip (client, server and client
//! again) without a thread wake, which flatters whichever server awaits least rather than
//! measuring what it costs; the floors would not be floors of the sidecar's path either. On a
//! runtime of its own, a server is reached as a sidecar process would be.

use std::future::Future;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// A multi-threaded tokio runtime (one worker per core, as the `reference-runtime` binary
/// has) that servers are spawned on; shut down without waiting when dropped.
#[derive(Debug)]
pub struct ServerRuntime {
    handle: Handle,
    // Taken only by `drop`.
    runtime: Option<Runtime>,
}

impl ServerRuntime {
    /// Starts the runtime's workers, named `name`.
    pub fn new(name: &str) -> std::io::Result<ServerRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread().thread_name(name).enable_all().build()?;
        Ok(ServerRuntime { handle: runtime.handle().clone(), runtime: Some(runtime) })
    }

    /// Runs `future` on the runtime: what it binds, accepts and spawns lives there.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

impl Drop for ServerRuntime {
    fn drop(&mut self) {
        // Dropped from async code (a session closing): blocking here to join the workers would
        // panic, and the servers were asked to stop already.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
