//! Real servers through the `certify` binary: every claimed case passes on Redis and
//! PostgreSQL; a missing server means skipped cases with the reason, never passes; a server
//! that never becomes ready fails only its components, with its last log lines; an interrupted
//! run leaves no server behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reports::{Report, Verdict};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/real-backends.yaml");

fn required() -> bool {
    std::env::var("CERTIFY_REQUIRE_BACKENDS").is_ok_and(|v| v == "1")
}

/// The providers to exercise: processes always; containers when Docker answers (or when
/// backends are required, so a missing daemon fails instead of passing quietly).
fn providers() -> Vec<&'static str> {
    let mut list = vec!["process"];
    if fixtures::docker_answers() || required() {
        list.push("testcontainers");
    }
    list
}

fn certify(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_certify"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CERTIFY_REDIS_URL")
        .env_remove("CERTIFY_POSTGRES_URL")
        .env_remove("CERTIFY_REQUIRE_BACKENDS");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report(dir: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report.json")).expect("parse")
}

#[test]
fn real_backend_components_pass_every_claimed_case_through_both_drivers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = certify(
        &["run", "--spec", SPEC, "--backends", "process", "--report-dir", dir.path().to_str().expect("utf8")],
        &[],
    );
    let report = report(dir.path());
    let ran: Vec<_> = report.cases.iter().filter(|c| c.verdict != Verdict::Skipped).collect();
    if ran.is_empty() && !required() {
        assert!(
            report.cases.iter().all(|c| c.reason.as_deref().is_some_and(|r| r.contains("is not installed"))),
            "{stdout}"
        );
        return;
    }
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let count = |component: &str, driver: &str, verdict: Verdict| {
        report.cases.iter().filter(|c| c.component == component && c.driver == driver && c.verdict == verdict).count()
    };
    let mut at_least: Vec<(&str, &str, usize)> = Vec::new();
    for driver in ["in-process", "http"] {
        at_least.extend([("redis-state", driver, 40), ("postgres-state", driver, 40), ("redis-lock", driver, 9)]);
    }
    for component in ["redis-pubsub", "rabbitmq-pubsub", "kafka-pubsub"] {
        at_least.extend([(component, "in-process", 15), (component, "http", 13)]);
    }
    // Bindings and configuration stores: exit code 0 says no claimed case failed; these counts
    // say the claimed ones ran rather than being skipped.
    at_least.extend([
        ("redis-binding", "in-process", 7),
        ("redis-binding", "http", 5),
        ("postgres-binding", "in-process", 4),
        ("postgres-binding", "http", 3),
        ("rabbitmq-binding", "in-process", 7),
        ("rabbitmq-binding-http", "http", 6),
        ("kafka-binding", "in-process", 7),
        ("kafka-binding-http", "http", 6),
        ("redis-config", "in-process", 7),
        ("redis-config", "http", 7),
        ("postgres-config", "in-process", 7),
        ("postgres-config", "http", 7),
    ]);
    for (component, driver, least) in at_least {
        let passed = count(component, driver, Verdict::Pass);
        assert!(passed >= least, "{component} through {driver}: only {passed} passed\n{stdout}");
    }
    for driver in ["in-process", "http"] {
        assert_eq!(count("redis-lock", driver, Verdict::Fail), 0, "redis-lock through {driver}\n{stdout}");
    }
    // Fault scenarios, after everything else: restarts and network faults through a proxy.
    for (component, passed) in [("redis-state", 5), ("postgres-state", 5), ("redis-pubsub", 2), ("rabbitmq-pubsub", 2)]
    {
        let seen = report.cases.iter().filter(|c| c.component == component && c.driver == "faults");
        let verdicts: Vec<_> = seen.map(|c| (c.id.clone(), c.verdict)).collect();
        assert_eq!(verdicts.iter().filter(|(_, v)| *v == Verdict::Pass).count(), passed, "{component}: {verdicts:?}");
    }
    // Kafka through tansu keeps nothing across a restart: skipped with the reason. Its clients
    // go around a proxy, so its black hole is the broker frozen, which it must get through.
    let kafka = |id: &str| {
        report.cases.iter().find(|c| c.component == "kafka-pubsub" && c.driver == "faults" && c.id == id).cloned()
    };
    let restart = kafka("faults.pubsub.acknowledged-publishes-delivered-across-restart").expect("planned");
    assert_eq!(restart.verdict, Verdict::Skipped, "{restart:?}");
    assert!(restart.reason.as_deref().is_some_and(|r| r.contains("keeps nothing across a restart")), "{restart:?}");
    let hole = kafka("faults.pubsub.black-hole-fails-fast").expect("planned");
    assert_eq!(hole.verdict, Verdict::Pass, "{hole:?}");
    assert!(
        stdout.contains("Backend redis (process) at 127.0.0.1:")
            && stdout.contains("Backend postgres (process) at 127.0.0.1:")
            && stdout.contains("Backend rabbitmq (process) at 127.0.0.1:")
            && stdout.contains("Backend kafka (process) at 127.0.0.1:"),
        "{stdout}"
    );
}

