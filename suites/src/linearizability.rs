//! A linearizability checker for a key-value register with ETag compare-and-set, first-write
//! and delete, in the style of Porcupine: the Wing–Gong/Lowe search with memoisation of
//! (linearized set, state), per-key partitioning (linearizability is local), a time budget, and
//! a tri-state verdict. A failure comes with a minimal failing sub-history.
//!
//! ETags are opaque, so the checker learns them: every successful read binds the ETag it saw to
//! the value it saw. Values are unique per write, so a conditional operation on ETag `e` is a
//! compare-and-set on the value `e` was bound to. An ETag bound to two values is reported
//! before any search (ETag reuse, e.g. numeric versions restarting after a delete).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::history::{History, Input, Operation, Output};

/// The checker's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Some order of the operations, consistent with real time, explains every output.
    Linearizable,
    /// No such order exists.
    NotLinearizable {
        /// The key whose history has no linearization.
        key: String,
        /// What is wrong, in a sentence.
        reason: String,
        /// A smallest sub-history that still has no linearization, by invoke time.
        minimal: Vec<Operation>,
    },
    /// The search ran out of time.
    Inconclusive {
        /// Why.
        reason: String,
    },
}

/// The expected value of a conditional operation: the value its ETag was bound to, or none
/// when the ETag was never seen (it can never be current).
type Expected = Option<u32>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Refused,
    Unknown,
}

/// An operation of the value-level model: `u32` values are interned strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelOp {
    Read(Option<u32>),
    Write(u32, Outcome),
    Cas(Expected, u32, Outcome),
    FirstWrite(u32, Outcome),
    Delete(Outcome),
    CasDelete(Expected, Outcome),
}

/// The states the register may be in after `op`, from `state`; empty when `op` cannot happen.
fn step(state: Option<u32>, op: ModelOp) -> Vec<Option<u32>> {
    let matches = |expected: Expected| expected.is_some() && state == expected;
    match op {
        ModelOp::Read(seen) => {
            if seen == state {
                vec![state]
            } else {
                vec![]
            }
        }
        ModelOp::Write(v, Outcome::Unknown) => vec![state, Some(v)],
        ModelOp::Write(v, _) => vec![Some(v)],
        ModelOp::Cas(e, v, Outcome::Ok) => {
            if matches(e) {
                vec![Some(v)]
            } else {
                vec![]
            }
        }
        ModelOp::Cas(e, _, Outcome::Refused) => {
            if matches(e) {
                vec![]
            } else {
                vec![state]
            }
        }
        ModelOp::Cas(e, v, Outcome::Unknown) => {
            if matches(e) {
                vec![state, Some(v)]
            } else {
                vec![state]
            }
        }
        ModelOp::FirstWrite(v, Outcome::Ok) => {
            if state.is_none() {
                vec![Some(v)]
            } else {
                vec![]
            }
        }
        ModelOp::FirstWrite(_, Outcome::Refused) => {
            if state.is_some() {
                vec![state]
            } else {
                vec![]
            }
        }
        ModelOp::FirstWrite(v, Outcome::Unknown) => {
            if state.is_none() {
                vec![state, Some(v)]
            } else {
                vec![state]
            }
        }
        ModelOp::Delete(Outcome::Unknown) => vec![state, None],
        ModelOp::Delete(_) => vec![None],
        ModelOp::CasDelete(e, Outcome::Ok) => {
            if matches(e) {
                vec![None]
            } else {
                vec![]
            }
        }
        ModelOp::CasDelete(e, Outcome::Refused) => {
            if matches(e) {
                vec![]
            } else {
                vec![state]
            }
        }
        ModelOp::CasDelete(e, Outcome::Unknown) => {
            if matches(e) {
                vec![state, None]
            } else {
                vec![state]
            }
        }
    }
}

/// One operation of one key's history, ready for the search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timed {
    pub(crate) op: ModelOp,
    pub(crate) invoke: u64,
    /// `u64::MAX` for indeterminate operations: they may take effect any time after invoke.
    pub(crate) complete: u64,
}

/// The result of searching one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Search {
    Ok,
    Illegal,
    TimedOut,
}

const NIL: usize = usize::MAX;

