//! The secret-store contract: named secrets, each a map of key/value pairs.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::errors::Result;
use crate::features::{FeatureSet, SecretFeature};
use crate::metadata::Metadata;

/// A secret's key/value pairs. A single-value secret has one pair keyed by its own name.
pub type SecretData = BTreeMap<String, String>;

/// Read one secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetSecretRequest {
    /// The secret's name.
    pub name: String,
    /// Request metadata (e.g. a version).
    pub metadata: Metadata,
}

impl GetSecretRequest {
    /// A read of secret `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), metadata: Metadata::new() }
    }
}

/// A store of secrets.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The features this store advertises.
    fn features(&self) -> FeatureSet<SecretFeature>;

    /// Reads one secret; a missing secret is [`crate::Error::NotFound`].
    async fn get(&self, request: GetSecretRequest) -> Result<SecretData>;

    /// Reads every secret, by name.
    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, SecretData>>;

    /// Checks the store can reach its backend.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
