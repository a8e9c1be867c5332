//! What reports show of a component: its metadata with secret values replaced.

use contract::ComponentManifest;
use contract::manifest::MetadataValue;
use reports::{ComponentRecord, REDACTED};

use crate::spec::SpecEntry;

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

/// A spec component as the report shows it.
pub(super) fn record(entry: &SpecEntry) -> ComponentRecord {
    ComponentRecord {
        name: entry.manifest.name.clone(),
        type_name: entry.manifest.type_name.clone(),
        claims: entry.claims.iter().map(|c| c.as_str().to_owned()).collect(),
        drivers: entry.drivers.iter().map(|d| d.as_str().to_owned()).collect(),
        claims_from: "spec".into(),
        metadata: redacted_metadata(&entry.manifest),
    }
}