/// Lowe's just-in-time linearization with memoisation over one partition.
pub(crate) fn search(ops: &[Timed], deadline: Instant) -> Search {
    // Events: a call and a return per op, sorted by time; calls before returns on ties, so
    // operations that touch in time count as concurrent.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.invoke, false, i));
        events.push((op.complete, true, i));
    }
    events.sort_by_key(|(t, is_return, i)| (*t, *is_return, *i));
    let n = events.len();
    // A doubly linked list over events, with a head sentinel at index n.
    let mut next = vec![NIL; n + 1];
    let mut prev = vec![NIL; n + 1];
    let mut return_of = vec![0usize; ops.len()];
    for (pos, (_, is_return, i)) in events.iter().enumerate() {
        if *is_return {
            return_of[*i] = pos;
        }
    }
    let head = n;
    let mut last = head;
    for (pos, before) in prev.iter_mut().enumerate().take(n) {
        next[last] = pos;
        *before = last;
        last = pos;
    }
    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, call: usize, ret: usize| {
        for e in [call, ret] {
            let (p, q) = (prev[e], next[e]);
            next[p] = q;
            if q != NIL {
                prev[q] = p;
            }
        }
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, call: usize, ret: usize| {
        for e in [ret, call] {
            let (p, q) = (prev[e], next[e]);
            next[p] = e;
            if q != NIL {
                prev[q] = e;
            }
        }
    };
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, Option<u32>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<u32>, usize)> = Vec::new();
    let mut state: Option<u32> = None;
    let mut entry = next[head];
    let mut first_alternative = 0usize;
    let mut iterations = 0u64;
    while next[head] != NIL {
        iterations += 1;
        if iterations.is_multiple_of(4096) && Instant::now() > deadline {
            return Search::TimedOut;
        }
        let (_, is_return, i) = events[entry];
        if !is_return {
            let mut moved = false;
            for (k, s2) in step(state, ops[i].op).into_iter().enumerate().skip(first_alternative) {
                let mut with = linearized.clone();
                with[i / 64] |= 1 << (i % 64);
                if cache.insert((with.clone(), s2)) {
                    stack.push((entry, state, k));
                    state = s2;
                    linearized = with;
                    lift(&mut next, &mut prev, entry, return_of[i]);
                    entry = next[head];
                    moved = true;
                    break;
                }
            }
            first_alternative = 0;
            if !moved {
                entry = next[entry];
            }
        } else {
            // An operation returned before it could be linearized: undo the last choice.
            let Some((call, old_state, k)) = stack.pop() else {
                return Search::Illegal;
            };
            let (_, _, j) = events[call];
            linearized[j / 64] &= !(1 << (j % 64));
            state = old_state;
            unlift(&mut next, &mut prev, call, return_of[j]);
            entry = call;
            first_alternative = k + 1;
        }
    }
    Search::Ok
}

/// Interns values as numbers, so states hash cheaply.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, value: &str) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(value.to_owned()).or_insert(next)
    }
}

fn outcome(output: &Output) -> Outcome {
    match output {
        Output::Refused => Outcome::Refused,
        Output::Indeterminate { .. } => Outcome::Unknown,
        _ => Outcome::Ok,
    }
}

/// Translates one key's operations to the model, resolving ETags through `bindings`.
fn to_model(ops: &[&Operation], bindings: &HashMap<String, String>, values: &mut Interner) -> Vec<Timed> {
    ops.iter()
        .filter_map(|o| {
            let mut expected = |etag: &str| bindings.get(etag).map(|v| values.id(v));
            let op = match (&o.input, &o.output) {
                // A read that failed says nothing about the state.
                (Input::Read, Output::Indeterminate { .. }) => return None,
                (Input::Read, Output::Found { value, .. }) => ModelOp::Read(Some(values.id(value))),
                (Input::Read, _) => ModelOp::Read(None),
                (Input::Write { value }, out) => ModelOp::Write(values.id(value), outcome(out)),
                (Input::CasWrite { etag, value }, out) => ModelOp::Cas(expected(etag), values.id(value), outcome(out)),
                (Input::FirstWrite { value }, out) => ModelOp::FirstWrite(values.id(value), outcome(out)),
                (Input::Delete, out) => ModelOp::Delete(outcome(out)),
                (Input::CasDelete { etag }, out) => ModelOp::CasDelete(expected(etag), outcome(out)),
            };
            Some(Timed { op, invoke: o.invoke_ns, complete: o.complete_ns.unwrap_or(u64::MAX) })
        })
        .collect()
}

fn check_ops(ops: &[&Operation], bindings: &HashMap<String, String>, deadline: Instant) -> Search {
    let mut values = Interner::default();
    search(&to_model(ops, bindings, &mut values), deadline)
}

/// The value an operation writes, if it writes one.
fn written(op: &Operation) -> Option<&str> {
    match &op.input {
        Input::Write { value } | Input::CasWrite { value, .. } | Input::FirstWrite { value } => Some(value),
        _ => None,
    }
}

