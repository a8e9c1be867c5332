//! The linearizability checker on histories of 1,000 to 100,000 operations, 8 clients on 4 keys.

#![allow(missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use suites::history::{History, Input, Operation, Output};
use suites::linearizability::{Verdict, check};

/// A linearizable history with heavy overlap: operations take effect at a point inside their
/// interval, in an order that a true register produced.
fn history(clients: usize, keys: usize, ops: usize, seed: u64) -> History {
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut state: Vec<Option<(String, String)>> = vec![None; keys];
    let mut free_at = vec![0u64; clients];
    let mut last_etag: Vec<Vec<Option<String>>> = vec![vec![None; keys]; clients];
    let mut version = 0u64;
    let mut operations = Vec::new();
    let mut now = 0u64;
    for seq in 0..ops {
        now += 1 + next(3);
        let c = next(clients as u64) as usize;
        let k = next(keys as u64) as usize;
        // Linearization points increase in generation order; each operation's interval holds
        // its point, starts after the client's previous operation ended, and overlaps others.
        let point = now.max(free_at[c]);
        now = point;
        let invoke = free_at[c].max(point.saturating_sub(next(40)));
        let complete = point + 1 + next(40);
        free_at[c] = complete + 1;
        let value = format!("v{seq}");
        let (input, output) = match (next(100), last_etag[c][k].clone()) {
            (0..40, _) | (40..65, None) => {
                let out = match &state[k] {
                    Some((v, e)) => {
                        last_etag[c][k] = Some(e.clone());
                        Output::Found { value: v.clone(), etag: e.clone() }
                    }
                    None => Output::Absent,
                };
                (Input::Read, out)
            }
            (40..65, Some(etag)) => {
                let ok = state[k].as_ref().is_some_and(|(_, e)| *e == etag);
                if ok {
                    version += 1;
                    state[k] = Some((value.clone(), format!("e{version}")));
                }
                (Input::CasWrite { etag, value }, if ok { Output::Ok } else { Output::Refused })
            }
            (65..80, _) => {
                version += 1;
                state[k] = Some((value.clone(), format!("e{version}")));
                (Input::Write { value }, Output::Ok)
            }
            (80..90, _) => {
                let ok = state[k].is_none();
                if ok {
                    version += 1;
                    state[k] = Some((value.clone(), format!("e{version}")));
                }
                (Input::FirstWrite { value }, if ok { Output::Ok } else { Output::Refused })
            }
            _ => {
                state[k] = None;
                (Input::Delete, Output::Ok)
            }
        };
        operations.push(Operation {
            client: c,
            key: format!("k{k}"),
            input,
            output,
            invoke_ns: invoke,
            complete_ns: Some(complete),
        });
    }
    History { operations }
}

/// The checker's time against history length: 1k, 10k and 100k operations of 8 clients on 4
/// keys (the curve issue 24 asks for; read it from criterion's report).
fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("linearizability (8 clients, 4 keys)");
    group.sample_size(10);
    for ops in [1_000usize, 10_000, 100_000] {
        let h = history(8, 4, ops, 42);
        assert_eq!(check(&h, Duration::from_secs(120)), Verdict::Linearizable, "the generated history is linearizable");
        group.throughput(criterion::Throughput::Elements(ops as u64));
        group.bench_with_input(criterion::BenchmarkId::from_parameter(ops), &h, |b, h| {
            b.iter(|| check(h, Duration::from_secs(120)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
