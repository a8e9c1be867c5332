//! The load generator: closed-loop (each client issues its next operation when the last one
//! completes) or fixed-rate (operations are scheduled at a constant rate and measured from
//! their intended start, so a stall is charged to every operation it delays: coordinated
//! omission corrected). Warm-up is excluded from the figures.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// How operations are issued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// As fast as the clients go.
    ClosedLoop,
    /// At a constant rate, per second, across all clients.
    FixedRate(f64),
}

/// A load to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Closed-loop or fixed-rate.
    pub mode: Mode,
    /// Clients at once.
    pub concurrency: usize,
    /// Excluded from the figures.
    pub warmup: Duration,
    /// Measured.
    pub duration: Duration,
}

/// What a load measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Latencies in ns.
    pub histogram: Histogram<u64>,
    /// Failed operations in the measured window.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Completed operations per second in the measured window.
    pub throughput: f64,
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 60 s, 3 significant figures: constant bounds that are always valid.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("constant histogram bounds are valid")
}

/// The part of each wait the dispatcher spins instead of sleeping: OS sleeps overshoot by tens
/// of microseconds, and in fixed-rate mode the overshoot would be measured as latency.
const SPIN: Duration = Duration::from_micros(100);

/// How long before its intended start the dispatcher hands an operation to a worker. Waking a
/// parked worker thread costs tens of microseconds on a small VM (a futex wake and a
/// reschedule); handed over early, the wake happens before the intended start, and the worker
/// spins the rest ([`spin_until`]), so the wake is not charged to the target.
const LEAD: Duration = Duration::from_micros(250);

