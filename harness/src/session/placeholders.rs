//! `${{kind.field}}` placeholders in Component metadata: which backends a component needs, and
//! the manifest with their values filled in.

use std::collections::BTreeMap;
use std::sync::Arc;

use contract::ComponentManifest;
use contract::manifest::MetadataValue;
use fixtures::{Backend, BackendError, BackendKind};

use super::SetupError;

/// The `${{kind.field}}` placeholders of a manifest's metadata, validated.
pub(super) fn placeholders(manifest: &ComponentManifest) -> Result<Vec<(BackendKind, String)>, SetupError> {
    let mut found = Vec::new();
    for entry in &manifest.metadata {
        let MetadataValue::Plain(value) = &entry.value else { continue };
        let mut rest = value.as_str();
        while let Some(start) = rest.find("${{") {
            let after = &rest[start + 3..];
            let Some(end) = after.find("}}") else {
                return Err(SetupError::Placeholder {
                    component: manifest.name.clone(),
                    field: entry.name.clone(),
                    message: "`${{` without a closing `}}`".into(),
                });
            };
            let inner = &after[..end];
            let (kind, field) = inner.split_once('.').unwrap_or((inner, ""));
            let kind =
                BackendKind::ALL.iter().copied().find(|k| k.name() == kind).ok_or_else(|| SetupError::Placeholder {
                    component: manifest.name.clone(),
                    field: entry.name.clone(),
                    message: format!(
                        "`${{{{{inner}}}}}` names no backend (known: {})",
                        BackendKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                    ),
                })?;
            if !matches!(field, "host" | "url") {
                return Err(SetupError::Placeholder {
                    component: manifest.name.clone(),
                    field: entry.name.clone(),
                    message: format!("`${{{{{inner}}}}}`: a backend offers `host` and `url`"),
                });
            }
            found.push((kind, field.to_owned()));
            rest = &after[end + 2..];
        }
    }
    Ok(found)
}

/// Each provisioned backend's placeholder values: `(kind, field)` → value.
pub(super) fn backend_values(
    backends: &BTreeMap<BackendKind, Result<Arc<Backend>, BackendError>>,
) -> BTreeMap<(BackendKind, &'static str), String> {
    let mut values = BTreeMap::new();
    for (kind, backend) in backends {
        let Ok(backend) = backend else { continue };
        for field in ["host", "url"] {
            if let Some(v) = backend.placeholder(field) {
                values.insert((*kind, field), v.to_owned());
            }
        }
    }
    values
}

/// The manifest with every placeholder replaced by its value.
pub(super) fn substitute(
    manifest: &ComponentManifest,
    values: &BTreeMap<(BackendKind, &'static str), String>,
) -> ComponentManifest {
    let mut out = manifest.clone();
    for entry in &mut out.metadata {
        if let MetadataValue::Plain(value) = &mut entry.value {
            for ((kind, field), v) in values {
                *value = value.replace(&format!("${{{{{}.{field}}}}}", kind.name()), v);
            }
        }
    }
    out
}
