//! `certify run` at this stage of the project: load components, ping them, show what they
//! serve. The spec-driven suite run replaces the body later; the loading path stays.

use std::path::PathBuf;

use anyhow::Context;
use contract::{Component, Resources, SystemClock};

/// Loads, builds and pings every component of `paths` (or of the built-in set).
pub async fn run(paths: &[PathBuf]) -> anyhow::Result<()> {
    let resources = if paths.is_empty() { reference_runtime::default_resources()? } else { Resources::load(paths)? };
    if resources.components.is_empty() {
        anyhow::bail!("no Component documents found in the resources given; each needs `kind: Component`");
    }
    let registry = reference_runtime::builtin_registry();
    let components = registry.build_all(&resources.components, std::sync::Arc::new(SystemClock)).await?;
    println!("{:<16} {:<28} {:<6} capabilities", "component", "type", "ping");
    for (name, loaded) in &components.by_name {
        let ping = ping(&loaded.component).await.with_context(|| format!("component `{name}` does not answer"))?;
        println!(
            "{:<16} {:<28} {:<6} {}",
            name,
            loaded.manifest.type_name,
            ping,
            loaded.component.capabilities().join(", ")
        );
    }
    for (name, reason) in &components.skipped {
        println!("{name:<16} skipped: {reason}");
    }
    Ok(())
}

async fn ping(component: &Component) -> contract::Result<&'static str> {
    match component {
        Component::State(s) => s.ping().await?,
        Component::PubSub(p) => p.ping().await?,
        Component::Binding { input, output } => {
            if let Some(i) = input {
                i.ping().await?;
            }
            if let Some(o) = output {
                o.ping().await?;
            }
        }
        Component::Secrets(s) => s.ping().await?,
        Component::Configuration { store, .. } => store.ping().await?,
        Component::Lock(l) => l.ping().await?,
    }
    Ok("ok")
}
