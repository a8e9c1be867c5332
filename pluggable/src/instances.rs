//! Component instances a server keeps: `Init` builds one per `x-component-instance`, and every
//! later call reaches the caller's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use tonic::{Request, Status};

use crate::INSTANCE_HEADER;
use crate::conventions::to_status;

/// Builds an instance from its Component metadata (the `Init` properties).
pub type Factory<T> = Arc<dyn Fn(BTreeMap<String, String>) -> BoxFuture<'static, contract::Result<T>> + Send + Sync>;

/// The instances of one service.
pub struct Instances<T> {
    make: Factory<T>,
    live: Mutex<HashMap<String, T>>,
}

/// The instance a call is for.
pub fn instance_of<R>(request: &Request<R>) -> String {
    request.metadata().get(INSTANCE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

impl<T: Clone> Instances<T> {
    /// Instances built with `make`.
    pub fn new(make: Factory<T>) -> Self {
        Self { make, live: Mutex::default() }
    }

    /// Builds the caller's instance from `properties`, replacing an earlier one. With `keep`,
    /// an instance that already exists stays (an input and an output binding of one instance
    /// each call `Init`, and must share it).
    pub async fn init<R>(
        &self,
        request: &Request<R>,
        properties: Option<crate::proto::components::MetadataRequest>,
        keep: bool,
    ) -> Result<T, Status> {
        let instance = instance_of(request);
        if keep && let Some(existing) = self.live.lock().unwrap_or_else(PoisonError::into_inner).get(&instance) {
            return Ok(existing.clone());
        }
        let properties = properties.map(|m| m.properties.into_iter().collect()).unwrap_or_default();
        let built = (self.make)(properties).await.map_err(|e| to_status(&e))?;
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if keep && let Some(existing) = live.get(&instance) {
            return Ok(existing.clone());
        }
        live.insert(instance, built.clone());
        Ok(built)
    }

    /// The caller's instance.
    pub fn get<R>(&self, request: &Request<R>) -> Result<T, Status> {
        let instance = instance_of(request);
        self.live.lock().unwrap_or_else(PoisonError::into_inner).get(&instance).cloned().ok_or_else(|| {
            Status::failed_precondition(format!("instance `{instance}` was not initialised (call Init first)"))
        })
    }
}