/// Sleeps on the current OS thread until `at`, spinning only for the last [`SPIN`].
fn wait_until(at: Instant) {
    let now = Instant::now();
    if at > now + SPIN {
        std::thread::sleep(at - now - SPIN);
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

/// Spins the current thread until `at`: at most [`LEAD`] on a worker, and only at rates of one
/// operation per `4 × LEAD` or slower, the price of starting an operation on time.
fn spin_until(at: Instant) {
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

struct Tally {
    histogram: Histogram<u64>,
    errors: u64,
    completed: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self { histogram: new_histogram(), errors: 0, completed: 0, first_error: None }
    }

    fn add(&mut self, intended: Instant, done: Instant, result: Result<(), String>) {
        self.completed += 1;
        match result {
            Ok(()) => {
                let ns = u64::try_from(done.duration_since(intended).as_nanos()).unwrap_or(u64::MAX);
                self.histogram.saturating_record(ns.max(1));
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.histogram.add(&other.histogram);
        self.errors += other.errors;
        self.completed += other.completed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Applies `load` with `op(i)` as the i-th operation.
pub async fn drive<F, Fut>(load: Load, op: F) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now() + Duration::from_millis(5);
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let workers: Vec<tokio::task::JoinHandle<Tally>> = match load.mode {
        Mode::ClosedLoop => {
            let slots = Arc::new(AtomicU64::new(0));
            (0..load.concurrency.max(1))
                .map(|_| {
                    let (op, slots) = (Arc::clone(&op), Arc::clone(&slots));
                    tokio::spawn(async move {
                        let mut tally = Tally::new();
                        tokio::time::sleep_until(start.into()).await;
                        loop {
                            let began = Instant::now();
                            if began >= end {
                                break tally;
                            }
                            let result = op(slots.fetch_add(1, Ordering::Relaxed)).await;
                            if began >= measure_from {
                                tally.add(began, Instant::now(), result);
                            }
                        }
                    })
                })
                .collect()
        }
        Mode::FixedRate(rate) => {
            // One dispatcher keeps the schedule on its own thread; idle workers take the next
            // intended start. A late worker is measured from the intended start: the backlog a
            // stall causes is charged, not hidden.
            let every = Duration::from_secs_f64(1.0 / rate.max(1e-9));
            // At rates where handed-over operations would overlap in their lead, spinning
            // workers would take the cores the target needs: hand over on time instead.
            let lead = if every >= LEAD * 4 { LEAD } else { Duration::ZERO };
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
            std::thread::spawn(move || {
                let mut slot = 0u64;
                loop {
                    let intended = start + every.mul_f64(slot as f64);
                    if intended >= end {
                        return;
                    }
                    wait_until(intended.checked_sub(lead).unwrap_or(intended));
                    if tx.send((slot, intended)).is_err() {
                        return;
                    }
                    slot += 1;
                }
            });
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            (0..load.concurrency.max(1))
                .map(|_| {
                    let (op, rx) = (Arc::clone(&op), Arc::clone(&rx));
                    tokio::spawn(async move {
                        let mut tally = Tally::new();
                        loop {
                            let next = rx.lock().await.recv().await;
                            let Some((slot, intended)) = next else { break tally };
                            spin_until(intended);
                            let result = op(slot).await;
                            if intended >= measure_from {
                                tally.add(intended, Instant::now(), result);
                            }
                        }
                    })
                })
                .collect()
        }
    };
    let mut total = Tally::new();
    for worker in workers {
        if let Ok(tally) = worker.await {
            total.merge(tally);
        }
    }
    // Achieved, not offered: a target that falls behind the schedule finishes late.
    let elapsed = Instant::now().saturating_duration_since(measure_from).max(load.duration);
    let throughput = total.completed.saturating_sub(total.errors) as f64 / elapsed.as_secs_f64().max(1e-3);
    Measured { histogram: total.histogram, errors: total.errors, first_error: total.first_error, throughput }
}

/// How many slices [`drive_alternating`] cuts a load into: enough that drift over seconds (CPU
/// frequency, a neighbour's burst) falls on both operations alike.
const SLICES: u32 = 10;

/// What each slice after the first warms up: the other operation ran in between.
const SLICE_WARMUP: Duration = Duration::from_millis(50);

/// Applies `load` to `a` and to `b` in alternating slices (`a`, `b`, `a`, …), each at the
/// load's rate and concurrency, and answers what each measured over its slices together: a
/// comparison of the two that the machine's drift between separate runs cannot skew.
pub async fn drive_alternating<A, FutA, B, FutB>(load: Load, a: A, b: B) -> (Measured, Measured)
where
    A: Fn(u64) -> FutA + Send + Sync + 'static,
    FutA: Future<Output = Result<(), String>> + Send,
    B: Fn(u64) -> FutB + Send + Sync + 'static,
    FutB: Future<Output = Result<(), String>> + Send,
{
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (mut of_a, mut of_b) = (Vec::new(), Vec::new());
    for n in 0..SLICES {
        let slice =
            Load { warmup: if n == 0 { load.warmup } else { SLICE_WARMUP }, duration: load.duration / SLICES, ..load };
        let a = Arc::clone(&a);
        of_a.push(drive(slice, move |i| a(i)).await);
        let b = Arc::clone(&b);
        of_b.push(drive(slice, move |i| b(i)).await);
        let max_us = |m: &[Measured]| m.last().map_or(0, |m| m.histogram.max() / 1000);
        tracing::debug!(slice = n, a_max_us = max_us(&of_a), b_max_us = max_us(&of_b), "alternating slice measured");
    }
    (Measured::merged(of_a), Measured::merged(of_b))
}

impl Measured {
    /// The slices of one measurement as one: their latencies and errors together, and their
    /// mean throughput (the slices are of equal length).
    fn merged(slices: Vec<Measured>) -> Measured {
        let count = slices.len().max(1) as f64;
        let mut all = Measured { histogram: new_histogram(), errors: 0, first_error: None, throughput: 0.0 };
        for slice in slices {
            let _ = all.histogram.add(&slice.histogram);
            all.errors += slice.errors;
            all.first_error = all.first_error.or(slice.first_error);
            all.throughput += slice.throughput / count;
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_rate_charges_stalls_to_the_operations_they_delay() {
        // One client, 200/s for 1 s; every 50th operation stalls 100 ms. Measured from the
        // intended start, the stall shows up in far more than 2 % of the operations.
        let load = Load {
            mode: Mode::FixedRate(200.0),
            concurrency: 1,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
        };
        let m = drive(load, |i| async move {
            if i % 50 == 10 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        })
        .await;
        let slow = m.histogram.len() - m.histogram.count_between(0, 5_000_000);
        assert!(
            slow as f64 / m.histogram.len() as f64 > 0.10,
            "stalls charged to delayed operations: {slow} of {}",
            m.histogram.len()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_loop_counts_errors_and_throughput() {
        let load = Load {
            mode: Mode::ClosedLoop,
            concurrency: 2,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(200),
        };
        let m = drive(load, |i| async move {
            tokio::task::yield_now().await;
            if i % 10 == 0 { Err(format!("op {i} failed")) } else { Ok(()) }
        })
        .await;
        assert!(m.histogram.len() > 100 && m.errors > 0, "{} samples, {} errors", m.histogram.len(), m.errors);
        assert!(m.first_error.is_some_and(|e| e.contains("failed")));
        assert!(m.throughput > 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alternating_slices_measure_each_operation_on_its_own() {
        // `a` answers at once, `b` after 20 ms: each histogram holds only its own operation,
        // and both ran for the whole window, slice by slice.
        let load = Load {
            mode: Mode::FixedRate(500.0),
            concurrency: 8,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(400),
        };
        let (a, b) = drive_alternating(
            load,
            |_| async { Ok(()) },
            |i| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if i == 3 { Err("b failed".into()) } else { Ok(()) }
            },
        )
        .await;
        assert!(a.histogram.max() < 20_000_000 && b.histogram.min() >= 20_000_000, "{a:?} {b:?}");
        assert!(a.histogram.len() > 100 && b.histogram.len() > 100, "{} and {}", a.histogram.len(), b.histogram.len());
        assert_eq!((a.errors, b.errors > 0), (0, true));
        assert!(b.first_error.is_some_and(|e| e.contains("b failed")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn throughput_is_what_was_achieved_not_what_was_offered() {
        // 200/s offered for 200 ms to one client that needs 20 ms per operation: at most
        // 50/s can be served, and the report must say so.
        let load = Load {
            mode: Mode::FixedRate(200.0),
            concurrency: 1,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(200),
        };
        let m = drive(load, |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        })
        .await;
        assert!(m.throughput < 60.0, "achieved throughput {:.0}/s", m.throughput);
        assert!(m.throughput > 20.0, "achieved throughput {:.0}/s", m.throughput);
    }
}
