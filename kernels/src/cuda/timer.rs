//! The GPU's own clock for the profiler: CUDA events between launches, and a hold kernel
//! that keeps the stream busy while the host queues the work to time.

use super::compile::Compiler;
use super::device::{driver, Gpu};
use super::module::Kernel;
use super::{CudaError, Launch, Source};
use cudarc::driver::sys;
use std::ffi::c_void;

/// `spin.cu`: the hold kernel [`Timer::hold`] launches.
static SPIN: Source = Source {
    name: "spin.cu",
    code: include_str!("spin.cu"),
};

/// The launch NVRTC compiles for `spin_ns`: one thread. Its `args` are empty because its
/// one parameter is the hold in nanoseconds, which [`Timer::hold`] passes itself.
pub fn spin_launch() -> Launch {
    Launch {
        source: &SPIN,
        entry: "spin_ns",
        defines: Vec::new(),
        grid: [1, 1, 1],
        block: [1, 1, 1],
        shared_bytes: 0,
        args: Vec::new(),
    }
}

/// Times the GPU's own work on a [`Gpu`]'s stream: CUDA events made once, recorded
/// ("marked") between launches, read after one synchronize; and a hold kernel that keeps
/// the stream busy while the host queues the work to time.
///
/// Why the hold: an eager launch costs the host ~4.1 µs on the H100 (docs/cuda.md), longer than
/// many batch-1 kernels run, so without it the GPU waits for the host between launches
/// and the time between two marks is launch cost. Queued whole behind the hold, the
/// launches run back to back, as in a graph, and each span is the GPU's time for the
/// work between its marks (event resolution ~0.5 µs).
pub struct Timer {
    events: Vec<cudarc::driver::CudaEvent>,
    spin: Kernel,
}

impl Timer {
    /// `marks` timing events on `gpu`, and the hold kernel compiled by `compiler`.
    pub fn new(gpu: &Gpu, compiler: &Compiler, marks: usize) -> Result<Timer, CudaError> {
        let events = (0..marks)
            .map(|_| {
                // CU_EVENT_DEFAULT keeps timing on (cudarc's default turns it off).
                gpu.ctx()
                    .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
                    .map_err(driver("create a timing event"))
            })
            .collect::<Result<_, _>>()?;
        let launch = spin_launch();
        let spin = gpu.load(&*compiler.module(&launch)?, &launch)?;
        Ok(Timer { events, spin })
    }

    /// Number of marks.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the timer has no marks.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Enqueues a one-thread kernel that keeps `gpu`'s stream busy for `ns` nanoseconds.
    pub fn hold(&self, gpu: &Gpu, ns: u64) -> Result<(), CudaError> {
        let what = || format!("launch spin_ns ({ns} ns)");
        let mut ns = ns;
        let mut params = [(&mut ns as *mut u64).cast::<c_void>()];
        gpu.ctx().bind_to_thread().map_err(driver(what()))?;
        // SAFETY: spin_ns takes exactly one `unsigned long long` (spin.cu), given here as
        // a pointer to one u64, and touches no memory.
        unsafe {
            self.spin
                .launch(gpu.stream().cu_stream(), [1; 3], [1; 3], 0, &mut params)
        }
        .map_err(driver(what()))
    }

    /// Enqueues mark `i` on `gpu`'s stream: it is reached when everything enqueued before
    /// it has run. Re-marking replaces the previous time.
    pub fn mark(&self, gpu: &Gpu, i: usize) -> Result<(), CudaError> {
        let event = self.event(i, "record")?;
        event
            .record(gpu.stream())
            .map_err(driver(format!("record timing event {i}")))
    }

    /// Whether the GPU has reached mark `i`, without waiting (true for a mark never
    /// recorded). False right after queuing work means the GPU has not yet started the
    /// work queued after the mark.
    pub fn reached(&self, i: usize) -> Result<bool, CudaError> {
        self.event(i, "query")?
            .try_is_complete()
            .map_err(driver(format!("query timing event {i}")))
    }

    /// Seconds from each mark to the next (`len() - 1` values), waiting for the marks.
    /// Every mark must have been recorded.
    pub fn spans(&self) -> Result<Vec<f64>, CudaError> {
        self.events
            .windows(2)
            .enumerate()
            .map(|(i, pair)| {
                pair[0]
                    .elapsed_ms(&pair[1])
                    .map(|ms| ms as f64 * 1e-3)
                    .map_err(driver(format!("read timing events {i} and {}", i + 1)))
            })
            .collect()
    }

    fn event(&self, i: usize, what: &str) -> Result<&cudarc::driver::CudaEvent, CudaError> {
        self.events.get(i).ok_or_else(|| CudaError::Driver {
            what: format!("{what} timing event {i}"),
            detail: format!("the timer has {} marks", self.events.len()),
        })
    }
}
