//! Splitting a kernel's work over a session's threads, without allocating or locking.
//!
//! Why not rayon here: a call into rayon from outside its pool pushes a job onto the global
//! injector queue, which allocates a new block every 63 jobs, and the caller then waits on
//! a mutex-backed latch. The zero-allocation test caught that. This pool is what a
//! real-time caller needs instead: one process-wide set of worker threads (cores − 1; the
//! calling thread is the last worker), one job slot taken with a swap, shares of the job
//! claimed with a compare-and-swap, and workers that spin briefly and then park. If
//! another session holds the pool, the caller runs its tasks alone rather than wait or
//! oversubscribe the cores.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks: long enough to stay awake between the
/// layers of one run (a few µs apart), short enough not to burn a core between runs.
const SPIN: Duration = Duration::from_micros(200);

/// Calls `f(i)` for every `i` in `0..tasks`, split into at most `threads` contiguous
/// ranges ("shares", never more than cores) run in parallel. With one thread or one task,
/// or while another session holds the pool, it runs inline on the caller's thread.
///
/// Shares are claimed, not assigned: the caller and the woken workers each take the next
/// unclaimed share until none is left. A worker that wakes late (parked, or its vCPU
/// descheduled by the host) then finds its share already done by the caller instead of
/// making the caller wait for it. Share i always covers the same range, so which thread
/// runs it never changes the result.
pub fn for_each_task(threads: usize, tasks: usize, f: impl Fn(usize) + Sync + Send) {
    let pool = pool();
    let handles = pool.workers.get().map_or(&[][..], |w| &w[..]);
    let shares = threads.min(tasks).min(handles.len() + 1);
    if shares <= 1 || pool.busy.swap(true, Ordering::Acquire) {
        (0..tasks).for_each(f);
        return;
    }
    let range = |w: usize| tasks * w / shares..tasks * (w + 1) / shares;
    let share = |w: usize| range(w).for_each(&f);
    let job: &(dyn Fn(usize) + Sync) = &share;
    // SAFETY: the job slot is ours while `busy` is set. A worker reads the job only after
    // claiming a share of this generation, and we wait until every claimed share is done
    // before returning, so the borrowed closure outlives every use of it: erasing its
    // lifetime to store it in the static slot is sound.
    unsafe {
        *pool.job.get() = Some(std::mem::transmute::<
            &(dyn Fn(usize) + Sync),
            &'static (dyn Fn(usize) + Sync),
        >(job));
    }
    let generation = (pool.claim.load(Ordering::Relaxed) >> 32).wrapping_add(1) & 0xffff_ffff;
    pool.shares.store(shares, Ordering::Relaxed);
    pool.flush
        .store(crate::subnormals::flushing(), Ordering::Relaxed);
    pool.done.store(0, Ordering::Relaxed);
    // Publishes the job, `shares`, `flush` and `done` to whoever claims a share of this
    // generation.
    pool.claim.store(generation << 32, Ordering::Release);
    for w in &handles[..shares - 1] {
        w.unpark();
    }
    // Claimed shares borrow `share` until they are done: even if ours panics, wait for
    // the others before unwinding frees what they read.
    let (mut ours, mut mine) = (Ok(()), 0);
    while let Some(s) = pool.claim_share(generation) {
        mine += 1;
        let run = catch_unwind(AssertUnwindSafe(|| share(s)));
        if ours.is_ok() {
            ours = run;
        }
    }
    let mut spins = 0u32;
    while pool.done.load(Ordering::Acquire) + mine < shares {
        // On a loaded machine a worker can lose its core mid-share: spinning on then would
        // burn the caller's whole time slice, so after a short spin give the core away.
        spins += 1;
        if spins < 4096 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
    // SAFETY: every claimed share is done and no more can be claimed; `busy` is still ours.
    unsafe { *pool.job.get() = None };
    let panicked = pool.panicked.swap(false, Ordering::Relaxed);
    pool.busy.store(false, Ordering::Release);
    if let Err(payload) = ours {
        std::panic::resume_unwind(payload);
    }
    assert!(!panicked, "a kernel task panicked on a worker thread");
}

/// Outputs below this many floats run on one thread in `for_each_part`: a 2-thread split
/// costs a few µs of wake-up, what an element-wise pass over ~32K floats takes.
pub const MIN_PARALLEL_FLOATS: usize = 32 << 10;

/// Calls `f(start, part)` on contiguous parts of `y` that together cover it, `part`
/// starting at float `start` and every cut at a multiple of `unit` floats, in parallel on
/// up to `threads` threads (one part when y is shorter than `MIN_PARALLEL_FLOATS`). For
/// the element-wise kernels, whose outputs split anywhere (or at row ends).
pub fn for_each_part(
    threads: usize,
    y: &mut [f32],
    unit: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    let unit = unit.max(1);
    let units = y.len() / unit;
    let parts = match y.len() < MIN_PARALLEL_FLOATS {
        true => 1,
        false => threads.clamp(1, units.max(1)),
    };
    if parts == 1 {
        return f(0, y);
    }
    let len = y.len();
    let y = SharedMut::new(y);
    for_each_task(threads, parts, |t| {
        let start = units * t / parts * unit;
        let end = match t + 1 == parts {
            true => len,
            false => units * (t + 1) / parts * unit,
        };
        // SAFETY: parts t are disjoint ranges of y.
        f(start, unsafe { y.part(start, end - start) })
    });
}

/// Pins the pool's worker threads, worker `w` to `cores[w % cores.len()]`, for callers
/// who pin their own thread too (`affinity::pin_current_thread`) and want the workers off
/// that core. Process-wide, as the pool is; a later call re-pins.
pub fn pin_workers(cores: &[usize]) -> Result<(), crate::affinity::PinError> {
    let pool = pool();
    if cores.is_empty() {
        return Ok(());
    }
    for (w, tid) in pool
        .tids
        .get()
        .map_or(&[][..], |t| &t[..])
        .iter()
        .enumerate()
    {
        // Recorded before `pool()` returned, unless the worker failed to start in time.
        let id = tid.load(Ordering::Acquire);
        let core = cores[w % cores.len()];
        if id == 0 {
            return Err(crate::affinity::PinError {
                core,
                reason: format!("worker {} never started", w + 1),
            });
        }
        crate::affinity::pin_thread(id, core)?;
    }
    Ok(())
}

/// Worker threads in the pool (cores − 1; the calling thread is the last worker).
pub fn worker_count() -> usize {
    pool().workers.get().map_or(0, Vec::len)
}

struct Pool {
    /// Handles to unpark the workers; set once they are spawned.
    workers: OnceLock<Vec<Thread>>,
    /// Each worker's kernel thread id, stored by the worker as it starts (0 until then).
    tids: OnceLock<Vec<AtomicI32>>,
    busy: AtomicBool,
    job: UnsafeCell<Option<&'static (dyn Fn(usize) + Sync)>>,
    /// generation << 32 | next unclaimed share. A new job bumps the generation; workers
    /// wait for that, and a claim is a compare-and-swap that fails once the job moved on.
    claim: AtomicU64,
    /// Shares of the current job.
    shares: AtomicUsize,
    /// Shares of the current job finished by workers.
    done: AtomicUsize,
    panicked: AtomicBool,
    /// Whether the current job's caller flushes subnormals: its workers do as it does
    /// while they run its shares.
    flush: AtomicBool,
}

// SAFETY: `job` is written only by the thread holding `busy` while no share is claimed or
// running, and read by workers only while running a share they claimed.
unsafe impl Sync for Pool {}

impl Pool {
    /// The next unclaimed share of job `generation`, if that job still has one.
    fn claim_share(&self, generation: u64) -> Option<usize> {
        let mut c = self.claim.load(Ordering::Acquire);
        loop {
            let next = (c & 0xffff_ffff) as usize;
            if c >> 32 != generation || next >= self.shares.load(Ordering::Relaxed) {
                return None;
            }
            match self
                .claim
                .compare_exchange_weak(c, c + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(next),
                Err(now) => c = now,
            }
        }
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            workers: OnceLock::new(),
            tids: OnceLock::new(),
            busy: AtomicBool::new(false),
            job: UnsafeCell::new(None),
            claim: AtomicU64::new(0),
            shares: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            flush: AtomicBool::new(false),
        }));
        let _ = pool
            .tids
            .set((1..cores).map(|_| AtomicI32::new(0)).collect());
        let threads = (1..cores)
            .map(|w| {
                let spawned = thread::Builder::new()
                    .name(format!("kestrel-worker-{w}"))
                    .spawn(move || worker(pool, w - 1));
                spawned.map(|h| h.thread().clone())
            })
            .collect::<Result<Vec<Thread>, _>>()
            // Without worker threads every call runs inline: slower, still correct.
            .unwrap_or_default();
        // Wait for the workers to start: a thread's start-up allocates, and must not land
        // in a later run (the zero-allocation test saw it there, now and then). None to
        // wait for when spawning failed.
        let started = threads.len();
        let _ = pool.workers.set(threads);
        let start = Instant::now();
        let tids = pool.tids.get().map_or(&[][..], |t| &t[..started]);
        while tids.iter().any(|t| t.load(Ordering::Acquire) == 0)
            && start.elapsed() < Duration::from_secs(1)
        {
            thread::yield_now();
        }
        pool
    })
}

