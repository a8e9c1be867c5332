//! A building block added from outside the harness, in this file alone: its contract trait,
//! its in-memory component, its suite (one rule) and its driver, each registered with one line
//! (`Registry::register`, `Catalogue::add_block`, `Catalogue::add_suite`). Nothing in the
//! harness, suites or contract names it. It is certified in-process, skipped with the reason
//! over HTTP (its driver has no HTTP form), and a broken echo is caught.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, ComponentContext, Registry};
use harness::blocks::BlockDriver;
use harness::{Filter, Session, SessionOptions, Source, Spec};
use reports::Verdict;
use suites::{Case, CaseResult, Ctx, Finding, Reach, Suite, case, ensure_eq};

// Contract: the block and its trait.
const TOY: Block = Block::new("toy");

#[async_trait]
trait Echo: Send + Sync {
    async fn echo(&self, text: String) -> contract::Result<String>;
}

// Components: the reference echo, and one that gets it wrong.
struct InMemoryEcho {
    reverse: bool,
}

#[async_trait]
impl Echo for InMemoryEcho {
    async fn echo(&self, text: String) -> contract::Result<String> {
        Ok(if self.reverse { text.chars().rev().collect() } else { text })
    }
}

fn echo_component(reverse: bool) -> Component {
    Component::new(TOY).with(Arc::new(InMemoryEcho { reverse }) as Arc<dyn Echo>)
}

// Suite: one rule, and what it needs in reach.
const ECHOER: Reach = Reach::of::<dyn Echo>("echoer");

const TOY_SUITE: Suite = Suite { block: TOY, needs: &[ECHOER], cases: toy_cases, prepare: None };

fn toy_cases() -> Vec<Case> {
    vec![case!(
        TOY,
        "toy.echo.returns-what-it-got",
        "certify",
        "An echo MUST return exactly the text it was given.",
        [],
        [],
        5,
        echoes
    )]
}

async fn echoes(ctx: Ctx) -> CaseResult {
    let echoer = ctx.reach::<dyn Echo>(ECHOER)?;
    let said = format!("hello from {}", ctx.namespace);
    let heard = echoer.echo(said.clone()).await.map_err(|e| Finding::Fail(format!("echo failed: {e}")))?;
    ensure_eq!(heard, said, "the echo");
    Ok(())
}

// Driver: in-process only (the default: the component's parts are its handles).
struct ToyDriver;

impl BlockDriver for ToyDriver {
    fn block(&self) -> Block {
        TOY
    }
}

const SPEC: &str = r#"
components:
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: echo}
      spec: {type: toy.in-memory, version: v1}
    drivers: [in-process, http]
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: backwards}
      spec: {type: toy.reversing, version: v1}
    drivers: [in-process]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_added_from_outside_is_planned_run_and_judged() {
    let mut registry: Registry = reference_runtime::builtin_registry();
    registry.register("toy.in-memory", |_: ComponentContext| async { Ok(echo_component(false)) });
    registry.register("toy.reversing", |_: ComponentContext| async { Ok(echo_component(true)) });
    let mut options = SessionOptions::default();
    options.catalogue.add_block(Arc::new(ToyDriver));
    options.catalogue.add_suite(TOY_SUITE);

    let spec = Spec::parse("toy.yaml", Path::new("."), SPEC).expect("spec");
    let session = Session::open(Source::Spec(spec), &registry, &options).await.expect("session");
    let report = harness::certify(&session, &Filter::default(), 4, "certify run", &mut |_| {}, &|_| {}).await;
    session.close().await;

    let verdict = |trial: &str| {
        let record = report.cases.iter().find(|c| c.trial == trial).unwrap_or_else(|| panic!("no {trial}"));
        (record.verdict, record.reason.clone().unwrap_or_default())
    };
    assert_eq!(report.cases.len(), 3, "{:#?}", report.cases);
    assert_eq!(verdict("echo::toy.echo.returns-what-it-got").0, Verdict::Pass);
    let (skipped, why) = verdict("echo@http::toy.echo.returns-what-it-got");
    assert_eq!(skipped, Verdict::Skipped);
    assert!(why.contains("the http driver gives this component no echoer"), "{why}");
    let (failed, why) = verdict("backwards::toy.echo.returns-what-it-got");
    assert_eq!(failed, Verdict::Fail);
    assert!(why.contains("the echo: expected"), "{why}");
}
