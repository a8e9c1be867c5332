//! The backends a spec needs, from its components' `${{kind.field}}` placeholders: each kind
//! provisioned once (a container, a local process, or a given URL); a backend that cannot be
//! had blocks only the components that need it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use contract::ComponentManifest;
use fixtures::{Backend, BackendError, BackendKind};

use super::placeholders::{backend_values, placeholders, substitute};
use super::{SessionOptions, SetupError};
use crate::plan::Blocked;
use crate::spec::Spec;

/// The run's backends, and which components need which.
pub(super) struct Backends {
    by_kind: BTreeMap<BackendKind, Result<Arc<Backend>, BackendError>>,
    needs: BTreeMap<String, BTreeSet<BackendKind>>,
}

impl Backends {
    /// Why component `name` cannot be built, if a backend it needs is missing or broken.
    pub(super) fn blocked(&self, name: &str) -> Option<Blocked> {
        self.needs.get(name)?.iter().find_map(|kind| match self.by_kind.get(kind)? {
            Ok(_) => None,
            Err(e @ BackendError::Unavailable { .. }) => Some(Blocked::Unavailable(e.to_string())),
            Err(e @ BackendError::NeverReady { .. }) => Some(Blocked::SetupFailed(e.to_string())),
        })
    }

    /// `manifest` with its placeholders filled in.
    pub(super) fn substituted(&self, manifest: &ComponentManifest) -> ComponentManifest {
        substitute(manifest, &backend_values(&self.by_kind))
    }

    /// The backends component `name` uses.
    pub(super) fn of(&self, name: &str) -> Vec<Arc<Backend>> {
        let kinds = self.needs.get(name).into_iter().flatten();
        kinds.filter_map(|kind| self.by_kind.get(kind)?.as_ref().ok().cloned()).collect()
    }

    /// The backends that are up.
    pub(super) fn started(self) -> Vec<Arc<Backend>> {
        self.by_kind.into_values().filter_map(Result::ok).collect()
    }
}

/// Provisions every backend `spec`'s components name; with `require_backends`, a missing one
/// is an error instead of skipped cases.
pub(super) async fn backends(spec: &Spec, options: &SessionOptions) -> Result<Backends, SetupError> {
    let mut needs: BTreeMap<String, BTreeSet<BackendKind>> = BTreeMap::new();
    for entry in &spec.entries {
        let kinds = placeholders(&entry.manifest)?;
        needs.insert(entry.manifest.name.clone(), kinds.into_iter().map(|(k, _)| k).collect());
    }
    let wanted: BTreeSet<BackendKind> = needs.values().flatten().copied().collect();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let fixture_options =
        fixtures::Options { ready_timeout: options.backend_timeout, run_id, settings: spec.backends.settings() };
    let mut by_kind = BTreeMap::new();
    for kind in wanted {
        let provided = fixtures::provision(kind, options.provider, &fixture_options).await.map(Arc::new);
        if let Err(e @ BackendError::Unavailable { .. }) = &provided
            && options.require_backends
        {
            return Err(SetupError::Backend(e.clone()));
        }
        by_kind.insert(kind, provided);
    }
    Ok(Backends { by_kind, needs })
}
