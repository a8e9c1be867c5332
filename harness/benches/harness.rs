//! The harness's hot paths: planning a run, and running one trial end to end in-process (the
//! per-case cost the harness adds around a case body).

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
}

criterion_group!(benches, bench);
criterion_main!(benches);
