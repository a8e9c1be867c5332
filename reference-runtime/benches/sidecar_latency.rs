//! The sidecar's own cost for a state get over loopback HTTP, at a fixed 1,000 requests/s.
//!
//! Three targets, measured the same way: the `reference-runtime` binary (a separate process,
//! `GET /v1.0/state/statestore/{key}`), a no-op HTTP server answering 204 (the floor of
//! loopback HTTP on this machine), and the in-memory store called in-process. Requests follow a
//! fixed schedule on a dedicated thread with a blocking keep-alive client; response time is
//! measured from the *intended* send time, so a stall is charged to every request it delays
//! (coordinated omission corrected), and service time from the actual send.
//!
//! `cargo bench -p reference-runtime --bench sidecar_latency` (CERTIFY_BENCH_SECS sets the
//! measured seconds, default 10, after 2 s of warm-up).

#![allow(missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::StateStore;
use contract::state::{GetRequest, SetRequest};
use hdrhistogram::Histogram;

const RATE: u64 = 1_000;
const SPIN: Duration = Duration::from_micros(300);

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    request: Vec<u8>,
}

impl Client {
    fn new(port: u16, path: &str) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let writer = stream.try_clone().expect("clone");
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes();
        Client { reader: BufReader::new(stream), writer, request }
    }

    /// One request on the keep-alive connection; returns the status.
    fn get(&mut self) -> u16 {
        self.writer.write_all(&self.request).expect("write");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).expect("body");
        status
    }
}

struct Figures {
    response: Histogram<u64>,
    service: Histogram<u64>,
}

/// Calls `op` at RATE per second for `warmup + measure`, recording the measured part (ns).
fn fixed_rate(mut op: impl FnMut(), warmup: Duration, measure: Duration) -> Figures {
    let mut response = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let mut service = response.clone();
    let interval = Duration::from_nanos(1_000_000_000 / RATE);
    let start = Instant::now();
    let total = ((warmup + measure).as_nanos() / interval.as_nanos()) as u32;
    let warm = (warmup.as_nanos() / interval.as_nanos()) as u32;
    for i in 0..total {
        let intended = start + interval * i;
        // Sleep most of the way, then spin: a plain sleep overshoots by ~100 µs, which would
        // be charged to every request as latency.
        let now = Instant::now();
        if intended > now + SPIN {
            std::thread::sleep(intended - now - SPIN);
        }
        while Instant::now() < intended {
            std::hint::spin_loop();
        }
        let sent = Instant::now();
        op();
        let done = Instant::now();
        if i >= warm {
            response.saturating_record((done - intended).as_nanos() as u64);
            service.saturating_record((done - sent).as_nanos() as u64);
        }
    }
    Figures { response, service }
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn row(name: &str, f: &Figures) {
    println!(
        "{name:<34} {:>9.1} {:>9.1} {:>9.1} {:>9.1}   {:>9.1} {:>9.1}",
        us(&f.response, 0.5),
        us(&f.response, 0.9),
        us(&f.response, 0.99),
        us(&f.response, 0.999),
        us(&f.service, 0.5),
        us(&f.service, 0.99)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run briefly then.
    let benching = std::env::args().any(|a| a == "--bench");
    let secs: u64 =
        std::env::var("CERTIFY_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(if benching { 10 } else { 1 });
    let (warmup, measure) = (Duration::from_secs(if benching { 2 } else { 0 }), Duration::from_secs(secs));

    // The sidecar, as a separate process.
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_reference-runtime"))
        .args([
            "--app-id",
            "bench",
            "--dapr-http-port",
            &port.to_string(),
            "--dapr-grpc-port",
            "0",
            "--log-level",
            "error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the sidecar");
    wait_listening(port);
    let value = format!("\"{}\"", "x".repeat(1022));
    let body = format!(r#"[{{"key":"bench-key","value":{value}}}]"#);
    let mut seed = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(seed, "POST /v1.0/state/statestore HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).expect("seed");
    let mut answer = String::new();
    seed.read_to_string(&mut answer).expect("seed answer");
    assert!(answer.starts_with("HTTP/1.1 204"), "seed failed: {answer}");
    let mut client = Client::new(port, "/v1.0/state/statestore/bench-key");
    let sidecar = fixed_rate(|| assert_eq!(client.get(), 200), warmup, measure);
    let _ = child.kill();
    let _ = child.wait();

    // A no-op server: loopback HTTP with nothing behind it.
    let noop_port = free_port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NO_CONTENT });
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", noop_port)).await.expect("bind");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    wait_listening(noop_port);
    let mut noop_client = Client::new(noop_port, "/");
    let noop = fixed_rate(|| assert_eq!(noop_client.get(), 204), warmup, measure);

    // The in-memory store, called in-process.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let store = Arc::new(rt.block_on(async {
        reference_runtime::in_memory::state_memory::InMemoryStateStore::new(contract::system_clock())
    }));
    rt.block_on(store.set(SetRequest::new("bench||bench-key", value.clone().into_bytes()))).expect("seed");
    let in_process = fixed_rate(
        || assert!(rt.block_on(store.get(GetRequest::new("bench||bench-key"))).expect("get").is_some()),
        warmup,
        measure,
    );

    println!();
    println!("state get, 1 KiB value, fixed {RATE} requests/s, {secs} s measured (µs)");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}   {:>9} {:>9}",
        "target", "p50", "p90", "p99", "p99.9", "svc p50", "svc p99"
    );
    row("reference-runtime over HTTP", &sidecar);
    row("no-op HTTP server (loopback floor)", &noop);
    row("in-process StateStore::get", &in_process);
    let added_p50 = us(&sidecar.response, 0.5) - us(&noop.response, 0.5);
    let added_p99 = us(&sidecar.response, 0.99) - us(&noop.response, 0.99);
    println!("sidecar over the loopback floor: +{added_p50:.1} µs p50, +{added_p99:.1} µs p99");
    println!(
        "sidecar / in-process at p50: {:.0}x",
        us(&sidecar.response, 0.5) / us(&in_process.response, 0.5).max(0.001)
    );
}