fn worker(pool: &'static Pool, index: usize) {
    if let Some(tid) = pool.tids.get().and_then(|t| t.get(index)) {
        tid.store(crate::affinity::current_tid(), Ordering::Release);
    }
    let (mut seen, mut flushing) = (0, crate::subnormals::flushing());
    loop {
        let start = Instant::now();
        let generation = loop {
            let g = pool.claim.load(Ordering::Acquire) >> 32;
            if g != seen {
                break g;
            }
            if start.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                thread::park_timeout(Duration::from_millis(100));
            }
        };
        seen = generation;
        while let Some(s) = pool.claim_share(generation) {
            // The caller's subnormal mode, published with the generation we claimed in:
            // a share's floats must not depend on the thread that runs it.
            let flush = pool.flush.load(Ordering::Relaxed);
            if flush != flushing {
                crate::subnormals::set_flushing(flush);
                flushing = flush;
            }
            // SAFETY: the job was stored before the generation we claimed in was published,
            // and stays until the caller has seen our share done.
            if let Some(job) = unsafe { *pool.job.get() } {
                if catch_unwind(AssertUnwindSafe(|| job(s))).is_err() {
                    pool.panicked.store(true, Ordering::Relaxed);
                }
            }
            pool.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// A mutable slice shared by the tasks of `for_each_task`, each writing its own
/// disjoint part (no locks: the split is the proof).
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<'a> {
    ptr: *mut f32,
    len: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: SharedMut is a `&mut [f32]` handed out in parts; `part`'s contract keeps those
// parts disjoint across threads.
unsafe impl Send for SharedMut<'_> {}
// SAFETY: as above.
unsafe impl Sync for SharedMut<'_> {}

impl<'a> SharedMut<'a> {
    pub(crate) fn new(y: &'a mut [f32]) -> Self {
        SharedMut {
            ptr: y.as_mut_ptr(),
            len: y.len(),
            _borrow: PhantomData,
        }
    }

    /// The first float, for kernels that hand raw pointers into the buffer on to their
    /// tasks (the GEMM's C, a transform's rows); dereferencing them is up to those tasks.
    pub(crate) fn as_mut_ptr(&self) -> *mut f32 {
        self.ptr
    }

    /// `y[start..start + len]`.
    ///
    /// # Safety
    /// No two live parts may overlap.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part(&self, start: usize, len: usize) -> &'a mut [f32] {
        assert!(
            start <= self.len && len <= self.len - start,
            "SharedMut: part out of range"
        );
        std::slice::from_raw_parts_mut(self.ptr.add(start), len)
    }
}

#[cfg(test)]
mod tests {
    use super::{for_each_part, for_each_task, MIN_PARALLEL_FLOATS};
    use crate::subnormals::FlushSubnormals;
    use std::hint::black_box;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_share_runs_in_the_callers_subnormal_mode() {
        // Whichever thread claims a share, a subnormal product is kept when the caller
        // keeps subnormals and flushed when it flushes them, alternately, many times over.
        let tiny = black_box(1e-39f32);
        for round in 0..200 {
            let flushing = round % 2 == 1;
            let _flush = flushing.then(FlushSubnormals::new);
            let kept = AtomicUsize::new(0);
            for_each_task(2, 8, |_| {
                if black_box(tiny) * black_box(1.0f32) != 0.0 {
                    kept.fetch_add(1, Ordering::Relaxed);
                }
            });
            let want = if flushing { 0 } else { 8 };
            assert_eq!(kept.load(Ordering::Relaxed), want, "round {round}");
        }
    }

    #[test]
    fn parts_cover_the_output_once_at_unit_multiples() {
        // Every float written exactly once, with its own index; cuts on unit multiples.
        for (len, unit) in [
            (10, 1),
            (MIN_PARALLEL_FLOATS, 1),
            (MIN_PARALLEL_FLOATS + 7, 1),
            (3 * MIN_PARALLEL_FLOATS, 49),
            (MIN_PARALLEL_FLOATS * 2, MIN_PARALLEL_FLOATS * 2),
        ] {
            for threads in [1, 2, 3, 8] {
                let mut y = vec![-1.0; len];
                let parts = AtomicUsize::new(0);
                for_each_part(threads, &mut y, unit, |start, part| {
                    assert!(
                        start % unit == 0 && (part.len() % unit == 0 || start + part.len() == len)
                    );
                    parts.fetch_add(1, Ordering::Relaxed);
                    for (i, v) in part.iter_mut().enumerate() {
                        assert_eq!(*v, -1.0, "written twice");
                        *v = (start + i) as f32;
                    }
                });
                assert!(
                    y.iter().enumerate().all(|(i, &v)| v == i as f32),
                    "{len} {unit}"
                );
                let want_parallel = len >= MIN_PARALLEL_FLOATS && threads > 1 && len / unit > 1;
                let n = parts.load(Ordering::Relaxed);
                assert!(
                    want_parallel == (n > 1),
                    "{len} {unit} {threads}: {n} parts"
                );
            }
        }
    }

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
    fn a_panicking_task_reaches_the_caller_and_the_pool_goes_on() {
        for bad in [0, 7] {
            let caught = std::panic::catch_unwind(|| {
                for_each_task(2, 8, |i| assert_ne!(i, bad, "task {i}"));
            });
            assert!(caught.is_err(), "task {bad} panicked unseen");
            let hits = AtomicUsize::new(0);
            for_each_task(2, 8, |_| {
                hits.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(hits.load(Ordering::Relaxed), 8);
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
