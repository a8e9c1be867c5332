//! Sidecars whose Jobs API lies, in the test tree: the jobs suite must catch each through the
//! HTTP driver and pass an honest one. A proxy between the reference sidecar and certify's
//! app fires every trigger twice; a proxy in front of the sidecar's API moves every due time
//! and period earlier, so triggers come early.

mod common;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use contract::Block;
use harness::Filter;
use reports::{Report, Verdict};

/// What a proxy does to a request: how many times to send it (0: answer 204 without), and its
/// body.
type Lie = fn(&str, &str, &mut Bytes) -> usize;

fn honest(_: &str, _: &str, _: &mut Bytes) -> usize {
    1
}

/// Request headers a proxy drops on the way.
type Dropped = &'static [&'static str];

/// A proxy to `upstream` that tells `lie` and drops the headers `drop`; answers its port.
async fn proxy(upstream: String, lie: Lie, drop: Dropped) -> u16 {
    let router = axum::Router::new().fallback(forward).with_state((upstream, lie, reqwest::Client::new(), drop));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

async fn forward(
    State((upstream, lie, client, drop)): State<(String, Lie, reqwest::Client, Dropped)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let mut body = axum::body::to_bytes(body, 1 << 24).await.unwrap_or_default();
    let times = lie(parts.method.as_str(), &path, &mut body);
    let mut headers = parts.headers.clone();
    headers.remove("content-length");
    for name in drop {
        headers.remove(*name);
    }
    let mut last = None;
    for _ in 0..times {
        let sent = client
            .request(parts.method.clone(), format!("{upstream}{path}"))
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        last = Some(sent);
    }
    match last {
        Some(Ok(answer)) => {
            let status = answer.status();
            let mut headers = answer.headers().clone();
            headers.remove("content-length");
            (status, headers, answer.bytes().await.unwrap_or_default()).into_response()
        }
        // Swallowed on purpose: answered as done.
        None => axum::http::StatusCode::NO_CONTENT.into_response(),
        Some(Err(_)) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// Certifies the jobs of a reference sidecar with `to_app` between it and certify's app and
/// `to_api` in front of its API.
async fn certify(to_app: Lie, to_api: Lie) -> Report {
    certify_dropping(to_app, to_api, &[]).await
}

/// [`certify`], with the headers `drop` taken off every trigger on its way to the app.
async fn certify_dropping(to_app: Lie, to_api: Lie, drop: Dropped) -> Report {
    let app_port = common::free_port();
    let app_side = proxy(format!("http://127.0.0.1:{app_port}"), to_app, drop).await;
    let sidecar = common::liar_sidecar(app_side).await;
    let (upstream, _) = sidecar.serve_on_loopback().await.expect("serve the sidecar");
    let api = proxy(upstream, to_api, &[]).await;
    let jobs = [(Block::JOBS, "")];
    common::certify_sidecar(format!("http://127.0.0.1:{api}"), &jobs, app_port, &Filter::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_scheduler_passes_every_case() {
    let report = certify(honest, honest).await;
    assert_eq!(report.cases.len(), 10, "{:?}", report.cases);
    for case in &report.cases {
        // certify cannot restart a sidecar it does not run.
        let expected = if case.trial.ends_with("jobs.durable.restart") { Verdict::Skipped } else { Verdict::Pass };
        assert_eq!(case.verdict, expected, "{case:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_loses_jobs_on_restart_is_caught() {
    // A scheduler that keeps nothing: restarted, it starts empty.
    let mut registry = reference_runtime::builtin_registry();
    registry.register("jobs.forgetful", |_: contract::ComponentContext| async move {
        Ok(contract::Component::new(Block::JOBS)
            .with(std::sync::Arc::new(reference_runtime::jobs::Scheduler::default())))
    });
    let spec = "components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: forgetful}, spec: {type: jobs.forgetful, version: v1}}
    drivers: [in-process]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: durable}, spec: {type: jobs.in-memory, version: v1}}
    drivers: [in-process]
";
    let filter = Filter { patterns: vec!["jobs.durable".into()], ..Filter::default() };
    let report = common::certify(&registry, spec, &filter).await;
    common::expect_fail(&report, "forgetful::jobs.durable.restart", "is gone");
    assert_eq!(common::record(&report, "durable::jobs.durable.restart").verdict, Verdict::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_fires_twice_is_caught() {
    let twice = |_: &str, path: &str, _: &mut Bytes| if path.starts_with("/job/") { 2 } else { 1 };
    let report = certify(twice, honest).await;
    common::expect_fail(&report, "liar@http::jobs.due-time.fires-once", "triggers of a job with a due time only");
    common::expect_fail(&report, "liar@http::jobs.repeats.counted", "`repeats: 2`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_fires_early_is_caught() {
    let early = |_: &str, path: &str, body: &mut Bytes| {
        if path.contains("/jobs/") {
            let text = String::from_utf8_lossy(body).replace("\"1s\"", "\"0s\"").replace("@every 1s", "@every 300ms");
            *body = Bytes::from(text);
        }
        1
    };
    let report = certify(honest, early).await;
    common::expect_fail(&report, "liar@http::jobs.due-time.fires-once", "before its due time");
    common::expect_fail(&report, "liar@http::jobs.repeats.counted", "before its due time");
}

/// Rewrites the body of every schedule request with `edit` (a JSON object).
fn rewrite_schedules(path: &str, body: &mut Bytes, edit: fn(&mut serde_json::Value)) {
    if path.contains("/jobs/")
        && let Ok(mut job) = serde_json::from_slice::<serde_json::Value>(body)
    {
        edit(&mut job);
        *body = Bytes::from(job.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_loses_data_is_caught() {
    let no_data = |_: &str, path: &str, body: &mut Bytes| {
        rewrite_schedules(path, body, |job| {
            job.as_object_mut().map(|o| o.remove("data"));
        });
        1
    };
    let report = certify(honest, no_data).await;
    common::expect_fail(&report, "liar@http::jobs.data.round-trip", "body is not JSON");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_ignores_failure_policies_is_caught() {
    let no_policy = |_: &str, path: &str, body: &mut Bytes| {
        rewrite_schedules(path, body, |job| {
            job.as_object_mut().map(|o| o.remove("failurePolicy"));
        });
        1
    };
    let report = certify(honest, no_policy).await;
    common::expect_fail(&report, "liar@http::jobs.failure-policy.bounded", "attempts with");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_ignores_ttl_is_caught() {
    let no_ttl = |_: &str, path: &str, body: &mut Bytes| {
        rewrite_schedules(path, body, |job| {
            job.as_object_mut().map(|o| o.remove("ttl"));
        });
        1
    };
    let report = certify(honest, no_ttl).await;
    common::expect_fail(&report, "liar@http::jobs.ttl.bounds", "with `ttl: 2.5s`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_whose_default_policy_is_drop_is_caught() {
    let drops = |_: &str, path: &str, body: &mut Bytes| {
        rewrite_schedules(path, body, |job| {
            if let Some(o) = job.as_object_mut() {
                o.entry("failurePolicy").or_insert_with(|| serde_json::json!({"drop": {}}));
            }
        });
        1
    };
    let report = certify(honest, drops).await;
    common::expect_fail(&report, "liar@http::jobs.failure-policy.default", "without a policy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_whose_triggers_carry_no_trace_is_caught() {
    let report = certify_dropping(honest, honest, &["traceparent"]).await;
    common::expect_fail(&report, "liar@http::jobs.trace.carried", "not a valid traceparent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_whose_delete_does_nothing_is_caught() {
    // DELETE answered 204 and never forwarded.
    let no_delete =
        |method: &str, path: &str, _: &mut Bytes| usize::from(!(method == "DELETE" && path.contains("/jobs/")));
    let report = certify(honest, no_delete).await;
    common::expect_fail(&report, "liar@http::jobs.overwrite.and-delete", "after delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_takes_bad_jobs_is_caught() {
    // A `name` in the body is taken out on the way, so the sidecar schedules what daprd refuses.
    let lenient = |_: &str, path: &str, body: &mut Bytes| {
        rewrite_schedules(path, body, |job| {
            job.as_object_mut().map(|o| o.remove("name"));
        });
        1
    };
    let report = certify(honest, lenient).await;
    common::expect_fail(&report, "liar@http::jobs.http-api.errors", "a name in the body");
}
