//! Secrets over gRPC (dapr-grpc-api.md §3.5): legacy statuses, no details.

use std::sync::Arc;

use contract::secrets::GetSecretRequest as ContractRequest;
use contract::{Block, Component, SecretStore};
use runtime_api::runtime::*;
use tonic::{Code, Response, Status};

use super::Answer;
use super::status::legacy;
use crate::sidecar::Sidecar;

fn store(sc: &Sidecar, name: &str) -> Result<Arc<dyn SecretStore>, Status> {
    if !sc.components.has_block(Block::SECRET_STORES) {
        return Err(legacy(Code::FailedPrecondition, "secret store is not configured"));
    }
    match sc.components.get(name, Block::SECRET_STORES).and_then(Component::as_secrets) {
        Some(s) => Ok(Arc::clone(s)),
        None => Err(legacy(Code::InvalidArgument, format!("failed finding secret store with key {name}"))),
    }
}

pub(super) async fn get(sc: &Sidecar, r: GetSecretRequest) -> Answer<GetSecretResponse> {
    let s = store(sc, &r.store_name)?;
    let request = ContractRequest { name: r.key.clone(), metadata: r.metadata.into_iter().collect() };
    let data = s.get(request).await.map_err(|e| {
        let message = format!("failed getting secret with key {} from secret store {}: {e}", r.key, r.store_name);
        legacy(Code::Internal, message)
    })?;
    Ok(Response::new(GetSecretResponse { data: data.into_iter().collect() }))
}

pub(super) async fn bulk(sc: &Sidecar, r: GetBulkSecretRequest) -> Answer<GetBulkSecretResponse> {
    let s = store(sc, &r.store_name)?;
    let all = s.bulk_get(r.metadata.into_iter().collect()).await.map_err(|e| {
        legacy(Code::Internal, format!("failed getting secrets from secret store {}: {e}", r.store_name))
    })?;
    let data = all
        .into_iter()
        .map(|(name, secrets)| (name, SecretResponse { secrets: secrets.into_iter().collect() }))
        .collect();
    Ok(Response::new(GetBulkSecretResponse { data }))
}
