//! The in-process build of a spec: each component built alone from the registry (with the
//! spec's secret stores, for `secretKeyRef`s), so one that cannot start fails only its own
//! cases; its handles for the in-process driver (the gRPC driver, for a pluggable component);
//! and the instances the reference runtime will serve for the HTTP driver.

use std::collections::BTreeMap;
use std::sync::Arc;

use contract::{Component, ComponentManifest, Components, Parts, Registry, SystemClock};

use super::SetupError;
use super::provision::Backends;
use crate::blocks::Catalogue;
use crate::driver::DriverKind;
use crate::plan::{Blocked, Target};
use crate::server_runtime::ServerRuntime;
use crate::spec::{Spec, SpecEntry};

/// What the build gives each component, by driver, and what it could not build.
pub(super) struct Built {
    registry: Registry,
    secret_stores: Vec<ComponentManifest>,
    /// Handles by component name and driver.
    pub(super) handles: BTreeMap<(String, DriverKind), Parts>,
    /// Why a component's cases cannot run, by name.
    pub(super) blocked: BTreeMap<String, Blocked>,
    /// The instances the reference runtime serves.
    pub(super) served: Components,
    /// The reference runtime's own tokio runtime, where its instances are built, so that their
    /// connections and tasks live with the sidecar, as in a sidecar process; `None` when no
    /// component names a sidecar driver.
    pub(super) sidecar_runtime: Option<ServerRuntime>,
}

impl Built {
    /// Builds `manifest` alone, with the spec's secret stores.
    pub(super) async fn build(&self, manifest: ComponentManifest) -> Result<Component, contract::LoadError> {
        build_alone(&self.registry, &self.secret_stores, manifest).await
    }

    /// [`Built::build`] on `runtime`, the reference runtime's own, for the instance it serves.
    async fn build_on(
        &self,
        runtime: &ServerRuntime,
        manifest: ComponentManifest,
    ) -> Result<Component, contract::LoadError> {
        let (registry, secret_stores, name) =
            (self.registry.clone(), self.secret_stores.clone(), manifest.name.clone());
        let building = runtime.spawn(async move { build_alone(&registry, &secret_stores, manifest).await });
        building.await.unwrap_or_else(|e| Err(init_error(&name, format!("building it panicked: {e}"))))
    }

    /// Blocks component `name` for `reason` (its cases fail with it).
    pub(super) fn fail(&mut self, name: &str, reason: String) {
        self.blocked.insert(name.to_owned(), Blocked::SetupFailed(reason));
    }

    /// Every component × driver of `spec`, with its handles.
    pub(super) fn targets(&mut self, spec: &Spec, catalogue: &Catalogue) -> Vec<Target> {
        let mut targets = crate::plan::unbuilt_targets(spec, catalogue);
        for target in &mut targets {
            target.blocked = self.blocked.get(&target.component).cloned();
            target.handles = self.handles.remove(&(target.component.clone(), target.driver)).unwrap_or_default();
        }
        targets
    }
}

/// Builds `manifest` alone, with `secret_stores`.
async fn build_alone(
    registry: &Registry,
    secret_stores: &[ComponentManifest],
    manifest: ComponentManifest,
) -> Result<Component, contract::LoadError> {
    let mut set: Vec<ComponentManifest> = secret_stores.iter().filter(|s| s.name != manifest.name).cloned().collect();
    let name = manifest.name.clone();
    set.push(manifest);
    let mut built = registry.build_all(&set, Arc::new(SystemClock)).await?;
    // `build_all` fails rather than leave the component out, unless it may be skipped.
    built
        .by_name
        .remove(&name)
        .map(|c| c.component)
        .ok_or_else(|| init_error(&name, format!("`{name}` was skipped (ignoreErrors)")))
}

fn init_error(name: &str, cause: String) -> contract::LoadError {
    contract::LoadError::Init {
        path: Default::default(),
        component: name.to_owned(),
        type_name: String::new(),
        cause: contract::Error::Backend(cause),
    }
}

