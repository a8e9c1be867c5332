//! The faults driver: another instance of each component certified under faults, connected to
//! its backends through a fault proxy per backend (its placeholders point at the proxies), and
//! the control scenarios use: network faults on the proxies, restarts of the backends behind.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use fixtures::{Backend, BackendKind, Fault, FaultProxy};
use suites::faults::{FaultControl, FaultError, NetworkFault};

use super::in_process::Built;
use super::placeholders::substitute;
use super::provision::Backends;
use crate::blocks::Catalogue;
use crate::driver::DriverKind;
use crate::spec::Spec;

/// Builds the faults driver's instance of every component that names it.
pub(super) async fn build(spec: &Spec, catalogue: &Catalogue, backends: &Backends, built: &mut Built) {
    for entry in spec.entries.iter().filter(|e| e.drivers.contains(&DriverKind::Faults)) {
        let name = &entry.manifest.name;
        if built.blocked.contains_key(name) {
            continue;
        }
        match proxied(entry, catalogue, backends, built).await {
            Ok(handles) => {
                built.handles.insert((name.clone(), DriverKind::Faults), handles);
            }
            Err(reason) => built.fail(name, reason),
        }
    }
}

/// The component through fault proxies: its handles, with the control of its network and
/// backends.
async fn proxied(
    entry: &crate::spec::SpecEntry,
    catalogue: &Catalogue,
    backends: &Backends,
    built: &Built,
) -> Result<contract::Parts, String> {
    let mut proxies = Vec::new();
    let mut values = BTreeMap::new();
    let used = backends.of(&entry.manifest.name);
    for backend in &used {
        let proxy = FaultProxy::start(&backend.endpoint.host).await.map_err(|e| format!("no fault proxy: {e}"))?;
        let via = proxy.addr().to_string();
        values.insert((backend.kind, "host"), via.clone());
        values.insert((backend.kind, "url"), backend.endpoint.url.replace(&backend.endpoint.host, &via));
        proxies.push((backend.kind, proxy));
    }
    let component = built
        .build(substitute(&entry.manifest, &values))
        .await
        .map_err(|e| format!("the component could not start through its fault proxy: {e}"))?;
    let block = catalogue.block_of(&entry.manifest.type_name).ok_or("no driver for its block")?;
    let handles = block.local(&component, true).await.map_err(|e| format!("through its fault proxy: {e}"))?;
    let control: Arc<dyn FaultControl> = Arc::new(ProxiedBackends { proxies, backends: used });
    Ok(handles.with(control))
}

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
