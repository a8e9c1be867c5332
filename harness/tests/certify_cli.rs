//! The `certify` binary as a user runs it: the README's main command, the example spec, a
//! sidecar certified black-box, and clear errors for bad input.

mod cli_common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli_common::{certify, validate_against_schema};

#[test]
fn run_certifies_the_builtin_store_through_both_drivers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = certify(&["run", "--report-dir", dir.path().to_str().expect("utf8")]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(" 0 failed, 0 inconclusive"), "{}", out.stdout);
    for line in [
        "PASS [",
        "statestore::state.etag.stale-write-rejected",
        "statestore@http::state.etag.stale-write-rejected",
        "SKIP [",
    ] {
        assert!(out.stdout.contains(line), "`{line}` missing:\n{}", out.stdout);
    }
    validate_against_schema(&dir.path().join("report.json"));
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).expect("summary.md");
    assert!(summary.starts_with("# certify: PASSED"), "{summary}");
    assert!(summary.contains("| statestore | http |"), "{summary}");
    assert!(std::fs::read_to_string(dir.path().join("junit.xml")).expect("junit").contains("<testsuites"));
}

#[test]
fn the_example_spec_runs_and_filters_select_trials() {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/in-memory.yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = certify(&[
        "run",
        "--spec",
        spec,
        "--report-dir",
        dir.path().to_str().expect("utf8"),
        "state.etag",
        "--skip",
        "@http",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = report_in(dir.path());
    assert!(report.cases.iter().all(|c| c.trial.contains("state.etag") && c.driver == "in-process"));
    assert!(report.summary.passed >= 10);
    let none = certify(&["run", "--spec", spec, "--report-dir", dir.path().to_str().expect("utf8"), "no-such-case"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("no case matched"), "{}", none.stderr);
}

/// Starts a reference runtime on loopback over the default in-memory components plus the
/// Component YAML `extra`, delivering to `app_port`; answers its URL.
/// The report a run wrote into `dir`.
fn report_in(dir: &Path) -> reports::Report {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report")).expect("parse")
}

/// How many trials whose name starts with `prefix` passed.
fn passed_under(report: &reports::Report, prefix: &str) -> usize {
    report.cases.iter().filter(|c| c.trial.starts_with(prefix) && c.verdict == reports::Verdict::Pass).count()
}

async fn start_sidecar(app_port: Option<u16>, extra: Option<&str>) -> String {
    let sidecar = build_sidecar(app_port, extra, reference_runtime::sidecar::AppProtocol::Http).await;
    sidecar.serve_on_loopback().await.expect("serve").0
}

/// A sidecar calling its app over gRPC; answers its gRPC API's `grpc://` address.
async fn start_sidecar_with_grpc_app(app_port: u16, extra: Option<&str>) -> String {
    let sidecar = build_sidecar(Some(app_port), extra, reference_runtime::sidecar::AppProtocol::Grpc).await;
    let (_, grpc, _) = sidecar.serve_both_on_loopback().await.expect("serve");
    grpc.replacen("http://", "grpc://", 1)
}

async fn build_sidecar(
    app_port: Option<u16>,
    extra: Option<&str>,
    app_protocol: reference_runtime::sidecar::AppProtocol,
) -> Arc<reference_runtime::sidecar::Sidecar> {
    let mut resources = reference_runtime::default_resources().expect("defaults");
    if let Some(yaml) = extra {
        let parsed = contract::Resources::parse(Path::new("extra.yaml"), yaml).expect("component");
        resources.components.extend(parsed.components);
    }
    let components = reference_runtime::builtin_registry()
        .build_all(&resources.components, Arc::new(contract::SystemClock))
        .await
        .expect("build");
    let config = reference_runtime::sidecar::SidecarConfig {
        app_id: "blackbox".into(),
        app_port,
        app_protocol,
        ..Default::default()
    };
    reference_runtime::sidecar::Sidecar::new(config, components, Vec::new())
}

#[test]
fn a_running_sidecar_is_certified_black_box() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = rt.block_on(start_sidecar(None, None));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = certify(&[
        "run",
        "--sidecar",
        &url,
        "--state",
        "statestore",
        "--report-dir",
        dir.path().to_str().expect("utf8"),
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("statestore@http::state.etag.stale-write-rejected"), "{}", out.stdout);
    let report = report_in(dir.path());
    assert_eq!(
        report.components[0].claims,
        ["etag", "first-write", "transaction", "ttl", "query", "delete-with-prefix", "keyslike"],
        "claims from the sidecar's capabilities"
    );
    // The summary says so, and how to pin them.
    assert_eq!(report.components[0].claims_from, "advertised");
    assert!(
        out.stdout.contains(
            "the claims of `statestore` are what it advertised (etag,first-write,transaction,ttl,query,delete-with-prefix,keyslike): pin them in CI with --features"
        ),
        "{}",
        out.stdout
    );
    // --features overrides the claims: claiming less makes the negative checks run, and fail.
    let out = certify(&[
        "run",
        "--sidecar",
        &url,
        "--state",
        "statestore",
        "--features",
        "etag",
        "--report-dir",
        dir.path().to_str().expect("utf8"),
        "features",
    ]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("does not claim `ttl` but advertises TTL"), "{}", out.stdout);
    let out = certify(&["run", "--sidecar", &url, "--state", "nostore"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("has no state store named `nostore` (its state stores: statestore)"), "{}", out.stderr);
    drop(rt);
}

#[test]
fn an_unreachable_sidecar_fails_within_seconds() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let started = Instant::now();
    let out = certify(&["run", "--sidecar", &format!("http://127.0.0.1:{port}"), "--state", "statestore"]);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains(&format!("cannot reach the sidecar at http://127.0.0.1:{port}")), "{}", out.stderr);
}

#[test]
fn bad_specs_and_flags_fail_with_the_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, "components:\n  - file: c.yaml\n    claims: [etag, acid]\n").expect("write");
    let out = certify(&["run", "--spec", spec.to_str().expect("utf8")]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("spec.yaml`: components[0].claims[1]: unknown variant `acid`")
            && out.stderr.contains("line 3"),
        "{}",
        out.stderr
    );
    std::fs::write(&spec, "components:\n  - file: c.yaml\n").expect("write");
    std::fs::write(
        dir.path().join("c.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: s\nspec:\n  type: state.nope\n",
    )
    .expect("write");
    let out = certify(&["run", "--spec", spec.to_str().expect("utf8")]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("c.yaml`: component `s`: field `spec.type`: unknown component type `state.nope`"),
        "{}",
        out.stderr
    );
    let out = certify(&["run", "--sidecar", "http://127.0.0.1:1", "--state", "s", "--features", "acid"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("unknown feature `acid`"), "{}", out.stderr);
}

#[test]
fn list_prints_every_case() {
    let out = certify(&["list"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.lines().any(|l| l.starts_with("state.etag.stale-write-rejected")), "{}", out.stdout);
    let out = certify(&["list", "--json"]);
    let cases: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    assert!(cases.len() > 50);
    assert!(
        cases.iter().all(|c| c["rule"].as_str().is_some_and(|r| r.contains("MUST"))),
        "every rule is a MUST sentence"
    );
    let out = certify(&["types"]);
    assert!(out.stdout.lines().any(|l| l == "state.in-memory"));
}

#[test]
fn a_sidecars_components_and_service_invocation_are_certified_black_box() {
    // The sidecar delivers to an app port where certify, started afterwards, serves the app.
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/fixtures/secrets.json");
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: fixture-secrets}}\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - {{name: secretsFile, value: \"{fixture}\"}}\n  - {{name: multiValued, value: \"true\"}}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: queue}}\nspec: {{type: bindings.in-memory, version: v1}}\n"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = rt.block_on(start_sidecar(Some(app_port), Some(&yaml)));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = app_port.to_string();
    let args = [
        "run",
        "--sidecar",
        &url,
        "--pubsub",
        "pubsub",
        "--app-port",
        &port,
        "--secrets",
        "fixture-secrets",
        "--lock",
        "lockstore",
        "--binding",
        "queue",
        "--invoke",
        "--features",
        "multiplekeyvaluespersecret,bulkpublish,bulksubscribe,ordering,create,read",
        "--report-dir",
        dir.path().to_str().expect("utf8"),
    ];
    let out = certify(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = report_in(dir.path());
    let passed = |prefix: &str| passed_under(&report, prefix);
    assert_eq!(passed("fixture-secrets@http::"), 6, "{}", out.stdout);
    assert_eq!(passed("lockstore@http::"), 13, "{}", out.stdout);
    // ping, unknown operation, create, its input events (delivered, every one, redelivered), the
    // trace through them, and the HTTP API's errors.
    assert_eq!(passed("queue@http::"), 8, "{}", out.stdout);
    // Service invocation, to certify as the app `blackbox`.
    assert_eq!(passed("blackbox@http::invocation."), 10, "{}", out.stdout);
    assert!(passed("pubsub@http::") >= 14, "{}", out.stdout);
    let redelivered = report.cases.iter().find(|c| c.id == "pubsub.redelivery.retry-redelivered").expect("ran");
    assert_eq!(redelivered.verdict, reports::Verdict::Pass);
    // A missing store is named, with what the sidecar has.
    let out = certify(&["run", "--sidecar", &url, "--secrets", "nope"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no secretstores store named `nope`"), "{}", out.stderr);
    // Reading a binding's events needs the app port.
    let out = certify(&["run", "--sidecar", &url, "--binding", "queue", "--features", "create,read"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("needs --app-port"), "{}", out.stderr);
}

#[test]
fn a_sidecar_with_a_grpc_app_is_certified_with_certify_serving_app_callback() {
    // `--app-protocol grpc`: the sidecar calls certify's AppCallback on the app port for
    // deliveries, input binding events and invocations.
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let queue = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: queue}\nspec: {type: bindings.in-memory, version: v1}\n";
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = rt.block_on(start_sidecar_with_grpc_app(app_port, Some(queue)));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = app_port.to_string();
    let args = [
        "run",
        "--sidecar",
        &url,
        "--app-port",
        &port,
        "--app-protocol",
        "grpc",
        "--pubsub",
        "pubsub",
        "--binding",
        "queue",
        "--invoke",
        "--jobs-api",
        "--features",
        "bulkpublish,bulksubscribe,ordering,create,read",
        "--report-dir",
        dir.path().to_str().expect("utf8"),
    ];
    let out = certify(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = report_in(dir.path());
    let passed = |prefix: &str| passed_under(&report, prefix);
    // Streaming's 15 and the trace context beside a delivery (O6), which only an app sees.
    assert_eq!(passed("pubsub@grpc::"), 17, "{}", out.stdout);
    // ping, unknown operation, create, its input events (delivered, every one, redelivered), and
    // the trace through them.
    assert_eq!(passed("queue@grpc::"), 7, "{}", out.stdout);
    assert_eq!(passed("blackbox@grpc::invocation."), 7, "{}", out.stdout);
    // Jobs scheduled over gRPC, their triggers at certify's OnJobEvent.
    assert_eq!(passed("blackbox@grpc::jobs."), 8, "{}", out.stdout);
    // 201 has no gRPC form: the case says so instead of failing.
    let status = report.cases.iter().find(|c| c.id == "invocation.status.passed-through").expect("listed");
    assert_eq!(status.verdict, reports::Verdict::Skipped);
    assert!(status.reason.as_deref().is_some_and(|r| r.contains("--app-protocol grpc")), "{:?}", status.reason);
    for id in ["pubsub.redelivery.retry-redelivered", "pubsub.bulk.subscribe-batches"] {
        let case = report.cases.iter().find(|c| c.id == id);
        assert_eq!(case.map(|c| c.verdict), Some(reports::Verdict::Pass), "{id}: {}", out.stdout);
    }
}

#[test]
fn a_sidecars_jobs_api_is_certified_black_box() {
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = rt.block_on(start_sidecar(Some(app_port), None));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = app_port.to_string();
    let args = [
        "run",
        "--sidecar",
        &url,
        "--jobs-api",
        "--app-port",
        &port,
        "--report-dir",
        dir.path().to_str().expect("utf8"),
    ];
    let out = certify(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = report_in(dir.path());
    // J1-J5 with ttl and the default policy, and the errors on the wire (J7); the restart (J6)
    // needs a scheduler certify runs.
    assert_eq!(passed_under(&report, "blackbox@http::jobs."), 9, "{}", out.stdout);
}

/// A proxy in front of a sidecar that mangles service invocation: it drops query strings,
/// turns every 5xx into 500, and drops the app's `x-certify-*` reply headers.
async fn start_mangling_proxy(upstream: String) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let client = reqwest::Client::new();
    let forward = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let invoking = uri.path().starts_with("/v1.0/invoke/");
            let path = match (invoking, uri.query()) {
                (false, Some(q)) => format!("{}?{q}", uri.path()),
                _ => uri.path().to_owned(),
            };
            let mut request = client.request(method, format!("{upstream}{path}")).body(body);
            for (k, v) in headers.iter().filter(|(k, _)| *k != "host" && *k != "content-length") {
                request = request.header(k, v);
            }
            let response = request.send().await.expect("upstream answers");
            let mut status = response.status();
            if invoking && status.is_server_error() {
                status = StatusCode::INTERNAL_SERVER_ERROR;
            }
            let mut out = HeaderMap::new();
            for (k, v) in response.headers() {
                let mangled = invoking && k.as_str().starts_with("x-certify-");
                if !mangled && k != "content-length" && k != "transfer-encoding" {
                    out.insert(k.clone(), v.clone());
                }
            }
            (status, out, response.bytes().await.expect("body")).into_response()
        }
    };
    use axum::response::IntoResponse;
    let router = axum::Router::new().fallback(forward);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[test]
fn a_sidecar_that_mangles_invocations_is_caught() {
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let proxy = rt.block_on(async {
        let url = start_sidecar(Some(app_port), None).await;
        start_mangling_proxy(url).await
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let port = app_port.to_string();
    let out = certify(&[
        "run",
        "--sidecar",
        &proxy,
        "--invoke",
        "--app-port",
        &port,
        "--report-dir",
        dir.path().to_str().expect("utf8"),
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = report_in(dir.path());
    let verdict = |id: &str| {
        let case = report.cases.iter().find(|c| c.id == id).expect("ran");
        (case.verdict, case.reason.clone().unwrap_or_default())
    };
    for (id, reason) in [
        ("invocation.query.verbatim", "the query string the app received"),
        ("invocation.status.passed-through", "the status the caller saw: expected 503, saw 500"),
        ("invocation.reply-headers.passed-through", "`x-certify-reply` header at the caller"),
    ] {
        let (v, r) = verdict(id);
        assert_eq!(v, reports::Verdict::Fail, "{id}: {r}");
        assert!(r.contains(reason), "{id}: `{r}` lacks `{reason}`");
    }
    // What it leaves alone passes.
    for id in ["invocation.verbs.passed-through", "invocation.body.byte-exact", "invocation.headers.forwarded"] {
        assert_eq!(verdict(id).0, reports::Verdict::Pass, "{id}: {}", verdict(id).1);
    }
}

#[test]
fn a_sidecars_redis_configuration_store_is_certified_black_box() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let options = fixtures::Options {
        ready_timeout: Duration::from_secs(30),
        run_id: "blackbox-config".into(),
        settings: Default::default(),
    };
    let redis =
        match rt.block_on(fixtures::provision(fixtures::BackendKind::Redis, fixtures::Provider::Process, &options)) {
            Ok(r) => r,
            Err(e) if std::env::var("CERTIFY_REQUIRE_BACKENDS").is_err() => {
                fixtures::skip_test(&e.to_string());
                return;
            }
            Err(e) => panic!("{e}"),
        };
    let component = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: settings}}\nspec:\n  type: configuration.redis\n  version: v1\n  metadata:\n  - {{name: redisHost, value: \"{}\"}}\n",
        redis.endpoint.host
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = dir.path().join("writer.yaml");
    std::fs::write(&writer, &component).expect("write");
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let url = rt.block_on(start_sidecar(Some(app_port), Some(&component)));
    let port = app_port.to_string();
    let report_dir = dir.path().join("report");
    let base = ["run", "--sidecar", &url, "--configuration", "settings", "--app-port", &port, "--report-dir"];
    let mut args = base.to_vec();
    args.extend([report_dir.to_str().expect("utf8"), "--configuration-writer", writer.to_str().expect("utf8")]);
    let out = certify(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("8 passed, 0 failed"), "{}", out.stdout);
    // Without a writer, the cases that write say how to give one, and the run says it does not
    // certify them; --require-all (as in CI) fails it.
    let mut args = base.to_vec();
    args.push(report_dir.to_str().expect("utf8"));
    let out = certify(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("give --configuration-writer"), "{}", out.stdout);
    assert!(out.stdout.contains("not certified: 7 cases could not run"), "{}", out.stdout);
    let summary = std::fs::read_to_string(report_dir.join("summary.md")).expect("summary");
    assert!(summary.contains("not certified: 7 cases could not run"), "{summary}");
    args.push("--require-all");
    let out = certify(&args);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    // A writer that is not a configuration store is named.
    std::fs::write(&writer, component.replace("configuration.redis", "state.redis")).expect("write");
    let mut args = base.to_vec();
    args.extend([report_dir.to_str().expect("utf8"), "--configuration-writer", writer.to_str().expect("utf8")]);
    let out = certify(&args);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is not a configuration store certify can write to"), "{}", out.stderr);
    drop(redis);
}
