//! The terminal view of a run, as nextest shows one: a right-aligned status word, a fixed-width
//! duration, `[n/N]`, the trial name; failures indented under it; one summary line; then the
//! failures again, each with the command that reruns it. Colour as `--color` says; `auto`
//! (anstream's) colours a terminal only, never with `NO_COLOR`. On a terminal, a run that takes
//! more than a few seconds keeps a progress line at the bottom.

use std::io::Write;

use reports::{CaseRecord, Report, Verdict};

use crate::runner::Event;

/// Renders events and the final report to a writer.
pub struct Terminal<W: Write> {
    out: W,
    colour: bool,
    /// Also print passing and skipped cases (not only failures).
    pub verbose: bool,
    /// The live progress line, on a terminal only.
    live: Option<Live>,
}

/// The progress line at the bottom of a terminal: cases done of all, trials running, time
/// elapsed; drawn once a run has taken a few seconds, wiped before every other line.
#[derive(Debug)]
struct Live {
    started: std::time::Instant,
    done: usize,
    total: usize,
    running: usize,
    shown: bool,
}

/// After this long a run shows its progress line.
const LIVE_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// When to colour: `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Terminal<Box<dyn Write>> {
    /// A renderer on stdout, or on stderr when stdout carries machine output; anstream strips
    /// the colour where `when` (or, for `auto`, the stream) says not to.
    pub fn new(on_stderr: bool, when: ColorWhen) -> Self {
        let choice = match when {
            ColorWhen::Auto => anstream::ColorChoice::Auto,
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
        };
        use std::io::IsTerminal;
        let terminal = if on_stderr { std::io::stderr().is_terminal() } else { std::io::stdout().is_terminal() };
        let out: Box<dyn Write> = match on_stderr {
            true => Box::new(anstream::AutoStream::new(std::io::stderr(), choice)),
            false => Box::new(anstream::AutoStream::new(std::io::stdout(), choice)),
        };
        let mut view = Terminal { out, colour: true, verbose: true, live: None };
        if terminal {
            view.live_progress();
        }
        view
    }
}

impl<W: Write> Terminal<W> {
    /// A plain renderer on `out`.
    pub fn plain(out: W) -> Self {
        Terminal { out, colour: false, verbose: true, live: None }
    }

    /// Also draws the live progress line (what a terminal gets; never a pipe).
    pub fn live_progress(&mut self) {
        self.live = Some(Live { started: std::time::Instant::now(), done: 0, total: 0, running: 0, shown: false });
    }

    fn wipe(&mut self) {
        if let Some(live) = self.live.as_mut().filter(|l| l.shown) {
            live.shown = false;
            let _ = write!(self.out, "\r\x1b[2K");
        }
    }

    fn draw(&mut self) {
        let Some(live) = self.live.as_mut() else { return };
        let elapsed = live.started.elapsed();
        if elapsed < LIVE_AFTER || live.total == 0 {
            return;
        }
        live.shown = true;
        let line = format!(
            "{:>12} {}/{} cases done, {} running, {}s",
            "Running",
            live.done,
            live.total,
            live.running,
            elapsed.as_secs()
        );
        let _ = write!(self.out, "{line}");
        let _ = self.out.flush();
    }

