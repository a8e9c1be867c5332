//! The faults driver's control: the fault proxies a component's connections go through, and
//! the backends behind them.

use std::sync::Arc;

use async_trait::async_trait;
use fixtures::{Backend, BackendKind, Fault, FaultProxy};
use suites::faults::{FaultControl, FaultError, NetworkFault};

/// One component's proxies (one per backend it uses) and backends.
pub struct ProxiedBackends {
    /// The proxies, by backend.
    pub proxies: Vec<(BackendKind, FaultProxy)>,
    /// The backends (shared with every other component on them).
    pub backends: Vec<Arc<Backend>>,
}

#[async_trait]
impl FaultControl for ProxiedBackends {
    async fn network(&self, fault: Option<NetworkFault>) -> Result<(), FaultError> {
        // Kafka clients connect to the brokers the bootstrap server advertises, around a proxy
        // in front of it: a black hole is the broker frozen instead, and a cut cannot be had.
        if let Some(kafka) = self.backends.iter().find(|b| b.kind == BackendKind::Kafka) {
            let control = match fault {
                Some(NetworkFault::Cut) => {
                    return Err(FaultError::Unsupported(
                        "Kafka clients connect to the brokers the bootstrap server advertises, around a proxy in front of it, so their connections cannot be cut".into(),
                    ));
                }
                Some(NetworkFault::BlackHole) => kafka.pause().await,
                None => kafka.resume().await,
            };
            return control.map_err(|e| FaultError::Failed(e.to_string()));
        }
        let fault = match fault {
            None => Fault::None,
            Some(NetworkFault::Cut) => Fault::Cut,
            Some(NetworkFault::BlackHole) => Fault::BlackHole,
        };
        for (_, proxy) in &self.proxies {
            proxy.set(fault);
        }
        Ok(())
    }

    async fn restart(&self) -> Result<(), FaultError> {
        if let Some(b) = self.backends.iter().find(|b| !b.persistent()) {
            return Err(FaultError::Unsupported(format!(
                "the {} backend here ({}) keeps nothing across a restart",
                b.kind, b.provider
            )));
        }
        for backend in &self.backends {
            backend.restart().await.map_err(|e| match e {
                fixtures::ControlError::Unsupported(reason) => FaultError::Unsupported(reason),
                e @ fixtures::ControlError::Failed { .. } => FaultError::Failed(e.to_string()),
            })?;
        }
        Ok(())
    }
}
