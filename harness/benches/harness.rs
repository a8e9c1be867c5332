//! The harness's hot paths: planning a run, running one trial end to end in-process (the
//! per-case cost the harness adds around a case body), and the runner's cost per trial for
//! runs of 10, 100 and 1,000 trials.

#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use harness::plan::{self, Filter};
use harness::{Session, SessionOptions, Source, Spec};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let spec = Spec::builtin().expect("spec");
    let session = rt
        .block_on(Session::open(Source::Spec(spec), &reference_runtime::builtin_registry(), &SessionOptions::default()))
        .expect("session");
    let suites = session.catalogue.suites();
    c.bench_function("plan the built-in spec", |b| {
        b.iter(|| plan::plan(&session.targets, suites, &Filter::default()).len())
    });
    let trial = plan::plan(
        &session.targets,
        suites,
        &Filter { patterns: vec!["statestore::state.crud.ping".into()], exact: true, ..Filter::default() },
    )
    .pop()
    .expect("the ping trial");
    let mut n = 0u64;
    c.bench_function("run one in-process trial (state.crud.ping)", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(harness::runner::run_one(trial.clone(), format!("bench-{n}")))
        })
    });
    // The runner's cost per trial as runs grow (issue 24's curve): N copies of the ping trial
    // through the runner, 16 at a time; criterion's per-element time is the cost of one.
    let mut group = c.benchmark_group("runner (state.crud.ping × N, concurrency 16)");
    group.sample_size(10);
    for trials in [10usize, 100, 1_000] {
        group.throughput(criterion::Throughput::Elements(trials as u64));
        group.bench_function(criterion::BenchmarkId::from_parameter(trials), |b| {
            b.iter(|| {
                n += 1;
                let run = vec![trial.clone(); trials];
                let records = rt.block_on(harness::runner::execute(
                    run,
                    16,
                    &format!("bench-{n}"),
                    &|t| t.to_owned(),
                    &mut |_| {},
                    &|_| {},
                ));
                assert_eq!(records.len(), trials);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
