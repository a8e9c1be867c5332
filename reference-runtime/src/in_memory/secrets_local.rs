//! `secretstores.local.file` (a JSON file, nested keys flattened) and
//! `secretstores.local.env` (environment variables, with an optional prefix).

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use contract::secrets::{GetSecretRequest, SecretData};
use contract::{Error, FeatureSet, Metadata, Result, SecretFeature, SecretStore};
use serde_json::Value;

/// Secrets read once from a JSON file.
#[derive(Debug, Clone)]
pub struct LocalFileSecretStore {
    secrets: BTreeMap<String, SecretData>,
    multi_valued: bool,
}

impl LocalFileSecretStore {
    /// Reads `path`. Without `multi_valued`, every leaf is its own secret named by its path
    /// joined with `separator`; with it, each top-level key is a secret whose nested keys are
    /// flattened the same way.
    pub fn load(path: &Path, separator: &str, multi_valued: bool) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Backend(format!("cannot read secrets file `{}`: {e}", path.display())))?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Backend(format!("secrets file `{}` is not valid JSON: {e}", path.display())))?;
        let Value::Object(top) = json else {
            return Err(Error::Backend(format!("secrets file `{}` must hold a JSON object", path.display())));
        };
        let mut secrets = BTreeMap::new();
        for (name, value) in top {
            if multi_valued {
                let mut data = SecretData::new();
                match value {
                    Value::Object(_) => flatten(&value, None, separator, &mut data),
                    scalar => {
                        data.insert(name.clone(), leaf_text(&scalar));
                    }
                }
                secrets.insert(name, data);
            } else {
                let mut flat = SecretData::new();
                flatten(&value, Some(name), separator, &mut flat);
                for (key, v) in flat {
                    secrets.insert(key.clone(), SecretData::from([(key, v)]));
                }
            }
        }
        Ok(Self { secrets, multi_valued })
    }
}

fn leaf_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn flatten(value: &Value, path: Option<String>, separator: &str, out: &mut SecretData) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let child = match &path {
                    Some(p) => format!("{p}{separator}{k}"),
                    None => k.clone(),
                };
                flatten(v, Some(child), separator, out);
            }
        }
        leaf => {
            out.insert(path.unwrap_or_default(), leaf_text(leaf));
        }
    }
}

fn not_found(name: &str) -> Error {
    Error::NotFound { what: format!("secret `{name}`") }
}

#[async_trait]
impl SecretStore for LocalFileSecretStore {
    fn features(&self) -> FeatureSet<SecretFeature> {
        if self.multi_valued { [SecretFeature::MultipleKeyValuesPerSecret].into() } else { FeatureSet::new() }
    }

    async fn get(&self, request: GetSecretRequest) -> Result<SecretData> {
        self.secrets.get(&request.name).cloned().ok_or_else(|| not_found(&request.name))
    }

    async fn bulk_get(&self, _metadata: Metadata) -> Result<BTreeMap<String, SecretData>> {
        Ok(self.secrets.clone())
    }
}

/// Secrets from the process environment.
#[derive(Debug, Clone, Default)]
pub struct EnvSecretStore {
    prefix: String,
}

impl EnvSecretStore {
    /// A store of the variables named `prefix` + secret name.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }
}

#[async_trait]
impl SecretStore for EnvSecretStore {
    fn features(&self) -> FeatureSet<SecretFeature> {
        FeatureSet::new()
    }

    async fn get(&self, request: GetSecretRequest) -> Result<SecretData> {
        let var = format!("{}{}", self.prefix, request.name);
        match std::env::var(&var) {
            Ok(value) => Ok(SecretData::from([(request.name, value)])),
            Err(_) => Err(not_found(&request.name)),
        }
    }

    async fn bulk_get(&self, _metadata: Metadata) -> Result<BTreeMap<String, SecretData>> {
        Ok(std::env::vars()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix(&self.prefix)?.to_owned();
                (!name.is_empty()).then(|| (name.clone(), SecretData::from([(name, v)])))
            })
            .collect())
    }
}
