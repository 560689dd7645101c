//! Subnormal floats flushed to zero while Kestrel's CPU kernels run (x86's FTZ and DAZ bits
//! of MXCSR). A multiply or add that takes or makes a subnormal costs a microcode assist of
//! ~100 cycles on Intel cores: a squeeze-excite-scaled tensor of a random-weight
//! EfficientNet-B0 is 1.4% subnormal, which made the convs that read it run 3x slower
//! (docs/performance.md). Flushing changes a value only where it is below 1.2e-38 in
//! magnitude. The mode is per thread: the calling thread has it on for one run and gets its
//! own mode back, and the pool's workers take the caller's mode with each job
//! (`parallel::for_each_task`), so which thread runs a share never changes a result.

/// FTZ (results) and DAZ (inputs).
#[cfg(target_arch = "x86_64")]
const FLUSH: u32 = 0x8040;

/// While alive, this thread flushes subnormals to zero; dropping it restores the mode it
/// found.
pub struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushSubnormals {
    /// Turns flushing on for this thread until the guard drops.
    #[allow(clippy::new_without_default)]
    pub fn new() -> FlushSubnormals {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = mxcsr();
            set_mxcsr(saved | FLUSH);
            FlushSubnormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushSubnormals {}
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        set_mxcsr(self.saved);
    }
}

/// Whether this thread flushes subnormals now (false off x86-64).
pub(crate) fn flushing() -> bool {
    #[cfg(target_arch = "x86_64")]
    return mxcsr() & FLUSH == FLUSH;
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Turns this thread's flushing on or off (a pool worker taking its caller's mode).
pub(crate) fn set_flushing(on: bool) {
    #[cfg(target_arch = "x86_64")]
    set_mxcsr(match on {
        true => mxcsr() | FLUSH,
        false => mxcsr() & !FLUSH,
    });
    #[cfg(not(target_arch = "x86_64"))]
    let _ = on;
}

#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stmxcsr stores the 4-byte control register to a valid, aligned u32.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags)) };
    v
}

#[cfg(target_arch = "x86_64")]
fn set_mxcsr(v: u32) {
    // SAFETY: ldmxcsr loads a value read from the register with only FTZ/DAZ changed (or
    // the saved one): no reserved bit is set, so it cannot fault.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly, preserves_flags))
    };
}

#[cfg(test)]
mod tests {
    use super::FlushSubnormals;
    use std::hint::black_box;

    #[test]
    fn flushes_while_alive_and_restores() {
        let tiny = black_box(1e-39f32);
        assert!(
            black_box(tiny * 1.0) != 0.0,
            "subnormals are kept by default"
        );
        {
            let _flush = FlushSubnormals::new();
            assert_eq!(black_box(tiny * 1.0), 0.0);
            assert_eq!(black_box(1e-30f32) * black_box(1e-10), 0.0);
            assert_eq!(black_box(1e-30f32 * 2.0), 2e-30);
        }
        assert!(black_box(tiny * 1.0) != 0.0, "the mode is restored");
    }
}
