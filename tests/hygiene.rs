//! 1,000 load / build / run / drop cycles leave resident memory where it was after the
//! first hundred: nothing a cycle makes outlives it (a leaked arena, packed weights or
//! worker would add up to megabytes here). Linux: reads /proc/self/statm.

mod common;

use common::fixture;
use kestrel::{Model, SessionOptions};

/// Resident set size in bytes.
#[cfg(target_os = "linux")]
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

fn cycle(bytes: &[u8], threads: usize, x: &[f32]) -> f32 {
    let model = Model::from_bytes("cifarnet", bytes).unwrap();
    let opts = SessionOptions::default().with_threads(threads);
    let mut session = model.session(&opts).unwrap();
    session.run(&[x]).unwrap().get(0).unwrap().data[0]
}

#[cfg(target_os = "linux")]
#[test]
fn a_thousand_cycles_do_not_grow_resident_memory() {
    let bytes = std::fs::read(fixture("cifarnet")).unwrap();
    let x: Vec<f32> = (0..3 * 32 * 32)
        .map(|i| (i % 13) as f32 / 6.0 - 1.0)
        .collect();
    let first = cycle(&bytes, 1, &x);
    for i in 0..100 {
        assert_eq!(cycle(&bytes, 1 + i % 2, &x), first);
    }
    let after_100 = rss();
    for i in 0..900 {
        assert_eq!(cycle(&bytes, 1 + i % 2, &x), first);
    }
    let after_1000 = rss();
    // One cycle allocates ~0.5 MB (weights, packed weights, arena): a leak of any of them
    // would add ~450 MB over 900 cycles. 4 MB leaves room for the allocator's own moods.
    let growth = after_1000 as i64 - after_100 as i64;
    assert!(
        growth < 4 << 20,
        "resident memory grew by {} KiB over 900 cycles ({} -> {} KiB)",
        growth >> 10,
        after_100 >> 10,
        after_1000 >> 10
    );
}
