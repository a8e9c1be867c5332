//! `certify bench`: latency and throughput under the spec's bench profile, against its
//! budgets, beside baselines.

use std::path::PathBuf;
use std::process::ExitCode;

use contract::Registry;

use super::{backend_line, clean_leftovers, fail, interrupted, open_session, out, stopped};
use crate::{Filter, Source, Spec};

#[derive(Debug, clap::Args)]
pub(super) struct BenchArgs {
    /// Measure only what contains one of these, e.g. `state.get` or `[http]`.
    filters: Vec<String>,
    /// A certification spec (YAML); its `bench` section and `budgets` apply.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Where bench.json, bench.md, summary.md and bench.html go.
    #[arg(long, default_value = "certify-report")]
    report_dir: PathBuf,
    /// A stored bench.json to compare with; a regression fails the run.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// How much slower (p50 or p99) counts as a regression: 0.2 is 20 %.
    #[arg(long, default_value_t = 0.2)]
    threshold: f64,
    /// Where backends come from: auto, testcontainers, process or external.
    #[arg(long)]
    backends: Option<String>,
    /// The reference runtime binary whose memory `memory` measures (default: `reference-runtime`
    /// beside certify).
    #[arg(long)]
    runtime_binary: Option<PathBuf>,
}

pub(super) async fn bench(args: BenchArgs, registry: &Registry) -> ExitCode {
    if !clean_leftovers().await {
        eprintln!("warning: some leftovers of earlier runs could not be removed (see above)");
    }
    let spec = match &args.spec {
        Some(path) => Spec::load(path),
        None => Spec::builtin(),
    };
    let spec = match spec {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let baseline: Option<reports::BenchReport> = match &args.baseline {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(b) => Some(b),
            Err(e) => return fail(format!("--baseline `{}`: {e}", path.display())),
        },
    };
    let (budgets, profile) = (spec.budgets.clone(), spec.bench.clone());
    let mut interrupt = std::pin::pin!(interrupted());
    let session = match open_session(Source::Spec(spec), registry, args.backends.as_deref(), &mut interrupt).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    for b in session.backends() {
        backend_line(b.kind.name(), b.provider, &b.endpoint.host);
    }
    let filter = Filter { patterns: args.filters, ..Filter::default() };
    let mut on_record = |r: &reports::BenchRecord| {
        let why = r.reason.as_ref().map(|x| format!("\n{:>12} {x}", "")).unwrap_or_default();
        if r.samples == 0 {
            return out(&format!("{:>12} {}{why}", r.verdict.label(), r.key()));
        }
        out(&format!(
            "{:>12} {:<44} p50 {:>9.1} µs  p99 {:>9.1} µs  p99.9 {:>9.1} µs  {:>8.0}/s{}",
            r.verdict.label(),
            r.key(),
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.throughput,
            why
        ))
    };
    let report = tokio::select! {
        report = crate::bench::run(&session, &profile, &budgets, &filter, &mut on_record) => report,
        () = &mut interrupt => {
            drop(session);
            return stopped();
        }
    };
    session.close().await;
    let mut report = report;
    if filter.keeps("memory reference runtime") {
        let binary = args.runtime_binary.clone().or_else(crate::bench::memory::beside_certify);
        let measured = crate::bench::memory::measure(binary.as_deref()).await;
        let figures = |kib: Option<u64>| kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or("–".into());
        let why = measured.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
        out(&format!(
            "{:>12} memory reference runtime: idle {}, after {} items of {} B {}{why}",
            if measured.reason.is_some() { "SKIP" } else { "MEASURED" },
            figures(measured.idle_kib),
            measured.items,
            measured.item_bytes,
            figures(measured.loaded_kib),
        ));
        report.memory.push(measured);
    }
    if report.records.is_empty() && report.memory.is_empty() {
        return fail("nothing matched the filters");
    }
    out("");
    out(&reports::bench_table(&report));
    match reports::write_bench(&report, &args.report_dir) {
        Ok(paths) => {
            // The percentile tables also go into summary.md, as for `certify run`.
            let summary = args.report_dir.join("summary.md");
            let _ = std::fs::write(&summary, format!("# certify bench\n\n{}", reports::bench_table(&report)));
            out(&format!(
                "{:>12} {}, {}",
                "Report",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                summary.display()
            ));
        }
        Err(e) => return fail(e.to_string()),
    }
    let mut ok = report.ok();
    if let Some(baseline) = baseline {
        let found = reports::regressions(&report, &baseline, args.threshold, 5.0);
        for r in &found {
            out(&format!(
                "{:>12} {} {}: {:.1} µs, baseline {:.1} µs (+{:.0} %)",
                "REGRESSED",
                r.key,
                r.figure,
                r.current_us,
                r.baseline_us,
                (r.current_us / r.baseline_us - 1.0) * 100.0
            ));
        }
        if found.is_empty() {
            out(&format!("{:>12} no regression over {:.0} % against the baseline", "Baseline", args.threshold * 100.0));
        }
        ok &= found.is_empty();
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