#[test]
fn without_the_server_its_cases_are_skipped_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("empty PATH dir");
    let args = [
        "run",
        "--spec",
        SPEC,
        "--backends",
        "process",
        "--report-dir",
        dir.path().to_str().expect("utf8"),
        "redis-state",
    ];
    let (code, stdout, stderr) = certify(&args, &[("PATH", empty.path().to_str().expect("utf8"))]);
    assert_eq!(code, 0, "skips are not failures\n{stdout}\n{stderr}");
    let report = report(dir.path());
    assert!(!report.cases.is_empty());
    for case in &report.cases {
        assert_eq!(case.verdict, Verdict::Skipped, "{case:?}");
        assert!(
            case.reason
                .as_deref()
                .is_some_and(|r| r.contains("`redis-server` is not installed") && r.contains("CERTIFY_REDIS_URL")),
            "{case:?}"
        );
    }
    let (code, _, stderr) =
        certify(&args, &[("PATH", empty.path().to_str().expect("utf8")), ("CERTIFY_REQUIRE_BACKENDS", "1")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no redis backend is available") && stderr.contains("CERTIFY_REQUIRE_BACKENDS=1"),
        "{stderr}"
    );
}

#[test]
fn a_server_that_never_becomes_ready_fails_only_its_components() {
    let fake = tempfile::tempdir().expect("fake bin dir");
    let script = fake.path().join("redis-server");
    std::fs::write(&script, "#!/bin/sh\necho 'fake redis: refusing to start (disk on fire)'\nexec sleep 60\n")
        .expect("write");
    Command::new("chmod").args(["+x", script.to_str().expect("utf8")]).status().expect("chmod");
    let path = format!("{}:{}", fake.path().display(), std::env::var("PATH").unwrap_or_default());
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let (code, stdout, _) = certify(
        &[
            "run",
            "--spec",
            SPEC,
            "--backends",
            "process",
            "--report-dir",
            dir.path().to_str().expect("utf8"),
            "state.crud",
        ],
        &[("PATH", &path), ("CERTIFY_BACKEND_TIMEOUT", "2")],
    );
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    let report = report(dir.path());
    // Cases that would not apply anyway (a driver's limits) stay skipped; every other one fails.
    let redis: Vec<_> =
        report.cases.iter().filter(|c| c.component == "redis-state" && c.verdict != Verdict::Skipped).collect();
    assert!(redis.len() >= 10, "{stdout}");
    for case in redis {
        assert_eq!(case.verdict, Verdict::Fail, "{case:?}");
        let reason = case.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("did not become ready within 2s") && reason.contains("refusing to start (disk on fire)"),
            "{reason}"
        );
    }
    assert_eq!(code, 1, "{stdout}");
    let postgres_passed =
        report.cases.iter().filter(|c| c.component == "postgres-state" && c.verdict == Verdict::Pass).count();
    let postgres_ran =
        report.cases.iter().filter(|c| c.component == "postgres-state" && c.verdict != Verdict::Skipped).count();
    if postgres_ran > 0 || required() {
        assert!(
            postgres_passed > 0 && postgres_passed == postgres_ran,
            "the other components still run and pass\n{stdout}"
        );
    }
}

#[test]
fn an_interrupted_run_leaves_no_server_behind() {
    for (provider, signal) in providers().into_iter().flat_map(|p| [(p, "INT"), (p, "TERM")]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_certify"))
            .args(["run", "--spec", SPEC, "--backends", provider, "--report-dir", dir.path().to_str().expect("utf8")])
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut ports = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(host) = line.trim().strip_prefix("Backend ").and_then(|l| l.split(" at ").nth(1)) {
                ports.push(host.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).expect("port"));
            }
            if line.contains("Starting") {
                break;
            }
        }
        // Keep draining, as a terminal would.
        std::thread::spawn(move || lines.for_each(drop));
        if ports.is_empty() && !required() {
            let _ = child.kill();
            let _ = child.wait();
            return; // No servers installed: nothing to leave behind.
        }
        assert_eq!(ports.len(), fixtures::BackendKind::ALL.len(), "every server started");
        Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().expect("kill");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "certify did not stop after SIG{signal}");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(130), "SIG{signal}");
        for port in ports {
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
                "a server still listens on {port} after SIG{signal}"
            );
        }
    }
}
