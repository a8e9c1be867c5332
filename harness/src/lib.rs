//! The certify harness: reads a certification spec, sets up drivers (in-process, and HTTP
//! against a reference runtime it starts or a sidecar it is given), plans spec × component ×
//! case trials, runs them emitting events, and assembles the report.

pub mod app;
pub mod bench;
pub mod blocks;
pub mod cli;
pub mod dapr_tests;
pub mod driver;
pub mod grpc;
pub mod http;
pub mod json_lines;
pub mod plan;
pub mod runner;
pub mod server_runtime;
pub mod session;
pub mod spec;
pub mod supervise;
pub mod terminal;
pub mod worker;

use std::time::{Instant, SystemTime};

use reports::{Environment, Report, Summary};

pub use blocks::Catalogue;
pub use plan::Filter;
pub use runner::Event;
pub use session::{Session, SessionOptions, SetupError, Source};
pub use spec::Spec;

/// Plans and runs every trial of `session` that `filter` keeps, reporting progress to
/// `on_event` (and each trial's name to `on_begin` right before it runs), and returns the
/// report; a trial that does not pass is rerun by `rerun_prefix --exact '<trial>'`.
pub async fn certify(
    session: &Session,
    filter: &Filter,
    concurrency: usize,
    rerun_prefix: &str,
    on_event: &mut dyn FnMut(Event<'_>),
    on_begin: &(dyn Fn(&str) + Sync),
) -> Report {
    let started_at = contract::clock::rfc3339(SystemTime::now());
    let clock = Instant::now();
    let seed = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let trials = plan::plan(&session.targets, session.catalogue.suites(), filter);
    let rerun = |trial: &str| format!("{rerun_prefix} --exact '{trial}'");
    let cases = runner::execute(trials, concurrency, &seed, &rerun, on_event, on_begin).await;
    Report {
        schema: reports::SCHEMA_VERSION.into(),
        spec: session.source.clone(),
        seed,
        started_at,
        duration_ms: clock.elapsed().as_secs_f64() * 1000.0,
        environment: Environment {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            certify_version: env!("CARGO_PKG_VERSION").into(),
            spec_digest: session.spec_digest.clone(),
        },
        components: session.components.clone(),
        backends: session
            .backends()
            .map(|b| reports::BackendRecord {
                kind: b.kind.to_string(),
                provider: b.provider.to_owned(),
                host: b.endpoint.host.clone(),
                server: b.server.clone(),
            })
            .collect(),
        summary: Summary::of(&cases),
        cases,
    }
}