/// Shrinks a failing key history to a 1-minimal one: no single unit can be removed and keep it
/// failing. A unit is a write with every read that saw its value (removing a write alone would
/// leave reads of a value nobody wrote, failing for a trivial reason), or any other operation.
fn minimise<'h>(ops: Vec<&'h Operation>, bindings: &HashMap<String, String>, deadline: Instant) -> Vec<&'h Operation> {
    let unit_of = |op: &Operation| -> String {
        match (&op.input, &op.output) {
            (Input::Read, Output::Found { value, .. }) => format!("v:{value}"),
            _ => match written(op) {
                Some(v) => format!("v:{v}"),
                None => format!("op:{}:{}:{:?}", op.client, op.invoke_ns, op.input),
            },
        }
    };
    let mut kept = ops;
    loop {
        let units: Vec<String> = {
            let mut seen = Vec::new();
            for op in &kept {
                let u = unit_of(op);
                if !seen.contains(&u) {
                    seen.push(u);
                }
            }
            seen
        };
        let mut shrunk = false;
        for unit in units {
            if Instant::now() > deadline {
                return kept;
            }
            let candidate: Vec<&Operation> = kept.iter().copied().filter(|o| unit_of(o) != unit).collect();
            if candidate.len() < kept.len() && check_ops(&candidate, bindings, deadline) == Search::Illegal {
                kept = candidate;
                shrunk = true;
            }
        }
        if !shrunk {
            return kept;
        }
    }
}

