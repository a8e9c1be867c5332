//! The in-tree checker against stateright's `LinearizabilityTester` as an oracle, on random
//! small histories of a register with reads, writes, ETag compare-and-set, first-write and
//! deletes, including operations left in flight (indeterminate). Both must agree every time.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use suites::history::{History, Input, Operation, Output};
use suites::linearizability::{Verdict, check};

#[derive(Clone, Debug, Default)]
struct Register(Option<String>);

#[derive(Clone, Debug)]
enum Op {
    Read,
    Write(String),
    Cas(Option<String>, String),
    FirstWrite(String),
    Delete,
}

#[derive(Clone, Debug, PartialEq)]
enum Ret {
    Read(Option<String>),
    Ok,
    Refused,
}

impl SequentialSpec for Register {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        match op {
            Op::Read => Ret::Read(self.0.clone()),
            Op::Write(v) => {
                self.0 = Some(v.clone());
                Ret::Ok
            }
            Op::Cas(expected, v) => {
                if expected.is_some() && *expected == self.0 {
                    self.0 = Some(v.clone());
                    Ret::Ok
                } else {
                    Ret::Refused
                }
            }
            Op::FirstWrite(v) => {
                if self.0.is_none() {
                    self.0 = Some(v.clone());
                    Ret::Ok
                } else {
                    Ret::Refused
                }
            }
            Op::Delete => {
                self.0 = None;
                Ret::Ok
            }
        }
    }
}

/// What a thread does: the input, and the answer it got (`None`: still in flight at the end).
#[derive(Clone, Debug)]
struct Planned {
    input: Input,
    output: Option<Output>,
}

fn planned(thread: usize, index: usize) -> impl Strategy<Value = Planned> {
    let value = format!("v{thread}{index}");
    let targets = prop::sample::select(vec!["v00", "v01", "v10", "v11", "v20", "nope"]);
    let answer = prop_oneof![3 => Just(true), 1 => Just(false)];
    let in_flight = prop_oneof![9 => Just(false), 1 => Just(true)];
    (
        0..5u8,
        targets,
        answer,
        prop::option::of(prop::sample::select(vec!["v00", "v01", "v10", "v11", "v20"])),
        in_flight,
    )
        .prop_map(move |(kind, target, ok, read, flying)| {
            let (input, output) = match kind {
                0 => (
                    Input::Read,
                    match read {
                        Some(v) => Output::Found { value: v.into(), etag: format!("e-{v}") },
                        None => Output::Absent,
                    },
                ),
                1 => (Input::Write { value: value.clone() }, Output::Ok),
                2 => (
                    Input::CasWrite { etag: format!("e-{target}"), value: value.clone() },
                    if ok { Output::Ok } else { Output::Refused },
                ),
                3 => (Input::FirstWrite { value: value.clone() }, if ok { Output::Ok } else { Output::Refused }),
                _ => (Input::Delete, Output::Ok),
            };
            Planned { input, output: (!flying).then_some(output) }
        })
}

fn threads() -> impl Strategy<Value = Vec<Vec<Planned>>> {
    (2..=3usize).prop_flat_map(|n| {
        (0..n)
            .map(|t| (1..=3usize).prop_flat_map(move |len| (0..len).map(move |i| planned(t, i)).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, .. ProptestConfig::default() })]
    #[test]
    fn agrees_with_stateright(plans in threads(), schedule in prop::collection::vec(0..3usize, 40)) {
        // Interleave: each step picks a thread, which invokes its next operation or returns
        // the one in flight. An operation planned without an answer never returns.
        let mut next_op = vec![0usize; plans.len()];
        let mut in_flight: Vec<Option<usize>> = vec![None; plans.len()];
        let mut events: Vec<(usize, usize, bool)> = Vec::new(); // (thread, op index, is_return)
        let mut steps = schedule.into_iter().cycle();
        let mut guard = 0;
        while guard < 400 {
            guard += 1;
            let t = steps.next().unwrap_or(0) % plans.len();
            match in_flight[t] {
                Some(i) if plans[t][i].output.is_some() => {
                    events.push((t, i, true));
                    in_flight[t] = None;
                }
                Some(_) => {}
                None if next_op[t] < plans[t].len() => {
                    events.push((t, next_op[t], false));
                    in_flight[t] = Some(next_op[t]);
                    next_op[t] += 1;
                }
                None => {}
            }
        }
        // Bindings as the checker learns them: from every read in the history.
        let mut bindings: HashMap<String, String> = HashMap::new();
        for (t, i, is_return) in &events {
            if let (true, Some(Output::Found { value, etag })) = (*is_return, &plans[*t][*i].output) {
                bindings.insert(etag.clone(), value.clone());
            }
        }
        let mut oracle = LinearizabilityTester::new(Register::default());
        let mut invoke_at = HashMap::new();
        let mut ops = Vec::new();
        for (time, (t, i, is_return)) in events.iter().enumerate() {
            let plan = &plans[*t][*i];
            if !is_return {
                invoke_at.insert((*t, *i), time as u64);
                let op = match &plan.input {
                    Input::Read => Op::Read,
                    Input::Write { value } => Op::Write(value.clone()),
                    Input::CasWrite { etag, value } => Op::Cas(bindings.get(etag).cloned(), value.clone()),
                    Input::FirstWrite { value } => Op::FirstWrite(value.clone()),
                    Input::Delete | Input::CasDelete { .. } => Op::Delete,
                };
                oracle.on_invoke(*t, op).expect("invoke");
            } else {
                let output = plan.output.clone().expect("returned ops have answers");
                let ret = match &output {
                    Output::Found { value, .. } => Ret::Read(Some(value.clone())),
                    Output::Absent => Ret::Read(None),
                    Output::Refused => Ret::Refused,
                    _ => Ret::Ok,
                };
                oracle.on_return(*t, ret).expect("return");
                ops.push(Operation { client: *t, key: "k".into(), input: plan.input.clone(), output, invoke_ns: invoke_at[&(*t, *i)], complete_ns: Some(time as u64) });
            }
        }
        // Operations still in flight are indeterminate.
        for (t, flying) in in_flight.iter().enumerate() {
            if let Some(i) = flying {
                ops.push(Operation { client: t, key: "k".into(), input: plans[t][*i].input.clone(), output: Output::Indeterminate { reason: "in flight".into() }, invoke_ns: invoke_at[&(t, *i)], complete_ns: None });
            }
        }
        let ours = check(&History { operations: ops.clone() }, Duration::from_secs(10));
        prop_assert!(!matches!(ours, Verdict::Inconclusive { .. }), "{ours:?}");
        prop_assert_eq!(matches!(ours, Verdict::Linearizable), oracle.is_consistent(), "ours {:?}\nhistory {:#?}", ours, ops);
    }
}
