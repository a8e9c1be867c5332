//! A run's setup: the components built from the spec, the drivers that reach them, and for
//! the HTTP driver a reference runtime started on loopback (or a given sidecar). Everything it
//! starts stops when it is dropped.

use std::collections::BTreeSet;
use std::sync::Arc;

use contract::manifest::MetadataValue;
use contract::{Block, Component, ComponentManifest, Registry, SystemClock};
use reference_runtime::sidecar::{Sidecar, SidecarConfig};
use reports::{ComponentRecord, REDACTED};
use suites::Claim;

use crate::http_driver::{ConnectError, HttpLockStore, HttpStateStore};
use crate::plan::Target;
use crate::runner::Drivers;
use crate::spec::{DriverKind, Spec};

/// What is certified.
#[derive(Debug, Clone)]
pub enum Source {
    /// A spec (the built-in one, or a file).
    Spec(Spec),
    /// A running sidecar, black-box.
    Sidecar {
        /// Its base URL, e.g. `http://127.0.0.1:3500`.
        url: String,
        /// The state store to certify.
        state: String,
        /// The claims; `None` takes them from the capabilities the sidecar advertises.
        claims: Option<BTreeSet<Claim>>,
        /// `DAPR_API_TOKEN`, if the sidecar wants one.
        token: Option<String>,
    },
}

/// Setting a run up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A component could not be built.
    #[error(transparent)]
    Load(#[from] contract::LoadError),
    /// The sidecar cannot be reached or lacks the store.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The reference runtime for the HTTP driver could not start.
    #[error("cannot start the reference runtime for the http driver: {0}")]
    Sidecar(std::io::Error),
}

/// A run's targets and drivers.
pub struct Session {
    /// What the run certifies, for the report.
    pub source: String,
    /// Every component × driver.
    pub targets: Vec<Target>,
    /// The drivers.
    pub drivers: Drivers,
    /// The components, for the report.
    pub components: Vec<ComponentRecord>,
    /// How to rerun one trial: this prefix, then `--exact '<trial>'`.
    pub rerun_prefix: String,
    sidecar: Option<Arc<Sidecar>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(sidecar) = &self.sidecar {
            sidecar.shutdown();
        }
    }
}

/// True for metadata names whose values are secrets even when written inline.
fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token", "connectionstring", "apikey", "credential", "privatekey"]
        .iter()
        .any(|s| n.contains(s))
}

/// The component's metadata as reports show it: secret values replaced.
pub fn redacted_metadata(manifest: &ComponentManifest) -> std::collections::BTreeMap<String, String> {
    manifest
        .metadata
        .iter()
        .map(|m| {
            let value = match &m.value {
                MetadataValue::SecretRef { .. } => REDACTED.to_owned(),
                MetadataValue::Plain(_) if looks_secret(&m.name) => REDACTED.to_owned(),
                MetadataValue::Plain(v) => v.clone(),
            };
            (m.name.clone(), value)
        })
        .collect()
}

fn claims_from_features(features: &contract::FeatureSet<contract::StateFeature>) -> BTreeSet<Claim> {
    let mut claims: BTreeSet<Claim> = features.iter().filter_map(|f| Claim::for_feature(*f)).collect();
    // Dapr has no feature flag for first-write; stores with ETags are expected to honour it.
    if claims.contains(&Claim::Etag) {
        claims.insert(Claim::FirstWrite);
    }
    claims
}

