//! Discovering pluggable components as daprd does: every Unix socket in a folder
//! (`DAPR_COMPONENTS_SOCKETS_FOLDER`, default `/tmp/dapr-components-sockets`) is a component
//! named after its file (`my-store.sock` is `my-store`), serving the blocks its reflection
//! lists; each block becomes a component type (`state.my-store`, `pubsub.my-store`, …) that
//! Component resources can use.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use contract::{Component, ComponentContext, FactoryError, Registry};
use tonic::transport::Channel;

use crate::bindings::{PluggableInputBinding, PluggableOutputBinding};
use crate::pubsub::PluggablePubSub;
use crate::secrets::PluggableSecretStore;
use crate::services;
use crate::socket::{SocketError, dial};
use crate::state::PluggableStateStore;

/// The environment variable naming the sockets folder.
pub const SOCKETS_FOLDER_ENV: &str = "DAPR_COMPONENTS_SOCKETS_FOLDER";

/// daprd's default sockets folder.
pub const DEFAULT_SOCKETS_FOLDER: &str = "/tmp/dapr-components-sockets";

/// Component metadata: deliveries a message gets before daprd's side dead-letters it.
pub const MAX_DELIVERY_ATTEMPTS: &str = "maxDeliveryAttempts";

/// The sockets folder the environment names, or daprd's default.
pub fn sockets_folder() -> PathBuf {
    std::env::var_os(SOCKETS_FOLDER_ENV).filter(|v| !v.is_empty()).map_or(DEFAULT_SOCKETS_FOLDER.into(), PathBuf::from)
}

/// A pluggable component found in the folder.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// Its name: the socket's file name without its extension.
    pub name: String,
    /// Its socket.
    pub socket: PathBuf,
    /// The component types it provides, e.g. `state.my-store`.
    pub types: Vec<String>,
}

/// Finds the pluggable components in `folder` and registers a component type for each block
/// each serves. A missing folder holds none; sub-folders and files that are not sockets are
/// skipped; a socket that does not answer is an error naming it.
pub async fn register_folder(registry: &mut Registry, folder: &Path) -> Result<Vec<Discovered>, SocketError> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Ok(Vec::new()) };
    let mut sockets: Vec<PathBuf> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_socket() => sockets.push(path),
            Ok(kind) if kind.is_dir() => {}
            _ => tracing::warn!(path = %path.display(), "not a socket; skipped"),
        }
    }
    sockets.sort();
    let mut found = Vec::new();
    for socket in sockets {
        found.push(register_socket(registry, &socket).await?);
    }
    Ok(found)
}

/// Registers a component type for each block the pluggable component on `socket` serves.
pub async fn register_socket(registry: &mut Registry, socket: &Path) -> Result<Discovered, SocketError> {
    let channel = dial(socket).await?;
    let listed = crate::socket::services(socket, channel.clone()).await?;
    let name = socket.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let types = register(registry, &name, &listed, &channel);
    tracing::info!(component = %name, socket = %socket.display(), ?types, "pluggable component discovered");
    Ok(Discovered { name, socket: socket.to_owned(), types })
}

fn init_failed(e: contract::Error) -> FactoryError {
    FactoryError::Init(e)
}

fn properties(ctx: &ComponentContext) -> BTreeMap<String, String> {
    ctx.properties.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// Registers the types of component `name` serving `listed` on `channel`; answers them.
fn register(registry: &mut Registry, name: &str, listed: &[String], channel: &Channel) -> Vec<String> {
    let has = |service: &str| listed.iter().any(|s| s == service);
    let mut types = Vec::new();
    if has(services::STATE) {
        let channel = channel.clone();
        let type_name = format!("state.{name}");
        registry.register(&type_name, move |ctx: ComponentContext| {
            let channel = channel.clone();
            async move {
                let store =
                    PluggableStateStore::init(channel, &ctx.name, properties(&ctx)).await.map_err(init_failed)?;
                Ok(Component::state(Arc::new(store)))
            }
        });
        types.push(type_name);
    }
    if has(services::PUBSUB) {
        let channel = channel.clone();
        let type_name = format!("pubsub.{name}");
        registry.register(&type_name, move |ctx: ComponentContext| {
            let channel = channel.clone();
            async move {
                // daprd dead-letters after its own retries; without a policy, after one failure.
                let attempts = ctx.properties.parse::<u32>(MAX_DELIVERY_ATTEMPTS)?.unwrap_or(1).max(1);
                let broker = PluggablePubSub::init(channel, &ctx.name, properties(&ctx))
                    .await
                    .map_err(init_failed)?
                    .dead_lettering_after(attempts);
                Ok(Component::pubsub(Arc::new(broker)))
            }
        });
        types.push(type_name);
    }
    let (input, output) = (has(services::INPUT_BINDING), has(services::OUTPUT_BINDING));
    if input || output {
        let channel = channel.clone();
        let type_name = format!("bindings.{name}");
        registry.register(&type_name, move |ctx: ComponentContext| {
            let channel = channel.clone();
            async move {
                let output = match output {
                    false => None,
                    true => Some(Arc::new(
                        PluggableOutputBinding::init(channel.clone(), &ctx.name, properties(&ctx))
                            .await
                            .map_err(init_failed)?,
                    ) as Arc<dyn contract::OutputBinding>),
                };
                let input = match input {
                    false => None,
                    true => Some(Arc::new(
                        PluggableInputBinding::init(channel, &ctx.name, properties(&ctx)).await.map_err(init_failed)?,
                    ) as Arc<dyn contract::InputBinding>),
                };
                Ok(Component::binding(input, output))
            }
        });
        types.push(type_name);
    }
    if has(services::SECRET_STORE) {
        let channel = channel.clone();
        let type_name = format!("secretstores.{name}");
        registry.register(&type_name, move |ctx: ComponentContext| {
            let channel = channel.clone();
            async move {
                let store =
                    PluggableSecretStore::init(channel, &ctx.name, properties(&ctx)).await.map_err(init_failed)?;
                Ok(Component::secrets(Arc::new(store)))
            }
        });
        types.push(type_name);
    }
    types
}
