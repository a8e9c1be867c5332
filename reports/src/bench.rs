//! Benchmark results: the stable `bench.json` types, the Markdown table, the HTML page with
//! latency-distribution plots (inline SVG, no network assets), and the comparison with a stored
//! baseline.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::model::{Environment, Verdict};

/// The version of the benchmark format.
pub const BENCH_SCHEMA_VERSION: &str = "certify.bench/v1";

/// A latency budget for one operation; any field may be absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The most the median may take, in µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    /// The most the 99th percentile may take, in µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// The most the 99.9th percentile may take, in µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999_us: Option<f64>,
    /// The fewest operations per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_throughput: Option<f64>,
}

impl Budget {
    /// Every way `record` breaks this budget, as sentences with the measured figure.
    pub fn violations(&self, record: &BenchRecord) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |name: &str, measured: f64, limit: Option<f64>| {
            if let Some(limit) = limit.filter(|l| measured > *l) {
                out.push(format!("{name} {measured:.1} µs is over the budget of {limit:.1} µs"));
            }
        };
        check("p50", record.p50_us, self.p50_us);
        check("p99", record.p99_us, self.p99_us);
        check("p99.9", record.p999_us, self.p999_us);
        if let Some(floor) = self.min_throughput.filter(|f| record.throughput < *f) {
            out.push(format!("throughput {:.0}/s is under the floor of {floor:.0}/s", record.throughput));
        }
        out
    }
}

/// One measured operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRecord {
    /// The component, or a baseline such as `no-op` or `redis (raw client)`.
    pub component: String,
    /// `in-process`, `http`, or `raw` for a backend's own client.
    pub driver: String,
    /// The operation, e.g. `state.get`.
    pub operation: String,
    /// `fixed-rate` or `closed-loop`.
    pub mode: String,
    /// Requests per second asked for, in fixed-rate mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Clients at once.
    pub concurrency: usize,
    /// Measured operations (warm-up excluded).
    pub samples: u64,
    /// Failed operations.
    pub errors: u64,
    /// The first error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Completed operations per second.
    pub throughput: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// Median, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Maximum, µs.
    pub max_us: f64,
    /// The budget, if the spec sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Pass when within budget (or none set), fail when over, skipped with a reason.
    pub verdict: Verdict,
    /// Why, for anything but a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl BenchRecord {
    /// The record's name in tables and comparisons.
    pub fn key(&self) -> String {
        format!("{} {} [{}]", self.component, self.operation, self.driver)
    }
}

/// What a component's sidecar driver (HTTP, gRPC) adds over its in-process driver for one
/// operation, and that as a multiple of the loopback floor of the driver's protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// What is compared, e.g. `statestore state.get: http over in-process`.
    pub what: String,
    /// Added median, µs.
    pub added_p50_us: f64,
    /// Added 99th percentile, µs.
    pub added_p99_us: f64,
    /// Added median over the floor's median (an empty handler called the same way), when the
    /// floor was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_ratio_p50: Option<f64>,
    /// Added 99th percentile over the floor's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_ratio_p99: Option<f64>,
}

/// A process's resident set, idle and after a load of state items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRecord {
    /// What was measured, e.g. `reference runtime (statestore, in memory)`.
    pub subject: String,
    /// Resident set once serving, before any item, KiB; `None` when it could not be measured.
    pub idle_kib: Option<u64>,
    /// Resident set after `items` items of `item_bytes` each, KiB.
    pub loaded_kib: Option<u64>,
    /// Items saved.
    pub items: u64,
    /// Bytes per item value.
    pub item_bytes: u64,
    /// Why a figure is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A benchmark run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// [`BENCH_SCHEMA_VERSION`].
    pub schema: String,
    /// The spec.
    pub spec: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Where it ran.
    pub environment: Environment,
    /// Every measurement, baselines included.
    pub records: Vec<BenchRecord>,
    /// Sidecar and harness overheads derived from the records.
    pub overheads: Vec<Overhead>,
    /// Resident sets measured beside the latencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory: Vec<MemoryRecord>,
}

impl BenchReport {
    /// True when every budget held.
    pub fn ok(&self) -> bool {
        self.records.iter().all(|r| r.verdict != Verdict::Fail)
    }
}

