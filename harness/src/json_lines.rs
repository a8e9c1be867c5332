//! `--message-format json`: the run as one JSON object per line on stdout, for machines. Each
//! line is an event (`run-started`, `trial-started`, `trial-finished`, `run-finished`); the
//! schema is `reports/events.schema.json`. A renderer like the terminal: it only renders.

use std::io::Write;
use std::path::Path;

use reports::Report;
use serde_json::{Value, json};

use crate::runner::Event;

/// Writes events as JSON lines.
pub struct JsonLines<W: Write> {
    out: W,
}

impl<W: Write> JsonLines<W> {
    /// A renderer on `out`.
    pub fn new(out: W) -> Self {
        JsonLines { out }
    }

    fn line(&mut self, value: &Value) {
        // A reader that went away (a closed pipe) is not the run's failure.
        let _ = writeln!(self.out, "{value}").and_then(|()| self.out.flush());
    }

    /// One event.
    pub fn event(&mut self, event: Event<'_>) {
        let value = match event {
            Event::Started { trials } => json!({"event": "run-started", "total": trials.len(), "trials": trials}),
            Event::Began { trial } => json!({"event": "trial-started", "trial": trial}),
            Event::Finished { done, total, record } => {
                json!({"event": "trial-finished", "done": done, "total": total, "record": record})
            }
        };
        self.line(&value);
    }

    /// The end of the run: its counts, and where the bundle went.
    pub fn finished(&mut self, report: &Report, bundle: &Path) {
        let value = json!({
            "event": "run-finished",
            "summary": report.summary,
            "ok": report.summary.ok(),
            "duration_ms": report.duration_ms,
            "report_dir": bundle.display().to_string(),
        });
        self.line(&value);
    }
}
