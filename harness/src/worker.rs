//! A supervised run's worker side: `certify run` runs its trials in a child process of itself
//! (the worker), so a component whose native library crashes the process (librdkafka did)
//! costs failed trials, not the run. A worker has [`WORKER_ENV`] set, reads its share of the
//! trials as the first line of its stdin, and reports on stdout, one JSON [`WorkerEvent`] per
//! line; the supervisor (`supervise`) renders, attributes crashes, and writes the report. The
//! supervisor never writes again nor closes the worker's stdin, so when it closes the
//! supervisor is gone: the worker stops, and stops its backends.

use std::collections::BTreeSet;
use std::io::Write;

use reports::{CaseRecord, ComponentRecord, Report};
use serde::{Deserialize, Serialize};

/// Set (to `1`) only on workers.
pub const WORKER_ENV: &str = "CERTIFY_WORKER";

/// Which trials a worker runs, and how many at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Only these trials (all the filters keep, if `None`).
    pub only: Option<BTreeSet<String>>,
    /// Never these (already run).
    pub without: BTreeSet<String>,
    /// Trials at once, instead of the run's.
    pub jobs: Option<usize>,
}

/// What a worker reports, in order: its backends, its plan, then trials as they begin and
/// end, and its report last.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum WorkerEvent {
    /// A backend the session started or was given.
    Backend {
        /// `redis`, `postgres`, …
        kind: String,
        /// `process`, `testcontainers` or `external`.
        provider: String,
        /// `host:port`.
        host: String,
    },
    /// The trials the worker will run, in plan order.
    Planned {
        /// Trial names.
        trials: Vec<String>,
        /// What the run certifies.
        source: String,
        /// The components, for the report.
        components: Vec<ComponentRecord>,
        /// How to rerun one trial: this, then `--exact '<trial>'`.
        rerun_prefix: String,
    },
    /// A trial began.
    Started {
        /// Its name.
        trial: String,
    },
    /// A trial ended.
    Finished {
        /// Its record.
        record: Box<CaseRecord>,
    },
    /// Every trial ended; the worker's report (its records were sent one by one).
    Done {
        /// The report.
        report: Box<Report>,
    },
}

impl WorkerEvent {
    /// Writes the event as one line on stdout; a supervisor that went away is not worth a
    /// panic (the worker is stopped by its signal soon after).
    pub fn emit(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// This process's share, when it is a worker: the first line of its stdin.
pub fn share_from_env() -> Result<Option<Share>, String> {
    if std::env::var_os(WORKER_ENV).is_none() {
        return Ok(None);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("{WORKER_ENV}: cannot read the share: {e}"))?;
    serde_json::from_str(&line).map(Some).map_err(|e| format!("{WORKER_ENV}: the share on stdin: {e}"))
}

/// Completes when the supervisor is gone: it holds the write end of the worker's stdin and
/// never writes, so end of input means it exited or was killed. (Read on a thread of its own:
/// a runtime's blocking read would keep the runtime, and the process, from ending.)
pub async fn supervisor_gone() {
    let (gone, seen) = tokio::sync::oneshot::channel::<()>();
    let watch = std::thread::Builder::new().name("supervisor-watch".into()).spawn(move || {
        use std::io::Read;
        let mut buffer = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buffer), Ok(n) if n > 0) {}
        let _ = gone.send(());
    });
    match watch {
        Ok(_) => {
            let _ = seen.await;
        }
        // Without a watcher the worker runs on; its supervisor's signals still stop it.
        Err(_) => std::future::pending().await,
    }
}
