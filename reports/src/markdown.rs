//! `summary.md`: the verdict, failures first with the command that reruns each, then the
//! component × feature matrix.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::model::{CaseRecord, Report, Verdict};

/// The matrix columns: the core cases, then each claim.
const COLUMNS: &[&str] =
    &["core", "etag", "first-write", "transaction", "ttl", "query", "delete-with-prefix", "keyslike"];

fn column(case: &CaseRecord) -> &str {
    case.features.first().map(String::as_str).unwrap_or("core")
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Renders the summary.
pub fn summary_markdown(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let verdict = if s.ok() { "PASSED" } else { "FAILED" };
    let _ = writeln!(out, "# certify: {verdict}\n");
    let _ = writeln!(
        out,
        "{} cases: **{} passed**, **{} failed**, {} inconclusive, {} skipped. Spec: `{}`. Seed: `{}`. \
         The whole report, with filters and timelines: [report.html](report.html).\n",
        s.total, s.passed, s.failed, s.inconclusive, s.skipped, report.spec, report.seed
    );
    for note in report.notes() {
        let _ = writeln!(out, "> **Note:** {}\n", escape(&note));
    }
    let failing: Vec<&CaseRecord> =
        report.cases.iter().filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Inconclusive)).collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "## Failures\n");
        let _ = writeln!(out, "| verdict | case | rule | reason | rerun |\n|---|---|---|---|---|");
        for c in failing {
            let timeline = match c.evidence.as_ref().and_then(crate::timeline_svg) {
                Some(_) => format!(" ([timeline]({}))", crate::timeline_file(&c.trial)),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {}{timeline} | `{}` |",
                c.verdict.label(),
                c.trial,
                escape(&c.rule),
                escape(c.reason.as_deref().unwrap_or("")),
                escape(c.rerun.as_deref().unwrap_or(""))
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Component × feature\n");
    let _ = writeln!(out, "| component | driver | {} |", COLUMNS.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(COLUMNS.len()));
    let mut rows: BTreeMap<(String, String), Vec<&CaseRecord>> = BTreeMap::new();
    for c in &report.cases {
        rows.entry((c.component.clone(), c.driver.clone())).or_default().push(c);
    }
    for ((component, driver), cases) in rows {
        let claims =
            report.components.iter().find(|r| r.name == component).map(|r| r.claims.clone()).unwrap_or_default();
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|col| {
                let here: Vec<&&CaseRecord> = cases.iter().filter(|c| column(c) == *col).collect();
                let count = |v: Verdict| here.iter().filter(|c| c.verdict == v).count();
                let run = here.len() - count(Verdict::Skipped);
                let claimed = *col == "core" || claims.iter().any(|c| c == col);
                if here.is_empty() && claimed {
                    "—".to_owned()
                } else if count(Verdict::Fail) > 0 {
                    format!("❌ {}/{} failed", count(Verdict::Fail), run)
                } else if count(Verdict::Inconclusive) > 0 {
                    format!("⚠️ {} inconclusive", count(Verdict::Inconclusive))
                } else if !claimed && run > 0 {
                    "➖ not claimed, absent ✅".to_owned()
                } else if !claimed {
                    "➖ not claimed".to_owned()
                } else if run == 0 {
                    "⏭ skipped".to_owned()
                } else if count(Verdict::Skipped) > 0 {
                    format!("✅ {}/{} ({} skipped)", count(Verdict::Pass), run, count(Verdict::Skipped))
                } else {
                    format!("✅ {}/{}", count(Verdict::Pass), run)
                }
            })
            .collect();
        let _ = writeln!(out, "| {component} | {driver} | {} |", cells.join(" | "));
    }
    time_by_block(report, &mut out);
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    for c in report.cases.iter().filter(|c| c.verdict == Verdict::Skipped) {
        *skipped.entry(c.reason.as_deref().unwrap_or("no reason given")).or_default() += 1;
    }
    if !skipped.is_empty() {
        let _ = writeln!(out, "\n## Skipped\n");
        for (reason, n) in skipped {
            let _ = writeln!(out, "- {n} × {reason}");
        }
    }
    out
}

/// Where the run's time went: per block (the fault phase apart, as it runs alone after the
/// rest), the trials that ran, their summed durations and the longest one.
fn time_by_block(report: &Report, out: &mut String) {
    let mut blocks: BTreeMap<String, (usize, f64, f64, &str)> = BTreeMap::new();
    for c in report.cases.iter().filter(|c| c.verdict != Verdict::Skipped) {
        let block = match (c.driver.as_str(), c.block.as_str()) {
            ("faults", _) => "faults (alone, after the rest)".to_owned(),
            (_, "") => "—".to_owned(),
            (_, block) => block.to_owned(),
        };
        let entry = blocks.entry(block).or_insert((0, 0.0, 0.0, ""));
        entry.0 += 1;
        entry.1 += c.duration_ms;
        if c.duration_ms > entry.2 {
            (entry.2, entry.3) = (c.duration_ms, c.trial.as_str());
        }
    }
    if blocks.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Time\n");
    let _ = writeln!(out, "The run took {:.1} s.\n", report.duration_ms / 1000.0);
    let _ = writeln!(out, "| block | trials run | summed s | longest trial | its s |\n|---|---:|---:|---|---:|");
    for (block, (n, sum, longest, trial)) in blocks {
        let _ = writeln!(out, "| {block} | {n} | {:.1} | `{trial}` | {:.1} |", sum / 1000.0, longest / 1000.0);
    }
}
