//! Splitting a kernel's work over a session's threads. Work runs on rayon's global pool,
//! which has one thread per core: sessions that share a machine share that pool instead of
//! each bringing its own threads, so they cannot oversubscribe the cores.

use rayon::prelude::*;

/// Calls `f(i)` for every `i` in `0..tasks`, split into at most `threads` contiguous ranges
/// run in parallel. With one thread (or one task) it runs inline on the caller's thread.
pub fn for_each_task(threads: usize, tasks: usize, f: impl Fn(usize) + Sync + Send) {
    let workers = threads.clamp(1, tasks.max(1));
    if workers == 1 {
        (0..tasks).for_each(f);
        return;
    }
    (0..workers).into_par_iter().with_min_len(1).for_each(|w| {
        let (start, end) = (tasks * w / workers, tasks * (w + 1) / workers);
        (start..end).for_each(&f);
    });
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
}