/// Builds every component of `spec` whose backends are up.
pub(super) async fn build(
    spec: &Spec,
    registry: &Registry,
    catalogue: &Catalogue,
    backends: &Backends,
) -> Result<Built, SetupError> {
    let mut built = Built {
        registry: registry.clone(),
        secret_stores: Vec::new(),
        handles: BTreeMap::new(),
        blocked: BTreeMap::new(),
        served: Components::default(),
        sidecar_runtime: None,
    };
    for entry in &spec.entries {
        if catalogue.block_of(&entry.manifest.type_name).is_none() {
            return Err(SetupError::UnknownBlock {
                component: entry.manifest.name.clone(),
                type_name: entry.manifest.type_name.clone(),
            });
        }
        if let Some(blocked) = backends.blocked(&entry.manifest.name) {
            built.blocked.insert(entry.manifest.name.clone(), blocked);
        }
    }
    built.secret_stores = spec
        .entries
        .iter()
        .filter(|e| contract::Block::SECRET_STORES.owns(&e.manifest.type_name))
        .filter(|e| !built.blocked.contains_key(&e.manifest.name))
        .map(|e| backends.substituted(&e.manifest))
        .collect();
    // Pluggable components: each socket's blocks become component types, as daprd
    // discovers them; a socket that does not answer fails its components' cases.
    for entry in &spec.entries {
        let Some(socket) = &entry.pluggable else { continue };
        if let Err(e) = pluggable::discovery::register_socket(&mut built.registry, socket).await {
            built.fail(&entry.manifest.name, e.to_string());
        }
    }
    if spec.entries.iter().any(|e| e.drivers.iter().any(|d| d.through_sidecar())) {
        built.sidecar_runtime = Some(ServerRuntime::new("certify-sidecar").map_err(SetupError::Sidecar)?);
    }
    for entry in &spec.entries {
        if !built.blocked.contains_key(&entry.manifest.name) {
            build_one(entry, catalogue, backends, &mut built).await?;
        }
    }
    Ok(built)
}

/// Builds one component: its own instance (handles for its in-process or pluggable driver) and,
/// when it is certified through a sidecar (HTTP or gRPC), the instance the reference runtime serves.
async fn build_one(
    entry: &SpecEntry,
    catalogue: &Catalogue,
    backends: &Backends,
    built: &mut Built,
) -> Result<(), SetupError> {
    let name = &entry.manifest.name;
    let manifest = backends.substituted(&entry.manifest);
    // A pluggable component's own driver is its socket; its instance has a name of its own, so it
    // does not share the sidecar's (each `Init` makes one per name).
    let (driver, own) = match entry.pluggable {
        Some(_) => (DriverKind::Pluggable, ComponentManifest { name: format!("{name}-grpc"), ..manifest.clone() }),
        None => (DriverKind::InProcess, manifest.clone()),
    };
    let component = match built.build(own).await {
        Ok(c) => c,
        // A component that is configured right but cannot start fails its own cases; a wrong
        // type, field or value is a spec mistake and stops the run.
        Err(e @ contract::LoadError::Init { .. }) => {
            built.fail(name, format!("the component could not start: {e}"));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let Some(block) = catalogue.block_of(&entry.manifest.type_name) else { return Ok(()) };
    match block.local(&component, entry.drivers.contains(&driver)).await {
        Ok(handles) => {
            built.handles.insert((name.clone(), driver), handles);
        }
        Err(reason) => {
            built.fail(name, reason);
            return Ok(());
        }
    }
    let Some(runtime) = built.sidecar_runtime.as_ref().filter(|_| entry.drivers.iter().any(|d| d.through_sidecar()))
    else {
        return Ok(());
    };
    // The reference runtime serves its own instance, as a sidecar would.
    match built.build_on(runtime, manifest.clone()).await {
        Ok(served) => {
            let loaded = contract::registry::LoadedComponent { manifest, component: served };
            built.served.by_name.insert(name.clone(), loaded);
        }
        Err(e) => built.fail(name, format!("the component could not start: {e}")),
    }
    Ok(())
}