/// Checks a history within `budget`.
pub fn check(history: &History, budget: Duration) -> Verdict {
    let started = Instant::now();
    let deadline = started + budget;
    // Pre-check: one ETag must never name two different values.
    let mut bindings: HashMap<String, String> = HashMap::new();
    let mut first_read: HashMap<String, &Operation> = HashMap::new();
    for op in &history.operations {
        if let (Input::Read, Output::Found { value, etag }) = (&op.input, &op.output) {
            match bindings.get(etag) {
                Some(bound) if bound != value => {
                    let first = first_read.get(etag).map(|o| (*o).clone());
                    return Verdict::NotLinearizable {
                        key: op.key.clone(),
                        reason: format!(
                            "ETag `{etag}` names two different values: `{bound}` and `{value}` (an ETag was reused)"
                        ),
                        minimal: first.into_iter().chain(std::iter::once(op.clone())).collect(),
                    };
                }
                Some(_) => {}
                None => {
                    bindings.insert(etag.clone(), value.clone());
                    first_read.insert(etag.clone(), op);
                }
            }
        }
    }
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in &history.operations {
        by_key.entry(&op.key).or_default().push(op);
    }
    for (key, ops) in by_key {
        match check_ops(&ops, &bindings, deadline) {
            Search::Ok => {}
            Search::TimedOut => {
                return Verdict::Inconclusive {
                    reason: format!(
                        "the search for key `{key}` ({} operations) ran out of its {:?} budget",
                        ops.len(),
                        budget
                    ),
                };
            }
            Search::Illegal => {
                // Shrinking gets its own budget, so a slow search still yields a history.
                let mut minimal: Vec<Operation> =
                    minimise(ops, &bindings, Instant::now() + budget).into_iter().cloned().collect();
                minimal.sort_by_key(|o| o.invoke_ns);
                return Verdict::NotLinearizable {
                    key: key.to_owned(),
                    reason: format!(
                        "no order of these {} operations on `{key}` is consistent with real time and the register's rules",
                        minimal.len()
                    ),
                    minimal,
                };
            }
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, invoke: u64, complete: Option<u64>, input: Input, output: Output) -> Operation {
        Operation { client, key: "k".into(), input, output, invoke_ns: invoke, complete_ns: complete }
    }

    fn read(c: usize, i: u64, r: u64, value: Option<(&str, &str)>) -> Operation {
        let output = match value {
            Some((v, e)) => Output::Found { value: v.into(), etag: e.into() },
            None => Output::Absent,
        };
        op(c, i, Some(r), Input::Read, output)
    }

    fn write(c: usize, i: u64, r: u64, v: &str) -> Operation {
        op(c, i, Some(r), Input::Write { value: v.into() }, Output::Ok)
    }

    fn cas(c: usize, i: u64, r: u64, etag: &str, v: &str, output: Output) -> Operation {
        op(c, i, Some(r), Input::CasWrite { etag: etag.into(), value: v.into() }, output)
    }

    fn verdict(ops: Vec<Operation>) -> Verdict {
        check(&History { operations: ops }, Duration::from_secs(5))
    }

    fn assert_bad(ops: Vec<Operation>, fragment: &str) -> Vec<Operation> {
        match verdict(ops) {
            Verdict::NotLinearizable { reason, minimal, .. } => {
                assert!(reason.contains(fragment), "{reason}");
                minimal
            }
            other => panic!("expected not linearizable, got {other:?}"),
        }
    }

    #[test]
    fn sequential_and_overlapping_histories_pass() {
        assert_eq!(verdict(vec![write(0, 0, 10, "a"), read(1, 20, 30, Some(("a", "e1")))]), Verdict::Linearizable);
        // Overlapping write and read: the read may see either state.
        assert_eq!(
            verdict(vec![write(0, 0, 10, "a"), write(0, 11, 40, "b"), read(1, 20, 30, Some(("a", "e1")))]),
            Verdict::Linearizable
        );
        assert_eq!(
            verdict(vec![write(0, 0, 10, "a"), write(0, 11, 40, "b"), read(1, 20, 30, Some(("b", "e2")))]),
            Verdict::Linearizable
        );
        assert_eq!(verdict(vec![read(0, 0, 1, None)]), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_a_completed_write_fails() {
        // The classic: sequentially consistent but not linearizable.
        let minimal = assert_bad(
            vec![write(0, 0, 10, "a"), write(0, 20, 30, "b"), read(1, 40, 50, Some(("a", "e1")))],
            "no order",
        );
        assert_eq!(minimal.len(), 3, "{minimal:?}");
    }

    #[test]
    fn two_winners_on_one_etag_fail_and_shrink() {
        let ops = vec![
            write(0, 0, 10, "a"),
            read(0, 11, 12, Some(("a", "e1"))),
            read(1, 11, 12, Some(("a", "e1"))),
            cas(0, 20, 30, "e1", "x", Output::Ok),
            cas(1, 21, 31, "e1", "y", Output::Ok),
            read(2, 100, 110, None),
            write(2, 120, 130, "z"),
        ];
        let minimal = assert_bad(ops, "no order");
        assert!(minimal.iter().all(|o| o.client != 2), "unrelated operations are shrunk away: {minimal:?}");
    }

    #[test]
    fn first_write_with_two_winners_fails() {
        let fw = |c, i, r| op(c, i, Some(r), Input::FirstWrite { value: format!("v{c}") }, Output::Ok);
        assert_bad(vec![fw(0, 0, 10), fw(1, 1, 11)], "no order");
        let refused = op(1, 1, Some(11), Input::FirstWrite { value: "v1".into() }, Output::Refused);
        assert_eq!(verdict(vec![fw(0, 0, 10), refused]), Verdict::Linearizable);
    }

    #[test]
    fn a_cas_with_a_never_seen_etag_cannot_succeed() {
        assert_bad(vec![write(0, 0, 10, "a"), cas(0, 20, 30, "bogus", "b", Output::Ok)], "no order");
        assert_eq!(
            verdict(vec![write(0, 0, 10, "a"), cas(0, 20, 30, "bogus", "b", Output::Refused)]),
            Verdict::Linearizable
        );
    }

    #[test]
    fn indeterminate_operations_may_or_may_not_apply() {
        let lost =
            op(0, 0, None, Input::Write { value: "a".into() }, Output::Indeterminate { reason: "timeout".into() });
        assert_eq!(verdict(vec![lost.clone(), read(1, 50, 60, Some(("a", "e1")))]), Verdict::Linearizable);
        assert_eq!(verdict(vec![lost, read(1, 50, 60, None)]), Verdict::Linearizable);
    }

    #[test]
    fn etag_reuse_is_reported_before_the_search() {
        let ops = vec![
            write(0, 0, 10, "a"),
            read(0, 11, 12, Some(("a", "1"))),
            op(0, 13, Some(14), Input::Delete, Output::Ok),
            write(0, 15, 16, "b"),
            read(0, 17, 18, Some(("b", "1"))),
        ];
        let minimal = assert_bad(ops, "ETag `1` names two different values");
        assert_eq!(minimal.len(), 2);
    }

    #[test]
    fn a_stale_etag_after_delete_and_recreate_cannot_succeed() {
        let ops = vec![
            write(0, 0, 10, "a"),
            read(0, 11, 12, Some(("a", "1"))),
            op(0, 13, Some(14), Input::Delete, Output::Ok),
            write(0, 15, 16, "b"),
            cas(1, 20, 30, "1", "c", Output::Ok),
        ];
        assert_bad(ops, "no order");
    }
}
