//! Per-thread CPU time, the bench's clock.
//!
//! The bench runs on machines where other builds share the cores; wall time would charge
//! their work to ours. The CPU time of the worker thread counts only what the method did
//! (onnxruntime runs its one intra-op thread on the caller, so inference is counted too).

use std::time::Instant;

use nix::time::{clock_gettime, ClockId};

/// Seconds of CPU the calling thread has used, or `None` where the clock is missing.
fn thread_cpu_seconds() -> Option<f64> {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .ok()
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
}

/// Runs `f` and returns its result with the thread CPU seconds it took (wall seconds
/// where the thread clock is unavailable).
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let (cpu, wall) = (thread_cpu_seconds(), Instant::now());
    let out = f();
    let secs = match (cpu, thread_cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => wall.elapsed().as_secs_f64(),
    };
    (out, secs.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_takes_cpu_and_sleep_does_not() {
        // black_box: work whose result is dropped could be optimised away.
        let work =
            || (0..3_000_000u64).fold(0u64, |a, b| std::hint::black_box(a ^ b.wrapping_mul(31)));
        let (_, busy) = timed(work);
        let (_, idle) = timed(|| std::thread::sleep(std::time::Duration::from_millis(50)));
        assert!(busy > idle, "{busy} s of work, {idle} s asleep");
        assert!(idle < 0.04, "sleep counted as {idle} s of CPU");
    }
}