    fn paint(&self, verdict: Verdict, text: &str) -> String {
        if !self.colour {
            return text.to_owned();
        }
        let code = match verdict {
            Verdict::Pass => "32",
            Verdict::Fail => "31;1",
            Verdict::Inconclusive => "33;1",
            Verdict::Skipped => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn details(&mut self, record: &CaseRecord) {
        let _ = writeln!(self.out, "{:>12} rule: {}", "", record.rule);
        if let Some(reason) = &record.reason {
            let _ = writeln!(
                self.out,
                "{:>12} {}: {reason}",
                "",
                if record.verdict == Verdict::Fail { "failure" } else { "reason" }
            );
        }
    }

    /// Renders one event.
    pub fn event(&mut self, event: Event<'_>) {
        self.wipe();
        if let Some(live) = self.live.as_mut() {
            match event {
                Event::Started { trials } => live.total = trials.len(),
                Event::Began { .. } => live.running += 1,
                Event::Finished { done, .. } => {
                    live.done = done;
                    live.running = live.running.saturating_sub(1);
                }
            }
        }
        self.print(event);
        self.draw();
    }

    fn print(&mut self, event: Event<'_>) {
        match event {
            Event::Started { trials } => {
                let _ = writeln!(self.out, "{:>12} {} cases", "Starting", trials.len());
            }
            Event::Began { .. } => {}
            Event::Finished { done, total, record } => {
                let show = self.verbose || matches!(record.verdict, Verdict::Fail | Verdict::Inconclusive);
                if !show {
                    return;
                }
                let width = total.to_string().len();
                let status = self.paint(record.verdict, &format!("{:>12}", record.verdict.label()));
                let skip_reason = match (record.verdict, &record.reason) {
                    (Verdict::Skipped, Some(r)) => format!(": {r}"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    self.out,
                    "{status} [{:>8.3}s] [{done:>width$}/{total}] {}{skip_reason}",
                    record.duration_ms / 1000.0,
                    record.trial
                );
                if matches!(record.verdict, Verdict::Fail | Verdict::Inconclusive) {
                    self.details(record);
                }
            }
        }
    }

    /// Renders the summary line and repeats the failures with their rerun commands.
    pub fn summary(&mut self, report: &Report) {
        self.wipe();
        self.live = None;
        let s = &report.summary;
        let word = if s.ok() {
            self.paint(Verdict::Pass, &format!("{:>12}", "Summary"))
        } else {
            self.paint(Verdict::Fail, &format!("{:>12}", "Summary"))
        };
        let _ = writeln!(
            self.out,
            "{word} [{:>8.3}s] {} cases run: {} passed, {} failed, {} inconclusive, {} skipped",
            report.duration_ms / 1000.0,
            s.total,
            s.passed,
            s.failed,
            s.inconclusive,
            s.skipped
        );
        for note in report.notes() {
            let _ = writeln!(self.out, "{} {note}", self.paint(Verdict::Inconclusive, &format!("{:>12}", "Note")));
        }
        for record in report.cases.iter().filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Inconclusive)) {
            let status = self.paint(record.verdict, &format!("{:>12}", record.verdict.label()));
            let _ = writeln!(self.out, "{status} {}", record.trial);
            if let Some(reason) = &record.reason {
                let _ = writeln!(self.out, "{:>12} {reason}", "");
            }
            if let Some(rerun) = &record.rerun {
                let _ = writeln!(self.out, "{:>12} rerun: {rerun}", "");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reports::{Environment, Summary};

    fn record(trial: &str, verdict: Verdict, reason: Option<&str>) -> CaseRecord {
        CaseRecord {
            trial: trial.into(),
            id: trial.split("::").nth(1).unwrap_or(trial).into(),
            block: String::new(),
            could_not_run: false,
            component: "store".into(),
            driver: "in-process".into(),
            verdict,
            reason: reason.map(str::to_owned),
            duration_ms: 12.5,
            rule: "A write with a stale ETag MUST fail as an ETag mismatch and leave the item unchanged.".into(),
            source: "S26".into(),
            features: vec!["etag".into()],
            tags: vec![],
            rerun: (verdict != Verdict::Pass).then(|| format!("certify run --exact '{trial}'")),
            evidence: None,
        }
    }

    #[test]
    fn terminal_view_snapshot() {
        let cases = vec![
            record("store::state.crud.ping", Verdict::Pass, None),
            record(
                "store::state.etag.stale-write-rejected",
                Verdict::Fail,
                Some("a write with ETag `bad-etag` answered Ok(()), not an ETag mismatch"),
            ),
            record("store::state.features.ttl-not-advertised", Verdict::Skipped, Some("the component claims `ttl`")),
            record("store::state.ttl.item-expires", Verdict::Inconclusive, Some("the clock jumped")),
        ];
        let report = Report {
            schema: reports::SCHEMA_VERSION.into(),
            spec: "built-in".into(),
            seed: "c0ffee".into(),
            started_at: "2030-01-01T00:00:00Z".into(),
            duration_ms: 1234.0,
            environment: Environment {
                os: "linux".into(),
                arch: "x86_64".into(),
                certify_version: "0".into(),
                spec_digest: None,
            },
            components: vec![],
            backends: Vec::new(),
            summary: Summary::of(&cases),
            cases: cases.clone(),
        };
        let mut out = Vec::new();
        {
            let mut t = Terminal::plain(&mut out);
            let names: Vec<String> = cases.iter().map(|c| c.trial.clone()).collect();
            t.event(Event::Started { trials: &names });
            for (i, c) in cases.iter().enumerate() {
                t.event(Event::Finished { done: i + 1, total: cases.len(), record: c });
            }
            t.summary(&report);
        }
        insta::assert_snapshot!(String::from_utf8(out).expect("utf8"));
    }

    #[test]
    fn the_progress_line_is_drawn_after_a_while_and_wiped_before_each_line() {
        let mut out = Vec::new();
        {
            let mut t = Terminal::plain(&mut out);
            t.live_progress();
            if let Some(live) = t.live.as_mut() {
                live.started -= LIVE_AFTER;
            }
            let names = vec!["s::a".to_owned(), "s::b".to_owned()];
            t.event(Event::Started { trials: &names });
            t.event(Event::Began { trial: "s::a" });
            t.event(Event::Began { trial: "s::b" });
            t.event(Event::Finished { done: 1, total: 2, record: &record("s::a", Verdict::Pass, None) });
        }
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("Running 0/2 cases done, 2 running"), "{text:?}");
        assert!(text.contains("\r\x1b[2K        PASS"), "the line is wiped before the next: {text:?}");
        assert!(text.ends_with("Running 1/2 cases done, 1 running, 3s"), "{text:?}");
    }
}
