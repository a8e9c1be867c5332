//! Actor runtimes that break the rules, in the test tree: the actors suite must catch each
//! through the HTTP driver by the rule it breaks, and pass an honest one. Each is the
//! reference sidecar with a lying proxy between it and certify's app (the host) or in front
//! of its API.

mod common;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use contract::Block;
use harness::Filter;
use reports::{Report, Verdict};

/// What a proxy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    Honest,
    /// App side: answers a method call at once and calls the actor in the background, so the
    /// sidecar starts the next turn while the actor still runs the last.
    AnswersBeforeTheActor,
    /// App side: every reminder fire reaches the actor twice.
    RemindsTwice,
    /// API side: a read of actor `…two`'s state reads actor `…one`'s.
    ReadsAnotherActor,
    /// API side: the `Dapr-Reentrancy-Id` of calls is dropped.
    DropsReentrancy,
    /// App side: callbacks lose the caller's `traceparent` and `tracestate` (the runtime
    /// starts each actor call a trace of its own).
    StartsNewTraces,
    /// API side: notes every reminder registered; app side: when an actor is deactivated,
    /// deletes its reminders through the sidecar, as a runtime that keeps reminders with the
    /// activation would lose them.
    ForgetsRemindersOnDeactivation,
}

/// The reminders registered through a [`Lie::ForgetsRemindersOnDeactivation`] proxy (their API
/// paths), and the sidecar's API to delete them through.
static REGISTERED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
static SIDECAR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn proxy(upstream: String, lie: Lie) -> u16 {
    let router = axum::Router::new().fallback(forward).with_state((upstream, lie, reqwest::Client::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

async fn forward(State((upstream, lie, client)): State<(String, Lie, reqwest::Client)>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let body = axum::body::to_bytes(body, 1 << 24).await.unwrap_or_default();
    let mut headers = parts.headers.clone();
    headers.remove("content-length");
    if lie == Lie::DropsReentrancy {
        headers.remove("dapr-reentrancy-id");
    }
    if lie == Lie::StartsNewTraces {
        headers.insert(
            "traceparent",
            axum::http::HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        headers.remove("tracestate");
    }
    if lie == Lie::ReadsAnotherActor && parts.method == "GET" && path.contains("/state/") {
        path = path.replace("two/state", "one/state");
    }
    let send = {
        let (client, method, url, headers, body) =
            (client.clone(), parts.method.clone(), format!("{upstream}{path}"), headers.clone(), body.clone());
        move || client.request(method.clone(), &url).headers(headers.clone()).body(body.clone()).send()
    };
    if lie == Lie::ForgetsRemindersOnDeactivation {
        if parts.method == "POST" && path.contains("/reminders/") {
            REGISTERED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(path.clone());
        }
        // `DELETE /actors/{type}/{id}` on the app side: the actor's reminders go with it.
        if parts.method == "DELETE" && path.starts_with("/actors/") && !path.contains("/method/") {
            let base = format!("/v1.0{path}/reminders/");
            let doomed: Vec<String> = REGISTERED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .filter(|p| p.starts_with(&base))
                .cloned()
                .collect();
            if let Some(sidecar) = SIDECAR.get() {
                for reminder in doomed {
                    let _ = client.delete(format!("{sidecar}{reminder}")).send().await;
                }
            }
        }
    }
    if lie == Lie::AnswersBeforeTheActor && path.contains("/method/sleep-") {
        tokio::spawn(send());
        return (axum::http::StatusCode::OK, Bytes::from_static(b"slept")).into_response();
    }
    if lie == Lie::RemindsTwice && path.contains("/method/remind/") {
        let _ = send().await;
    }
    match send().await {
        Ok(answer) => {
            let status = answer.status();
            let mut headers = answer.headers().clone();
            headers.remove("content-length");
            (status, headers, answer.bytes().await.unwrap_or_default()).into_response()
        }
        Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// Certifies the actors of a reference sidecar with `to_app` between it and certify's app
/// and `to_api` in front of its API.
async fn certify(to_app: Lie, to_api: Lie, only: &str) -> Report {
    let app_port = common::free_port();
    let app_side = proxy(format!("http://127.0.0.1:{app_port}"), to_app).await;
    let sidecar = common::liar_sidecar(app_side).await;
    let (upstream, _) = sidecar.serve_on_loopback().await.expect("serve the sidecar");
    if to_app == Lie::ForgetsRemindersOnDeactivation {
        let _ = SIDECAR.set(upstream.clone());
    }
    let api = proxy(upstream, to_api).await;
    let filter = Filter { patterns: vec![only.into()], ..Filter::default() };
    common::certify_sidecar(format!("http://127.0.0.1:{api}"), &[(Block::ACTORS, "")], app_port, &filter).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_actor_runtime_passes_every_case() {
    let report = certify(Lie::Honest, Lie::Honest, "actors.").await;
    assert_eq!(report.cases.len(), 17, "{:?}", report.cases);
    // What only a runtime certify runs can show (a restart, no store) or several hosts.
    let elsewhere = ["actors.store.required", "actors.reminders.durable", "actors.placement.single-activation"];
    for case in &report.cases {
        let expected = if elsewhere.contains(&case.id.as_str()) { Verdict::Skipped } else { Verdict::Pass };
        assert_eq!(case.verdict, expected, "{case:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_runs_two_turns_of_an_id_at_once_is_caught_every_time() {
    for run in 0..20 {
        let report = certify(Lie::AnswersBeforeTheActor, Lie::Honest, "actors.turns").await;
        let record = common::record(&report, "liar@http::actors.turns.one-at-a-time");
        assert_eq!(record.verdict, Verdict::Fail, "run {run}: {record:?}");
        assert!(record.reason.as_deref().unwrap_or_default().contains("overlapped"), "run {run}: {record:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_whose_reminders_fire_twice_is_caught() {
    let report = certify(Lie::RemindsTwice, Lie::Honest, "actors.reminders.schedule").await;
    common::expect_fail(&report, "liar@http::actors.reminders.schedule", "fires of `R3/1s`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_lets_an_actor_read_another_ones_state_is_caught() {
    let report = certify(Lie::Honest, Lie::ReadsAnotherActor, "actors.state.isolated").await;
    common::expect_fail(&report, "liar@http::actors.state.isolated", "`shared` key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_forgets_reminders_on_deactivation_is_caught() {
    let lie = Lie::ForgetsRemindersOnDeactivation;
    let report = certify(lie, lie, "actors.reminders.outlive-deactivation").await;
    common::expect_fail(
        &report,
        "liar@http::actors.reminders.outlive-deactivation",
        "never fired after its actor was deactivated",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_ignores_reentrancy_ids_is_caught() {
    let report = certify(Lie::Honest, Lie::DropsReentrancy, "actors.reentrancy").await;
    common::expect_fail(&report, "liar@http::actors.reentrancy.chain", "did not end in 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_starts_actor_calls_a_new_trace_is_caught() {
    let report = certify(Lie::StartsNewTraces, Lie::Honest, "actors.trace").await;
    common::expect_fail(&report, "liar@http::actors.trace.propagated", "the trace id of the traceparent");
}

/// A store that takes every write but keeps nothing of the reminders (their key).
struct ForgetsReminders(reference_runtime::in_memory::state_memory::InMemoryStateStore);

#[async_trait::async_trait]
impl contract::StateStore for ForgetsReminders {
    fn features(&self) -> contract::FeatureSet<contract::StateFeature> {
        self.0.features()
    }
    async fn get(&self, request: contract::state::GetRequest) -> contract::Result<Option<contract::state::Item>> {
        self.0.get(request).await
    }
    async fn set(&self, request: contract::state::SetRequest) -> contract::Result<()> {
        if request.key.starts_with("dapr-reminders") {
            return Ok(());
        }
        self.0.set(request).await
    }
    async fn delete(&self, request: contract::state::DeleteRequest) -> contract::Result<()> {
        self.0.delete(request).await
    }
    async fn transact(&self, request: contract::state::TransactionRequest) -> contract::Result<()> {
        self.0.transact(request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_forgets_reminders_on_restart_is_caught() {
    let mut registry = reference_runtime::builtin_registry();
    registry.register("actors.forgetful", |ctx: contract::ComponentContext| async move {
        let store = ForgetsReminders(reference_runtime::in_memory::state_memory::InMemoryStateStore::new(ctx.clock));
        let store: std::sync::Arc<dyn contract::StateStore> = std::sync::Arc::new(store);
        Ok(contract::Component::new(Block::ACTORS)
            .with(std::sync::Arc::new(reference_runtime::actors::ActorStore(store))))
    });
    let spec = "components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: forgetful}, spec: {type: actors.forgetful, version: v1}}
    drivers: [in-process]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: durable}, spec: {type: actors.in-memory, version: v1}}
    drivers: [in-process]
";
    let filter = Filter { patterns: vec!["actors.reminders.durable".into()], ..Filter::default() };
    let report = common::certify(&registry, spec, &filter).await;
    common::expect_fail(&report, "forgetful::actors.reminders.durable", "is gone");
    assert_eq!(common::record(&report, "durable::actors.reminders.durable").verdict, Verdict::Pass);
}
