//! The reference runtime's resident set: the `reference-runtime` binary started on its own
//! (the zero-setup default components), measured once it serves and again after 100,000 state
//! items of 1 KiB saved through its HTTP API. A process of its own, so nothing of certify's is
//! counted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reports::MemoryRecord;
use serde_json::{Value, json};

/// Items saved before the second measurement.
const ITEMS: u64 = 100_000;
/// Bytes per item value.
const ITEM_BYTES: u64 = 1024;
/// Items per bulk save.
const BATCH: u64 = 1_000;

/// The `reference-runtime` binary beside this executable, if there is one.
pub fn beside_certify() -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.with_file_name("reference-runtime");
    path.is_file().then_some(path)
}

/// Measures the runtime at `binary` (`None`: none was found).
pub async fn measure(binary: Option<&Path>) -> MemoryRecord {
    let mut record = MemoryRecord {
        subject: "reference runtime (default components, statestore in memory)".into(),
        idle_kib: None,
        loaded_kib: None,
        items: ITEMS,
        item_bytes: ITEM_BYTES,
        reason: None,
    };
    let Some(binary) = binary else {
        record.reason = Some(
            "no reference-runtime binary beside certify: build it (cargo build --release -p reference-runtime) or give --runtime-binary".into(),
        );
        return record;
    };
    if let Err(why) = run(binary, &mut record).await {
        record.reason = Some(why);
    }
    record
}

async fn run(binary: &Path, record: &mut MemoryRecord) -> Result<(), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let mut child = tokio::process::Command::new(binary)
        .args(["--app-id", "certify-memory", "--dapr-http-port", &port.to_string()])
        .args(["--dapr-grpc-port", "0", "--enable-metrics=false"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id().ok_or("the runtime exited at once")?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("an HTTP client: {e}"))?;
    wait_healthy(&client, &base, &mut child).await?;
    record.idle_kib = Some(resident_kib(pid)?);
    let value = "x".repeat(ITEM_BYTES as usize);
    for batch in 0..ITEMS / BATCH {
        let items: Vec<Value> =
            (0..BATCH).map(|n| json!({"key": format!("k{}", batch * BATCH + n), "value": value})).collect();
        let answer = client
            .post(format!("{base}/v1.0/state/statestore"))
            .json(&items)
            .send()
            .await
            .map_err(|e| format!("saving items: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!("saving items: the runtime answered {}", answer.status()));
        }
    }
    record.loaded_kib = Some(resident_kib(pid)?);
    let _ = child.kill().await;
    Ok(())
}

async fn wait_healthy(client: &reqwest::Client, base: &str, child: &mut tokio::process::Child) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the runtime exited before it served ({status})"));
        }
        if let Ok(r) = client.get(format!("{base}/v1.0/healthz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err("the runtime did not answer /v1.0/healthz within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `VmRSS` of `pid`, KiB (Linux's `/proc`).
fn resident_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status (resident sets are read on Linux only): {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}
