//! An absurd shape must be refused without allocating for it: a counting allocator records
//! the largest single allocation made while loading.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use kestrel_loader::testfile::{entry, raw_file};
use kestrel_loader::LoadError;

struct Largest;
static MEASURING: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if MEASURING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if MEASURING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

#[test]
fn absurd_shapes_allocate_nothing_large() {
    // 2^40 F32 elements (4 TiB), and 2^61 BF16 (whose byte count, 2^62, fits in u64).
    for (dtype, shape) in [("F32", 1u64 << 40), ("BF16", 1 << 61)] {
        let header = format!("{{\"t\":{}}}", entry(dtype, &[shape], 0, 16));
        let bytes = raw_file(&header, &[0; 16]);
        LARGEST.store(0, Ordering::Relaxed);
        MEASURING.store(true, Ordering::Relaxed);
        let e = kestrel_loader::read_model_from_bytes("absurd.safetensors".as_ref(), &bytes);
        MEASURING.store(false, Ordering::Relaxed);
        assert!(matches!(e, Err(LoadError::ShapeTooLarge { .. })), "{e:?}");
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest < 4096,
            "largest allocation while loading: {largest} bytes"
        );
    }
}
