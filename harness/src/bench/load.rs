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

/// Waits until `at`: sleeps most of the way, then spins, because timers overshoot by up to a
/// millisecond and, in fixed-rate mode, the overshoot would be measured as latency.
async fn wait_until(at: Instant) {
    let now = Instant::now();
    if at > now + Duration::from_millis(2) {
        tokio::time::sleep(at - now - Duration::from_millis(1)).await;
    }
    let mut spins = 0u32;
    while Instant::now() < at {
        spins += 1;
        if spins.is_multiple_of(256) {
            tokio::task::yield_now().await;
        } else {
            std::hint::spin_loop();
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
    let slots = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(5);
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let interval = match load.mode {
        Mode::FixedRate(rate) if rate > 0.0 => Some(Duration::from_secs_f64(1.0 / rate)),
        _ => None,
    };
    let workers: Vec<_> = (0..load.concurrency.max(1))
        .map(|_| {
            let (op, slots) = (Arc::clone(&op), Arc::clone(&slots));
            tokio::spawn(async move {
                let mut histogram = new_histogram();
                let (mut errors, mut completed, mut first_error) = (0u64, 0u64, None);
                loop {
                    let slot = slots.fetch_add(1, Ordering::Relaxed);
                    let intended = match interval {
                        Some(every) => start + every.mul_f64(slot as f64),
                        None => Instant::now().max(start),
                    };
                    if intended >= end {
                        break;
                    }
                    wait_until(intended).await;
                    let result = op(slot).await;
                    let done = Instant::now();
                    if intended >= measure_from {
                        completed += 1;
                        match result {
                            Ok(()) => {
                                let ns = u64::try_from(done.duration_since(intended).as_nanos()).unwrap_or(u64::MAX);
                                histogram.saturating_record(ns.max(1));
                            }
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                }
                (histogram, errors, completed, first_error)
            })
        })
        .collect();
    let mut histogram = new_histogram();
    let (mut errors, mut completed, mut first_error) = (0u64, 0u64, None);
    for worker in workers {
        if let Ok((h, e, c, f)) = worker.await {
            let _ = histogram.add(&h);
            errors += e;
            completed += c;
            if first_error.is_none() {
                first_error = f;
            }
        }
    }
    let window = Instant::now().min(end).saturating_duration_since(measure_from).max(Duration::from_millis(1));
    Measured { histogram, errors, first_error, throughput: (completed - errors) as f64 / window.as_secs_f64().max(load.duration.as_secs_f64()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_rate_charges_stalls_to_the_operations_they_delay() {
        // One client, 200/s for 1 s; every 50th operation stalls 100 ms. Measured from the
        // intended start, the stall shows up in far more than 2 % of the operations.
        let load = Load { mode: Mode::FixedRate(200.0), concurrency: 1, warmup: Duration::ZERO, duration: Duration::from_secs(1) };
        let m = drive(load, |i| async move {
            if i % 50 == 10 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        })
        .await;
        let slow = m.histogram.len() - m.histogram.count_between(0, 5_000_000);
        assert!(slow as f64 / m.histogram.len() as f64 > 0.10, "stalls charged to delayed operations: {slow} of {}", m.histogram.len());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_loop_counts_errors_and_throughput() {
        let load = Load { mode: Mode::ClosedLoop, concurrency: 2, warmup: Duration::from_millis(50), duration: Duration::from_millis(200) };
        let m = drive(load, |i| async move {
            tokio::task::yield_now().await;
            if i % 10 == 0 { Err(format!("op {i} failed")) } else { Ok(()) }
        })
        .await;
        assert!(m.histogram.len() > 100 && m.errors > 0, "{} samples, {} errors", m.histogram.len(), m.errors);
        assert!(m.first_error.is_some_and(|e| e.contains("failed")));
        assert!(m.throughput > 0.0);
    }
}
