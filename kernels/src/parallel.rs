//! Splitting a kernel's work over a session's threads, without allocating or locking.
//!
//! Why not rayon here: a call into rayon from outside its pool pushes a job onto the global
//! injector queue, which allocates a new block every 63 jobs, and the caller then waits on
//! a mutex-backed latch. The zero-allocation test caught that. This pool is what a
//! real-time caller needs instead: one process-wide set of worker threads (cores − 1; the
//! calling thread is the last worker), one job slot claimed with a compare-and-swap, and
//! workers that spin briefly and then park. If another session holds the pool, the caller
//! runs its tasks alone rather than wait or oversubscribe the cores.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks: long enough to stay awake between the
/// layers of one run (a few µs apart), short enough not to burn a core between runs.
const SPIN: Duration = Duration::from_micros(200);

/// Calls `f(i)` for every `i` in `0..tasks`, split into at most `threads` contiguous
/// ranges run in parallel (never more ranges than cores). With one thread or one task, or
/// while another session holds the pool, it runs inline on the caller's thread.
pub fn for_each_task(threads: usize, tasks: usize, f: impl Fn(usize) + Sync + Send) {
    let pool = pool();
    let handles = pool.workers.get().map_or(&[][..], |w| &w[..]);
    let workers = threads.min(tasks).min(handles.len() + 1);
    if workers <= 1 || pool.busy.swap(true, Ordering::Acquire) {
        (0..tasks).for_each(f);
        return;
    }
    let range = |w: usize| tasks * w / workers..tasks * (w + 1) / workers;
    let share = |w: usize| range(w).for_each(&f);
    let job: &(dyn Fn(usize) + Sync) = &share;
    // SAFETY: the job slot is ours while `busy` is set. Workers read the job only between
    // the epoch bump below and their decrement of `remaining`, and we wait for every
    // decrement before returning, so the borrowed closure outlives every use of it: erasing
    // its lifetime to store it in the static slot is sound.
    unsafe {
        *pool.job.get() = Some(std::mem::transmute::<
            &(dyn Fn(usize) + Sync),
            &'static (dyn Fn(usize) + Sync),
        >(job));
    }
    pool.active.store(workers - 1, Ordering::Relaxed);
    pool.remaining.store(workers - 1, Ordering::Relaxed);
    pool.epoch.fetch_add(1, Ordering::Release);
    for w in &handles[..workers - 1] {
        w.unpark();
    }
    // The workers borrow `share` until they are done: even if our part panics, wait for
    // them before unwinding frees what they read.
    let ours = catch_unwind(AssertUnwindSafe(|| share(0)));
    let mut spins = 0u32;
    while pool.remaining.load(Ordering::Acquire) != 0 {
        // On a loaded machine a worker can lose its core mid-task: spinning on then would
        // burn the caller's whole time slice, so after a short spin give the core away.
        spins += 1;
        if spins < 4096 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
    // SAFETY: every worker is done with the job (remaining == 0) and `busy` is still ours.
    unsafe { *pool.job.get() = None };
    let panicked = pool.panicked.swap(false, Ordering::Relaxed);
    pool.busy.store(false, Ordering::Release);
    if let Err(payload) = ours {
        std::panic::resume_unwind(payload);
    }
    assert!(!panicked, "a kernel task panicked on a worker thread");
}

struct Pool {
    /// Handles to unpark the workers; set once they are spawned.
    workers: OnceLock<Vec<Thread>>,
    busy: AtomicBool,
    job: UnsafeCell<Option<&'static (dyn Fn(usize) + Sync)>>,
    /// Bumped once per job; workers wait for it to change.
    epoch: AtomicUsize,
    /// Workers 1..=active take part in the current job (worker w runs share w).
    active: AtomicUsize,
    remaining: AtomicUsize,
    panicked: AtomicBool,
}

// SAFETY: `job` is written only by the thread holding `busy` while no worker reads it, and
// read by workers only between the epoch bump and their `remaining` decrement.
unsafe impl Sync for Pool {}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            workers: OnceLock::new(),
            busy: AtomicBool::new(false),
            job: UnsafeCell::new(None),
            epoch: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            remaining: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        }));
        let threads = (1..cores)
            .map(|w| {
                let spawned = thread::Builder::new()
                    .name(format!("kestrel-worker-{w}"))
                    .spawn(move || worker(pool, w));
                spawned.map(|h| h.thread().clone())
            })
            .collect::<Result<Vec<Thread>, _>>()
            // Without worker threads every call runs inline: slower, still correct.
            .unwrap_or_default();
        let _ = pool.workers.set(threads);
        pool
    })
}

fn worker(pool: &'static Pool, w: usize) {
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let epoch = loop {
            let e = pool.epoch.load(Ordering::Acquire);
            if e != seen {
                break e;
            }
            if start.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                thread::park_timeout(Duration::from_millis(100));
            }
        };
        seen = epoch;
        if w > pool.active.load(Ordering::Relaxed) {
            continue;
        }
        // SAFETY: the job was stored before the epoch bump we acquired, and stays until
        // we decrement `remaining`.
        let job = unsafe { *pool.job.get() };
        if let Some(job) = job {
            if catch_unwind(AssertUnwindSafe(|| job(w))).is_err() {
                pool.panicked.store(true, Ordering::Relaxed);
            }
        }
        pool.remaining.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::for_each_task;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_task_runs_once() {
        for threads in [1, 2, 3, 8] {
            for tasks in [0, 1, 5, 64] {
                let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                for_each_task(threads, tasks, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn concurrent_callers_each_get_every_task_done() {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let hits: Vec<AtomicUsize> = (0..17).map(|_| AtomicUsize::new(0)).collect();
                        for_each_task(2, 17, |i| {
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        });
                        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                    }
                });
            }
        });
    }
}