/// The terminal and Markdown table.
pub fn bench_table(report: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| component | driver | operation | mode | samples | errors | throughput/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | budget |"
    );
    let _ = writeln!(out, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in &report.records {
        let budget = match (&r.verdict, &r.reason) {
            (Verdict::Fail, Some(reason)) => format!("❌ {reason}"),
            (Verdict::Skipped, Some(reason)) => format!("skipped: {reason}"),
            (_, _) if r.budget.is_some() => "✅ within".to_owned(),
            _ => "—".to_owned(),
        };
        let mode = match r.rate {
            Some(rate) => format!("{} {rate:.0}/s ×{}", r.mode, r.concurrency),
            None => format!("{} ×{}", r.mode, r.concurrency),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {mode} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {budget} |",
            r.component,
            r.driver,
            r.operation,
            r.samples,
            r.errors,
            r.throughput,
            r.p50_us,
            r.p90_us,
            r.p99_us,
            r.p999_us,
            r.max_us
        );
    }
    if !report.overheads.is_empty() {
        let _ = writeln!(
            out,
            "\n| overhead | added p50 µs | added p99 µs | × floor p50 | × floor p99 |\n|---|---:|---:|---:|---:|"
        );
        let ratio = |r: Option<f64>| r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "–".into());
        for o in &report.overheads {
            let (p50, p99) = (ratio(o.floor_ratio_p50), ratio(o.floor_ratio_p99));
            let _ = writeln!(out, "| {} | {:.1} | {:.1} | {p50} | {p99} |", o.what, o.added_p50_us, o.added_p99_us);
        }
    }
    if !report.memory.is_empty() {
        let _ = writeln!(out, "\n| memory | idle MiB | loaded MiB | items | per item B |\n|---|---:|---:|---:|---:|");
        let mib = |kib: Option<u64>| kib.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "–".into());
        for m in &report.memory {
            let per_item = match (m.idle_kib, m.loaded_kib) {
                (Some(idle), Some(loaded)) if m.items > 0 => {
                    format!("{:.0}", loaded.saturating_sub(idle) as f64 * 1024.0 / m.items as f64)
                }
                _ => "–".into(),
            };
            let subject = match &m.reason {
                Some(why) => format!("{} ({why})", m.subject),
                None => m.subject.clone(),
            };
            let _ = writeln!(
                out,
                "| {subject} | {} | {} | {} × {} B | {per_item} |",
                mib(m.idle_kib),
                mib(m.loaded_kib),
                m.items,
                m.item_bytes
            );
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One SVG plot per operation: each measurement's latency at p50, p90, p99, p99.9 and max, on
/// a logarithmic axis.
fn plot(operation: &str, records: &[&BenchRecord]) -> String {
    const COLOURS: &[&str] = &["#3b6fd8", "#d8553b", "#2f9e44", "#9c36b5", "#e8a400", "#0b7285", "#5c5f66"];
    let (w, h, left, bottom, top) = (640.0, 300.0, 70.0, 40.0, 30.0);
    let points = |r: &BenchRecord| [r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us];
    let max = records.iter().flat_map(|r| points(r)).fold(1.0f64, f64::max);
    let min = records.iter().flat_map(|r| points(r)).fold(f64::INFINITY, f64::min).max(0.1);
    let (lo, hi) = (min.log10().floor(), max.log10().ceil().max(min.log10().floor() + 1.0));
    let y = |v: f64| top + (h - top - bottom) * (1.0 - (v.max(0.1).log10() - lo) / (hi - lo));
    let x = |i: usize| left + (w - left - 150.0) * i as f64 / 4.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(svg, r#"<text x="{left}" y="16" font-weight="bold">{}</text>"#, escape(operation));
    let mut decade = lo;
    while decade <= hi {
        let yy = y(10f64.powf(decade));
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="8" y="{:.1}">{} µs</text>"##,
            w - 150.0,
            yy + 4.0,
            10f64.powf(decade)
        );
        decade += 1.0;
    }
    for (i, label) in ["p50", "p90", "p99", "p99.9", "max"].iter().enumerate() {
        let _ = write!(svg, r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#, x(i), h - 12.0);
    }
    for (n, r) in records.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let line: Vec<String> =
            points(r).iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
        let _ =
            write!(svg, r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#, line.join(" "));
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" fill="{colour}">{}</text>"#,
            w - 145.0,
            top + 14.0 * n as f64,
            escape(&format!("{} [{}]", r.component, r.driver))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The HTML page: the table and one plot per operation, self-contained.
pub fn bench_html(report: &BenchReport) -> String {
    let mut operations: Vec<&str> = report.records.iter().map(|r| r.operation.as_str()).collect();
    operations.sort_unstable();
    operations.dedup();
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>certify bench</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>certify bench</h1><p>Spec <code>{}</code>, started {}.</p>",
        escape(&report.spec),
        escape(&report.started_at)
    );
    html.push_str("<table><tr><th>measurement</th><th>samples</th><th>errors</th><th>throughput/s</th><th>p50 µs</th><th>p99 µs</th><th>p99.9 µs</th><th>verdict</th></tr>");
    for r in &report.records {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td></tr>",
            escape(&r.key()),
            r.samples,
            r.errors,
            r.throughput,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            escape(&match &r.reason {
                Some(reason) => format!("{} — {reason}", r.verdict.label()),
                None => r.verdict.label().to_owned(),
            })
        );
    }
    html.push_str("</table>");
    for op in operations {
        let records: Vec<&BenchRecord> = report.records.iter().filter(|r| r.operation == op && r.samples > 0).collect();
        if !records.is_empty() {
            let _ = write!(html, "<div>{}</div>", plot(op, &records));
        }
    }
    html.push_str("</body></html>");
    html
}

/// A measurement that got slower than its baseline by more than the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// Which measurement.
    pub key: String,
    /// Which figure (`p50`, `p99`).
    pub figure: &'static str,
    /// Before, µs.
    pub baseline_us: f64,
    /// Now, µs.
    pub current_us: f64,
}

/// Measurements present in both runs whose p50 or p99 grew by more than `threshold` (0.2 =
/// 20 %). Figures under `floor_us` are ignored: at that scale noise dominates.
pub fn regressions(current: &BenchReport, baseline: &BenchReport, threshold: f64, floor_us: f64) -> Vec<Regression> {
    let mut out = Vec::new();
    for now in &current.records {
        let Some(before) = baseline.records.iter().find(|b| b.key() == now.key()) else { continue };
        for (figure, then, cur) in [("p50", before.p50_us, now.p50_us), ("p99", before.p99_us, now.p99_us)] {
            if cur > floor_us && cur > then * (1.0 + threshold) {
                out.push(Regression { key: now.key(), figure, baseline_us: then, current_us: cur });
            }
        }
    }
    out
}
