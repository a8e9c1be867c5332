//! Sidecars that answer the HTTP API wrongly, in the test tree: a proxy in front of the
//! reference sidecar rewrites one kind of answer. The `*.http-api.*` cases must fail on each,
//! with a reason that names the answer, and pass through a proxy that rewrites nothing.

mod common;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use contract::Block;
use harness::Filter;
use reports::{Report, Verdict};
use serde_json::{Value, json};

/// What the proxy changes in an answer, given the request's method and path.
type Lie = fn(&str, &str, &mut StatusCode, &mut HeaderMap, &mut Bytes);
/// Request headers the proxy drops on the way in.
type Dropped = &'static [&'static str];

/// Starts the reference sidecar, delivering to the app on `app_port`, and a proxy in front of
/// it that tells `lie`; answers the proxy's URL.
async fn lying_sidecar(lie: Lie, app_port: u16, drop: Dropped) -> String {
    let sidecar = common::liar_sidecar(app_port).await;
    let (upstream, _) = sidecar.serve_on_loopback().await.expect("serve the sidecar");
    let proxy = axum::Router::new().fallback(forward).with_state((upstream, lie, reqwest::Client::new(), drop));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, proxy).await });
    url
}

async fn forward(
    State((upstream, lie, client, drop)): State<(String, Lie, reqwest::Client, Dropped)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let body = axum::body::to_bytes(body, 1 << 24).await.unwrap_or_default();
    let answer = client
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .headers(
            parts
                .headers
                .iter()
                .filter(|(name, _)| !drop.contains(&name.as_str()))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        )
        .body(body)
        .send()
        .await
        .expect("the reference sidecar answers");
    let (mut status, mut headers) = (answer.status(), answer.headers().clone());
    let mut body = answer.bytes().await.unwrap_or_default();
    lie(parts.method.as_str(), &path, &mut status, &mut headers, &mut body);
    headers.remove("content-length");
    (status, headers, body).into_response()
}

fn set_json(headers: &mut HeaderMap, body: &mut Bytes, value: &Value) {
    *body = Bytes::from(value.to_string());
    headers.insert("content-type", HeaderValue::from_static("application/json"));
}

async fn certify(lie: Lie) -> Report {
    certify_dropping(lie, &[]).await
}

/// Certifies through a proxy that also drops the request headers `drop` on the way in.
async fn certify_dropping(lie: Lie, drop: Dropped) -> Report {
    // A free port for the app certify serves: the sidecar must know it before certify listens.
    let app_port = common::free_port();
    let url = lying_sidecar(lie, app_port, drop).await;
    let components = [
        (Block::STATE, "store"),
        (Block::LOCK, "locks"),
        (Block::PUBSUB, "broker"),
        (Block::BINDINGS, "queue"),
        (Block::SECRET_STORES, "vault"),
        // Service invocation's component is the sidecar's app, certify (named by the app id).
        (Block::INVOCATION, ""),
        (Block::OBSERVABILITY, "sidecar"),
    ];
    let patterns =
        ["http-api", "trace-context", "cloudevent.envelope", "observability.trace"].map(String::from).to_vec();
    common::certify_sidecar(url, &components, app_port, &Filter { patterns, ..Filter::default() }).await
}

