//! The reference sidecar and pluggable components: it discovers them in the sockets folder as
//! daprd does, they pass their suites over HTTP through it, a stale socket is named, and a
//! component's kit error reaches the HTTP caller with its status and code.

mod pluggable_common;

use std::time::{Duration, Instant};

use reports::Verdict;

use pluggable_common::*;

#[test]
fn the_reference_sidecar_discovers_pluggable_components_and_they_pass_over_http() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sockets = tempfile::tempdir().expect("tempdir");
    let path = socket(sockets.path(), "memref");
    serve(&runtime, &path, reference_runtime::pluggable_services(Some(secrets_file())));
    // Not a socket, and a sub-folder: both skipped, as daprd skips them.
    std::fs::write(sockets.path().join("README"), "not a socket").expect("write");
    std::fs::create_dir(sockets.path().join("nested")).expect("mkdir");
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let (registry, found) =
        runtime.block_on(reference_runtime::registry_with_pluggables(sockets.path())).expect("discovery");
    assert_eq!(found[0].types, ["state.memref", "pubsub.memref", "bindings.memref", "secretstores.memref"]);
    assert!(registry.types().any(|t| t == "state.in-memory"), "the builtin types stay");
    let url = start_sidecar(&runtime, sockets.path(), PLUGGABLE_RESOURCES, Some(app_port));
    let port = app_port.to_string();
    let run = certify(&[
        "run",
        "--sidecar",
        &url,
        "--state",
        "plugstate",
        "--pubsub",
        "plugpubsub",
        "--app-port",
        &port,
        "--binding",
        "plugbinding",
        "--secrets",
        "plugsecrets",
        "--features",
        "etag,first-write,transaction,ttl,query,delete-with-prefix,keyslike,bulkpublish,bulksubscribe,ordering,multiplekeyvaluespersecret,create,read",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("report");
    for (component, at_least) in [("plugstate", 45), ("plugpubsub", 15), ("plugbinding", 5), ("plugsecrets", 5)] {
        let n = passed(&report, component);
        assert!(n >= at_least, "{component}: {n} passed\n{}", run.stdout);
    }
    // The sidecar dead-letters for the pluggable broker, as daprd does.
    let (verdict, reason) = trial(&report, "pubsub.redelivery.dead-letter-after-max-attempts");
    assert_eq!(verdict, Verdict::Pass, "{reason}");
}

#[test]
fn a_stale_socket_in_the_sockets_folder_is_named() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sockets = tempfile::tempdir().expect("tempdir");
    let stale = socket(sockets.path(), "gone");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let started = Instant::now();
    let error = runtime
        .block_on(reference_runtime::registry_with_pluggables(sockets.path()))
        .expect_err("a socket nobody listens on is an error");
    assert!(error.to_string().contains("gone.sock"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let (_, found) = runtime
        .block_on(reference_runtime::registry_with_pluggables(&sockets.path().join("missing")))
        .expect("a missing folder holds no components");
    assert!(found.is_empty());
}