impl Session {
    /// Builds the components and drivers of `source`.
    pub async fn open(source: Source, registry: &Registry, spec_arg: Option<&str>) -> Result<Session, SetupError> {
        match source {
            Source::Sidecar { url, state, claims, token } => {
                let store = HttpStateStore::connect(&url, &state, token).await?;
                let claims = claims.unwrap_or_else(|| claims_from_features(&contract::StateStore::features(&store)));
                let target = Target {
                    component: state.clone(),
                    type_name: "state.sidecar".into(),
                    driver: DriverKind::Http,
                    claims: claims.clone(),
                    settings: Default::default(),
                };
                let mut drivers = Drivers::default();
                drivers.state.insert((state.clone(), DriverKind::Http), Arc::new(store));
                let features = claims.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>().join(",");
                Ok(Session {
                    source: url.clone(),
                    targets: vec![target],
                    drivers,
                    components: vec![ComponentRecord {
                        name: state.clone(),
                        type_name: "state (black-box)".into(),
                        claims: claims.iter().map(|c| c.as_str().to_owned()).collect(),
                        drivers: vec!["http".into()],
                        metadata: Default::default(),
                    }],
                    rerun_prefix: format!("certify run --sidecar {url} --state {state} --features {features}"),
                    sidecar: None,
                })
            }
            Source::Spec(spec) => Self::open_spec(spec, registry, spec_arg).await,
        }
    }

    async fn open_spec(spec: Spec, registry: &Registry, spec_arg: Option<&str>) -> Result<Session, SetupError> {
        let manifests: Vec<ComponentManifest> = spec.entries.iter().map(|e| e.manifest.clone()).collect();
        let in_process = registry.build_all(&manifests, Arc::new(SystemClock)).await?;
        let mut drivers = Drivers::default();
        let mut targets = Vec::new();
        for entry in &spec.entries {
            for driver in &entry.drivers {
                targets.push(Target {
                    component: entry.manifest.name.clone(),
                    type_name: entry.manifest.type_name.clone(),
                    driver: *driver,
                    claims: entry.claims.clone(),
                    settings: entry.settings.clone(),
                });
            }
            let key = (entry.manifest.name.clone(), DriverKind::InProcess);
            match in_process.by_name.get(&entry.manifest.name).map(|c| &c.component) {
                Some(Component::State(store)) => {
                    drivers.state.insert(key, Arc::clone(store));
                }
                Some(Component::Lock(store)) => {
                    drivers.lock.insert(key, Arc::clone(store));
                }
                _ => {}
            }
        }
        let wants_http = spec.entries.iter().any(|e| e.drivers.contains(&DriverKind::Http));
        let mut sidecar = None;
        if wants_http {
            // The HTTP driver talks to a reference runtime serving its own instances of the
            // same components, as a sidecar would.
            let served = registry.build_all(&manifests, Arc::new(SystemClock)).await?;
            let config = SidecarConfig { app_id: "certify".into(), ..SidecarConfig::default() };
            let runtime = Sidecar::new(config, served, Vec::new());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(SetupError::Sidecar)?;
            let url = format!("http://{}", listener.local_addr().map_err(SetupError::Sidecar)?);
            tokio::spawn(Arc::clone(&runtime).serve(listener, std::future::pending()));
            for entry in spec.entries.iter().filter(|e| e.drivers.contains(&DriverKind::Http)) {
                let key = (entry.manifest.name.clone(), DriverKind::Http);
                match Block::of_type(&entry.manifest.type_name) {
                    Some(Block::State) => {
                        drivers
                            .state
                            .insert(key, Arc::new(HttpStateStore::connect(&url, &entry.manifest.name, None).await?));
                    }
                    Some(Block::Lock) => {
                        drivers
                            .lock
                            .insert(key, Arc::new(HttpLockStore::connect(&url, &entry.manifest.name, None).await?));
                    }
                    _ => {}
                }
            }
            sidecar = Some(runtime);
        }
        let components = spec
            .entries
            .iter()
            .map(|e| ComponentRecord {
                name: e.manifest.name.clone(),
                type_name: e.manifest.type_name.clone(),
                claims: e.claims.iter().map(|c| c.as_str().to_owned()).collect(),
                drivers: e.drivers.iter().map(|d| d.as_str().to_owned()).collect(),
                metadata: redacted_metadata(&e.manifest),
            })
            .collect();
        let rerun_prefix = match spec_arg {
            Some(path) => format!("certify run --spec {path}"),
            None => "certify run".to_owned(),
        };
        Ok(Session { source: spec.source.clone(), targets, drivers, components, rerun_prefix, sidecar })
    }
}
