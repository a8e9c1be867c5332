//! Broken components on a real Redis, under the faults driver: a state store that never
//! reconnects after the server restarts, and one whose calls have no timeout, so they hang for
//! ever while nothing gets through; an output binding with the same flaw. Each must fail the
//! scenario it breaks, with the reason.

use std::sync::Arc;

use async_trait::async_trait;
use contract::bindings::{InvokeRequest, InvokeResponse};
use contract::state::{DeleteRequest, GetRequest, Item, SetRequest};
use contract::{
    Component, ComponentContext, Error, FeatureSet, OutputBinding, Registry, Result, StateFeature, StateStore,
};
use harness::Filter;
use reports::Verdict;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

mod common;

fn failed(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// One connection for life, with no timeouts: a plain RESP client.
struct OneConnection {
    stream: Mutex<BufStream<TcpStream>>,
}

impl OneConnection {
    async fn connect(host: &str) -> Result<Self> {
        let stream = TcpStream::connect(host).await.map_err(failed)?;
        Ok(Self { stream: Mutex::new(BufStream::new(stream)) })
    }

    async fn call(&self, args: &[&[u8]]) -> Result<Option<Vec<u8>>> {
        let mut stream = self.stream.lock().await;
        let mut command = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            command.extend(format!("${}\r\n", arg.len()).into_bytes());
            command.extend_from_slice(arg);
            command.extend_from_slice(b"\r\n");
        }
        stream.write_all(&command).await.map_err(failed)?;
        stream.flush().await.map_err(failed)?;
        let mut line = String::new();
        if stream.read_line(&mut line).await.map_err(failed)? == 0 {
            return Err(failed("the connection is closed"));
        }
        match line.as_bytes().first() {
            Some(b'$') => {
                let len: i64 = line[1..].trim().parse().map_err(failed)?;
                if len < 0 {
                    return Ok(None);
                }
                let mut data = vec![0u8; len as usize + 2];
                stream.read_exact(&mut data).await.map_err(failed)?;
                data.truncate(len as usize);
                Ok(Some(data))
            }
            Some(b'-') => Err(failed(line.trim())),
            _ => Ok(Some(line.trim().as_bytes().to_vec())),
        }
    }
}

#[async_trait]
impl StateStore for OneConnection {
    fn features(&self) -> FeatureSet<StateFeature> {
        FeatureSet::new()
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        let data = self.call(&[b"GET", request.key.as_bytes()]).await?;
        Ok(data.map(|data| Item { data, ..Item::default() }))
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        self.call(&[b"SET", request.key.as_bytes(), &request.value]).await.map(drop)
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.call(&[b"DEL", request.key.as_bytes()]).await.map(drop)
    }
}

#[async_trait]
impl OutputBinding for OneConnection {
    fn operations(&self) -> Vec<String> {
        vec!["create".into()]
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let key = request.metadata.get("key").cloned().unwrap_or_default();
        self.call(&[b"SET", key.as_bytes(), &request.data]).await.map(|_| InvokeResponse::default())
    }
}

fn registry() -> Registry {
    let mut registry = reference_runtime::builtin_registry();
    registry.register("state.broken-one-connection", |ctx: ComponentContext| async move {
        let host = ctx.properties.required("redisHost")?.to_owned();
        Ok(Component::state(Arc::new(OneConnection::connect(&host).await?)))
    });
    registry.register("bindings.broken-one-connection", |ctx: ComponentContext| async move {
        let host = ctx.properties.required("redisHost")?.to_owned();
        Ok(Component::binding(None, Some(Arc::new(OneConnection::connect(&host).await?))))
    });
    registry
}

const SPEC: &str = r#"
components:
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: stuck}
      spec:
        type: state.broken-one-connection
        version: v1
        metadata: [{name: redisHost, value: "${{redis.host}}"}]
    settings: {recoveryBudgetSeconds: 3, faultCallTimeoutSeconds: 3}
    drivers: [faults]
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: stuck-binding}
      spec:
        type: bindings.broken-one-connection
        version: v1
        metadata: [{name: redisHost, value: "${{redis.host}}"}]
    claims: [create]
    settings: {recoveryBudgetSeconds: 3, faultCallTimeoutSeconds: 3}
    drivers: [faults]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_never_reconnects_or_hangs_in_a_black_hole_is_caught() {
    // Each scenario on a fresh session: a restart ends every connection, the hanging one's too.
    let only = |trial: &str| Filter { patterns: vec![trial.to_owned()], exact: true, ..Filter::default() };
    let restart = "stuck@faults::faults.state.recovers-after-restart";
    let report = common::certify(&registry(), SPEC, &only(restart)).await;
    let record = common::record(&report, restart);
    if record.verdict == Verdict::Skipped && std::env::var("CERTIFY_REQUIRE_BACKENDS").is_err() {
        fixtures::skip_test(record.reason.as_deref().unwrap_or("its backend is unavailable"));
        return;
    }
    common::expect_fail(&report, restart, "did not work again within the recovery budget of 3s");
    let hole = "stuck@faults::faults.state.black-hole-fails-fast";
    let report = common::certify(&registry(), SPEC, &only(hole)).await;
    common::expect_fail(&report, hole, "did not return within 3s: a call must fail, not hang");
    let binding = "stuck-binding@faults::faults.bindings.black-hole-fails-fast";
    let report = common::certify(&registry(), SPEC, &only(binding)).await;
    common::expect_fail(&report, binding, "did not return within 3s: it must fail, not hang");
}