const TRIAL: &str = "store@http::state.http-api";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_proxy_passes_every_case() {
    let report = certify(|_, _, _, _, _| {}).await;
    let ran: Vec<_> = report.cases.iter().filter(|c| c.verdict != Verdict::Skipped).collect();
    assert!(ran.len() >= 21, "{ran:?}");
    for trial in ["liar@http::invocation.trace-context.propagated", "broker@http::pubsub.cloudevent.envelope"] {
        assert!(ran.iter().any(|c| c.trial == trial), "{trial} did not run");
    }
    for case in ran {
        assert_eq!(case.verdict, Verdict::Pass, "{case:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_answered_as_server_errors_are_caught() {
    let report = certify(|_, _, status, _, _| {
        if status.is_client_error() {
            *status = StatusCode::INTERNAL_SERVER_ERROR;
        }
    })
    .await;
    for case in ["unknown-store", "illegal-key", "key-required", "save-body-malformed", "etag-mismatch-409"] {
        common::expect_fail(&report, &format!("{TRIAL}.{case}"), "expected status");
    }
    for trial in [
        "locks@http::lock.http-api.bad-requests",
        "broker@http::pubsub.http-api.publish-answers",
        "broker@http::pubsub.http-api.bulk-publish-answers",
        "queue@http::bindings.http-api.errors",
        "vault@http::secrets.http-api.answers",
    ] {
        common::expect_fail(&report, trial, "expected status");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_without_an_error_code_or_message_are_caught() {
    let report = certify(|_, _, status, headers, body| {
        if !status.is_success() {
            set_json(headers, body, &json!({"message": "something went wrong"}));
        }
    })
    .await;
    for case in ["unknown-store", "bad-ttl-is-save-error", "transaction-answers", "query-answers"] {
        common::expect_fail(&report, &format!("{TRIAL}.{case}"), "expected `errorCode`");
    }
    for trial in ["locks@http::lock.http-api.bad-requests", "queue@http::bindings.http-api.errors"] {
        common::expect_fail(&report, trial, "expected `errorCode`");
    }
    let report = certify(|_, _, status, headers, body| {
        if let Some(mut value) = serde_json::from_slice::<Value>(body).ok().filter(|_| !status.is_success()) {
            value["message"] = json!("");
            set_json(headers, body, &value);
        }
    })
    .await;
    for case in ["unknown-store", "bad-ttl-is-save-error", "transaction-answers", "query-answers"] {
        common::expect_fail(&report, &format!("{TRIAL}.{case}"), "without a `message`");
    }
    for trial in ["locks@http::lock.http-api.bad-requests", "queue@http::bindings.http-api.errors"] {
        common::expect_fail(&report, trial, "without a `message`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_as_plain_text_are_caught() {
    let report = certify(|_, _, status, headers, _| {
        if !status.is_success() {
            headers.insert("content-type", HeaderValue::from_static("text/plain"));
        }
    })
    .await;
    common::expect_fail(&report, &format!("{TRIAL}.unknown-store"), "`Content-Type` is not application/json");
    common::expect_fail(&report, "locks@http::lock.http-api.bad-requests", "`Content-Type` is not application/json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_content_answered_as_an_empty_object_is_caught() {
    let report = certify(|_, path, status, headers, body| {
        if *status == StatusCode::NO_CONTENT && !path.contains("healthz") {
            *status = StatusCode::OK;
            set_json(headers, body, &json!({}));
        }
    })
    .await;
    for case in ["save-answers-204", "get-answers", "delete-answers-204", "transaction-answers", "query-answers"] {
        common::expect_fail(&report, &format!("{TRIAL}.{case}"), "expected status 204");
    }
    for trial in ["broker@http::pubsub.http-api.publish-answers", "broker@http::pubsub.http-api.bulk-publish-answers"] {
        common::expect_fail(&report, trial, "expected status 204");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_conflict_answered_409_is_caught() {
    let report = certify(|_, path, status, _, body| {
        if path.ends_with("/transaction") && *status == StatusCode::INTERNAL_SERVER_ERROR {
            *status = StatusCode::CONFLICT;
            *body = Bytes::from(String::from_utf8_lossy(body).replace("ERR_STATE_TRANSACTION", "ERR_STATE_SAVE"));
        }
    })
    .await;
    common::expect_fail(&report, &format!("{TRIAL}.transaction-etag-is-500"), "expected status 500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_bodies_are_caught() {
    // Fields daprd leaves out when empty, sent anyway.
    let report = certify(|_, path, status, headers, body| {
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else { return };
        if path.ends_with("/bulk") && status.is_success() {
            value.as_array_mut().into_iter().flatten().for_each(|item| item["etag"] = item["etag"].take());
            set_json(headers, body, &value);
        } else if path.ends_with("/query") && status.is_success() {
            value["metadata"] = json!({});
            set_json(headers, body, &value);
        } else if path.contains("/unlock/") {
            // The status enum's names instead of its numbers.
            let names = ["SUCCESS", "LOCK_DOES_NOT_EXIST", "LOCK_BELONGS_TO_OTHERS"];
            if let Some(n) = value["status"].as_u64().and_then(|n| names.get(n as usize)) {
                set_json(headers, body, &json!({"status": n}));
            }
        } else if status.is_success() && headers.get("content-type").is_some() && path.contains("/v1.0/state/") {
            headers.insert("content-type", HeaderValue::from_static("text/plain"));
        }
    })
    .await;
    common::expect_fail(&report, &format!("{TRIAL}.bulk-get-shape"), "the missing key's item");
    common::expect_fail(&report, &format!("{TRIAL}.query-answers"), "an empty `metadata`");
    common::expect_fail(&report, &format!("{TRIAL}.get-answers"), "`Content-Type`");
    common::expect_fail(&report, "locks@http::lock.http-api.answers", "another owner's unlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_without_the_actor_capability_or_version_is_caught() {
    let report = certify(|method, path, _, headers, body| {
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else { return };
        if method == "GET" && path == "/v1.0/metadata" {
            for component in value["components"].as_array_mut().into_iter().flatten() {
                if let Some(capabilities) = component["capabilities"].as_array_mut() {
                    capabilities.retain(|c| c != "ACTOR");
                }
            }
            set_json(headers, body, &value);
        }
    })
    .await;
    common::expect_fail(&report, &format!("{TRIAL}.metadata"), "`ACTOR` among the store's capabilities");
    let report = certify(|method, path, _, headers, body| {
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else { return };
        if method == "GET" && path == "/v1.0/metadata" {
            value["runtimeVersion"] = json!("");
            set_json(headers, body, &value);
        }
    })
    .await;
    common::expect_fail(&report, &format!("{TRIAL}.metadata"), "no `runtimeVersion`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_that_starts_new_traces_is_caught() {
    // The caller's traceparent never reaches the sidecar: it starts a trace of its own.
    let report = certify_dropping(|_, _, _, _, _| {}, &["traceparent"]).await;
    common::expect_fail(&report, "liar@http::invocation.trace-context.propagated", "the trace id of the traceparent");
    common::expect_fail(&report, "sidecar@http::observability.trace.answered", "the trace id answered");
    common::expect_fail(&report, "broker@http::pubsub.cloudevent.envelope", "does not carry the publisher's trace id");
    // Answers without a traceparent.
    let report = certify(|_, _, _, headers, _| {
        headers.remove("traceparent");
    })
    .await;
    common::expect_fail(&report, "sidecar@http::observability.trace.answered", "the trace id answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_that_loses_a_bindings_trace_is_caught() {
    const TRIAL: &str = "queue@http::bindings.trace.carried";
    for (drop, verdict) in [(&[][..], Verdict::Pass), (&["traceparent"][..], Verdict::Fail)] {
        let app_port = common::free_port();
        let source = harness::session::SidecarSource {
            url: lying_sidecar(|_, _, _, _, _| {}, app_port, drop).await,
            components: vec![(Block::BINDINGS, "queue".into())],
            app_port: Some(app_port),
            claims: Some([suites::Claim::Create, suites::Claim::Read].into()),
            ..Default::default()
        };
        let filter = Filter { patterns: vec!["bindings.trace".into()], ..Filter::default() };
        let record = common::record(&common::certify_source(source, &filter).await, TRIAL);
        assert_eq!(record.verdict, verdict, "dropping {drop:?}: {record:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_that_drops_tracestate_or_baggage_is_caught() {
    let report = certify_dropping(
        |_, _, _, headers, _| {
            headers.remove("baggage");
        },
        &["tracestate"],
    )
    .await;
    common::expect_fail(&report, "broker@http::pubsub.cloudevent.envelope", "the envelope's tracestate");
    common::expect_fail(&report, "liar@http::invocation.trace-context.propagated", "the tracestate the app received");
    common::expect_fail(&report, "sidecar@http::observability.trace.baggage", "the answer's baggage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_that_do_not_count_the_calls_are_caught() {
    // A metrics endpoint that never moves: the sidecar's calls go uncounted.
    let frozen = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            "dapr_http_server_request_count{app_id=\"liar\",method=\"GET\",status=\"200\"} 7\n"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics = format!("http://{}/metrics", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, frozen).await });
    let app_port = common::free_port();
    let url = lying_sidecar(|_, _, _, _, _| {}, app_port, &[]).await;
    let source = harness::session::SidecarSource {
        url,
        components: vec![(Block::OBSERVABILITY, "sidecar".into())],
        metrics: Some(metrics),
        ..Default::default()
    };
    let report = common::certify_source(source, &Filter::default()).await;
    common::expect_fail(&report, "sidecar@http::observability.metrics.counted", "went from 7 to 7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_that_drops_tracestate_on_delivery_is_caught() {
    // Between the sidecar and certify's app, deliveries lose their `tracestate`.
    let app_port = common::free_port();
    let upstream = format!("http://127.0.0.1:{app_port}");
    let honest: Lie = |_, _, _, _, _| {};
    let dropping: Dropped = &["tracestate"];
    let proxy = axum::Router::new().fallback(forward).with_state((upstream, honest, reqwest::Client::new(), dropping));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy_port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, proxy).await });
    let sidecar = common::liar_sidecar(proxy_port).await;
    let (url, _) = sidecar.serve_on_loopback().await.expect("serve the sidecar");
    let filter = Filter { patterns: vec!["pubsub.trace".into()], ..Filter::default() };
    let report = common::certify_sidecar(url, &[(Block::PUBSUB, "broker")], app_port, &filter).await;
    common::expect_fail(&report, "broker@http::pubsub.trace.delivered", "the delivery's tracestate");
}
