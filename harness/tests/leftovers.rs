//! A run that dies without cleaning up (SIGKILL to its process group, as a CI job's timeout
//! sends) leaves its servers: its process backends' folders and servers, its containers. The
//! next run, or `certify clean`, removes them, and says so. Alone in its test binary, so no
//! other run cleans them first. (A supervisor killed alone leaves nothing: its worker sees its
//! input close and stops its backends, as on SIGTERM.)

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/real-backends.yaml");

fn required() -> bool {
    std::env::var("CERTIFY_REQUIRE_BACKENDS").is_ok_and(|v| v == "1")
}

/// Processes always; containers when Docker answers (or when backends are required).
fn providers() -> Vec<&'static str> {
    let mut list = vec!["process"];
    if fixtures::docker_answers() || required() {
        list.push("testcontainers");
    }
    list
}

fn certify(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_certify"))
        .args(args)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The run's process-backend folders and certify-labelled containers (their ids), by pid.
fn leftovers_of(pid: u32) -> (Vec<std::path::PathBuf>, Vec<String>) {
    let owner = |text: &str| text.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid);
    let folders = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::read_to_string(p.join("certify-owner")).is_ok_and(|t| owner(&t)))
        .collect();
    let containers = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=org.certify.pid={pid}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    (folders, containers)
}

/// A run through `provider` in a process group of its own, once its backends are up: the
/// supervisor, its worker's pid and the backends' ports; `None` when no server is installed.
fn started(provider: &str, report: &std::path::Path) -> Option<(std::process::Child, u32, Vec<u16>)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_certify"))
        .args(["run", "--spec", SPEC, "--backends", provider, "--report-dir", report.to_str().expect("utf8")])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
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
        return None;
    }
    let supervisor = child.id();
    let children = std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children"));
    let worker: u32 = children.ok().and_then(|c| c.split_whitespace().next()?.parse().ok()).expect("a worker");
    Some((child, worker, ports))
}

fn wait_gone(pid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while fixtures::leftovers::Pid::of(pid).is_some() {
        assert!(std::time::Instant::now() < deadline, "process {pid} did not end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn assert_closed(ports: &[u16], what: &str) {
    for port in ports {
        assert!(std::net::TcpStream::connect(("127.0.0.1", *port)).is_err(), "{what}: {port} still answers");
    }
}

// One test, so that no other run in this binary cleans up before it looks.
#[test]
fn what_a_killed_run_leaves_behind_the_next_removes() {
    for provider in providers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some((mut child, pid, ports)) = started(provider, dir.path()) else { return };
        // The worker owns the backends; the group goes at once, with no chance to clean up.
        Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status().expect("kill the group");
        let _ = child.wait();
        wait_gone(pid);
        let (folders, containers) = leftovers_of(pid);
        match provider {
            "process" => {
                assert_eq!(folders.len(), fixtures::BackendKind::ALL.len(), "{provider}: {folders:?}");
                assert!(ports.iter().any(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok()));
            }
            _ => assert_eq!(containers.len(), fixtures::BackendKind::ALL.len(), "{provider}: {containers:?}"),
        }
        // The process provider's leftovers go with `certify clean`; the containers' with the
        // next run, which cleans before it starts anything.
        let (code, stdout, stderr) = match provider {
            "process" => certify(&["clean"], &[]),
            _ => {
                let report = tempfile::tempdir().expect("tempdir");
                let dir = report.path().to_str().expect("utf8");
                certify(&["run", "--report-dir", dir, "statestore::state.crud.ping"], &[])
            }
        };
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let gone = format!("(certify pid {pid}, gone)");
        assert_eq!(stdout.lines().filter(|l| l.contains(&gone)).count(), folders.len() + containers.len(), "{stdout}");
        assert_eq!(leftovers_of(pid), (Vec::new(), Vec::new()), "{provider}: removed\n{stdout}");
        assert_closed(&ports, provider);
    }
    // The supervisor killed alone: its worker sees its input close and stops its backends.
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((mut child, pid, ports)) = started("process", dir.path()) else { return };
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    wait_gone(pid);
    assert_eq!(leftovers_of(pid), (Vec::new(), Vec::new()), "the worker removed its folders");
    assert_closed(&ports, "after the supervisor was killed");
}
