//! The `reference-runtime` binary as a user starts it: daprd's flags, the default component
//! set, clean exit on SIGTERM, and clear errors for bad input.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn spawn(args: &[&str]) -> Child {
    // The gRPC API's default port is shared by every test: take a free one unless given.
    let grpc: &[&str] =
        if args.iter().any(|a| a.contains("dapr-grpc-port")) { &[] } else { &["--dapr-grpc-port", "0"] };
    Command::new(env!("CARGO_BIN_EXE_reference-runtime"))
        .args(args)
        .args(grpc)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn wait_healthy(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write;
            let _ = s.write_all(b"GET /v1.0/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 204") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn starts_with_the_default_set_and_exits_cleanly_on_sigterm() {
    let (port, grpc) = (free_port(), free_port());
    let mut child =
        spawn(&["--app-id", "bin-test", "--dapr-http-port", &port.to_string(), "--dapr-grpc-port", &grpc.to_string()]);
    assert!(wait_healthy(port), "healthy on the given port");
    assert!(std::net::TcpStream::connect(("127.0.0.1", grpc)).is_ok(), "the gRPC API listens on its port");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = wait_exit(&mut child, Duration::from_secs(10)).expect("exits after SIGTERM");
    assert!(exit.success(), "clean exit: {exit:?}");
}

fn fails_with(args: &[&str], expected: &str) {
    let mut child = spawn(args);
    let exit = wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read");
    assert!(!exit.success());
    assert!(stderr.contains(expected), "stderr lacks `{expected}`:\n{stderr}");
}

#[test]
fn bad_input_fails_fast_with_a_clear_message() {
    fails_with(&["--app-protocol", "grpcs"], "--app-protocol `grpcs` is not supported");
    fails_with(&["--resources-path", "/nonexistent/resources"], "cannot read `/nonexistent/resources`");
    fails_with(&["--max-body-size", "4Xi"], "unknown size unit `Xi`");
    let dir = std::env::temp_dir().join(format!("certify-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("c.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: s\nspec:\n  type: state.nope\n",
    )
    .expect("write");
    fails_with(
        &["--resources-path", dir.to_str().expect("utf8")],
        "component `s`: field `spec.type`: unknown component type `state.nope`",
    );
    // Perhaps a pluggable component whose socket is elsewhere: say where daprd looks.
    fails_with(
        &["--resources-path", dir.to_str().expect("utf8")],
        "if it is a pluggable component, its socket `nope.sock` must be in",
    );
    // The port is taken: a clear error, not a hang.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    fails_with(&["--dapr-http-port", &port], "cannot serve the HTTP API on 127.0.0.1:");
    fails_with(&["--dapr-http-port", "0", "--dapr-grpc-port", &port], "cannot serve the gRPC API on 127.0.0.1:");
}

#[test]
fn a_daprd_command_line_runs_unchanged() {
    let port = free_port();
    let port_text = port.to_string();
    // Single dashes, daprd flags this runtime does not implement, two listen addresses, JSON logs.
    let mut child = spawn(&[
        "-app-id",
        "habits",
        "-dapr-http-port",
        &port_text,
        "-enable-mtls",
        "-placement-host-address",
        "localhost:50005",
        "--dapr-listen-addresses",
        "[::1],127.0.0.1,127.0.0.2",
        "-log-as-json",
    ]);
    assert!(wait_healthy(port), "healthy on 127.0.0.1");
    let mut second = std::net::TcpStream::connect(("127.0.0.2", port)).expect("listening on 127.0.0.2 too");
    use std::io::Write;
    second
        .write_all(b"POST /v1.0/shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .expect("send");
    let exit = wait_exit(&mut child, Duration::from_secs(10)).expect("both listeners stop on /v1.0/shutdown");
    assert!(exit.success(), "clean exit: {exit:?}");
    let mut logs = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut logs).expect("read");
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let warned = |flag: &str| lines.iter().any(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains(flag)));
    assert!(warned("--enable-mtls") && warned("--placement-host-address localhost:50005"), "{logs}");
}
