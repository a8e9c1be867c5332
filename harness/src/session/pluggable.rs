//! A pluggable component on a Unix socket, certified through the gRPC driver: the blocks come
//! from the services it lists through reflection, each initialised as a component of its own
//! (a socket serving several gets an instance per block, told apart by a suffix). Claims
//! default to what it advertises.

use std::collections::BTreeSet;
use std::sync::Arc;

use reports::ComponentRecord;
use suites::Claim;

use super::{PluggableSource, Session, SetupError};
use crate::blocks::{BlockDriver, Catalogue, PluggableSocket};
use crate::driver::DriverKind;
use crate::plan::Target;

/// Opens a session over the pluggable component `source` names.
pub(super) async fn open(source: PluggableSource, catalogue: &Catalogue) -> Result<Session, SetupError> {
    let PluggableSource { socket, component, metadata, claims } = source;
    let name = component.unwrap_or_else(|| {
        socket.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "pluggable".into())
    });
    let channel = pluggable::socket::dial(&socket).await?;
    let services = pluggable::socket::services(&socket, channel.clone()).await?;
    let on_socket = PluggableSocket { channel: &channel, services: &services, metadata: &metadata };
    let served: Vec<&Arc<dyn BlockDriver>> =
        catalogue.blocks().iter().filter(|b| b.pluggable_services().iter().any(|s| on_socket.serves(s))).collect();
    if served.is_empty() {
        return Err(SetupError::PluggableInit {
            component: name,
            reason: format!(
                "it serves none of dapr.proto.components.v1's services through reflection (it lists: {})",
                services.join(", ")
            ),
        });
    }
    // Each block is a component of its own, as each has its own Component resource.
    let several = served.len() > 1;
    let (mut targets, mut components) = (Vec::new(), Vec::new());
    for block in served {
        let instance = match several {
            false => name.clone(),
            true => format!("{name}-{}", block.block().prefix()),
        };
        let handles = block
            .pluggable(&on_socket, &instance)
            .await
            .map_err(|reason| SetupError::PluggableInit { component: instance.clone(), reason })?;
        let mut block_claims: BTreeSet<Claim> = claims.clone().unwrap_or_else(|| block.advertised(&handles));
        block_claims.retain(|c| c.blocks().contains(&block.block()));
        let type_name = format!("{}.pluggable", block.block().prefix());
        components.push(ComponentRecord {
            name: instance.clone(),
            type_name: format!("{type_name} ({})", socket.display()),
            claims: block_claims.iter().map(|c| c.as_str().to_owned()).collect(),
            drivers: vec![DriverKind::Pluggable.as_str().into()],
            metadata: metadata.clone(),
            claims_from: super::black_box::claims_from(claims.is_some()),
        });
        targets.push(Target {
            component: instance,
            type_name,
            block: block.block(),
            driver: DriverKind::Pluggable,
            claims: block_claims,
            settings: Default::default(),
            blocked: None,
            handles,
        });
    }
    Ok(Session::black_box(socket.display().to_string(), targets, components, catalogue))
}
