//! Per-step GPU times of a CUDA session (`bench --per-layer`): the steps queued behind a
//! spin kernel, so they run back to back as in the graph, with events between them.

use super::{CudaExecutor, Error, Inputs};
use kestrel_kernels as k;
use kestrel_kernels::cuda::compile::Compiler;
use kestrel_kernels::cuda::device::Timer;
use kestrel_kernels::cuda::CudaError;
use std::time::{Duration, Instant};

/// The first run's hold. Each later run holds twice the host's queuing time of the run
/// before plus `HOLD_MARGIN`, and at least twice the last hold after a run the GPU
/// started before the host had queued it all.
const HOLD_FIRST: Duration = Duration::from_micros(100);
const HOLD_MARGIN: Duration = Duration::from_micros(20);
/// Past this a run is timed even if the GPU caught up with the host (a run so long to
/// queue may fill the launch queue, which no hold can fix): its spans then include
/// launch gaps, and `Profile::queued_ahead` counts it out.
const HOLD_MAX: Duration = Duration::from_millis(20);

/// What [`CudaExecutor::profile_steps`] measured.
pub(crate) struct Profile {
    /// Mean GPU seconds per step, in plan order; 0 for steps with no launches.
    pub seconds: Vec<f64>,
    /// Timed runs the GPU started only after the host had queued all of them.
    pub queued_ahead: usize,
}

impl CudaExecutor {
    /// Times each step on the GPU over `runs` eager runs (at least one, after one untimed
    /// run that loads the modules and sizes the hold). A run: the inputs copied in, the
    /// hold kernel, mark 0, then each step's launches followed by its own mark, all
    /// queued before the GPU leaves the hold; one synchronize, then the spans between
    /// marks are the steps' times. Nothing is copied out: the outputs of the last `run`
    /// stay as they were. A run the GPU started before the host had queued it all
    /// is run again with a longer hold, up to `HOLD_MAX`.
    pub(crate) fn profile_steps(
        &mut self,
        inputs: &dyn Inputs,
        runs: usize,
    ) -> Result<Profile, Error> {
        let compiler = Compiler::new(self.gpu.arch(), k::cuda::compile::default_cache_dir())?;
        // The steps that launch anything; mark m + 1 follows marked[m]'s launches.
        let marked: Vec<usize> = (0..self.steps.len())
            .filter(|&s| !self.steps[s].is_empty())
            .collect();
        let timer = Timer::new(&self.gpu, &compiler, marked.len() + 1)?;
        self.stage_inputs(inputs);
        let mut seconds = vec![0.0; self.steps.len()];
        let (mut timed, mut queued_ahead, mut warmed) = (0, 0, false);
        let mut hold = HOLD_FIRST;
        while timed < runs.max(1) {
            let (ahead, queuing) = self.profile_run(&timer, &marked, hold)?;
            let again = !ahead && hold < HOLD_MAX;
            // Each retry at least doubles the hold, so retries end at HOLD_MAX.
            let floor = if ahead { Duration::ZERO } else { 2 * hold };
            hold = (2 * queuing + HOLD_MARGIN).max(floor).min(HOLD_MAX);
            if !warmed || again {
                warmed = true;
                continue;
            }
            for (&s, span) in marked.iter().zip(timer.spans()?) {
                seconds[s] += span;
            }
            timed += 1;
            queued_ahead += ahead as usize;
        }
        seconds.iter_mut().for_each(|t| *t /= timed as f64);
        Ok(Profile {
            seconds,
            queued_ahead,
        })
    }

    /// Queues one marked run behind a hold of `hold` and waits for it. Returns whether
    /// the GPU was still holding when the last launch was queued (so the steps ran back
    /// to back, with no wait for the host), and how long queuing took the host.
    fn profile_run(
        &mut self,
        timer: &Timer,
        marked: &[usize],
        hold: Duration,
    ) -> Result<(bool, Duration), CudaError> {
        self.copy_inputs_in()?;
        timer.hold(&self.gpu, hold.as_nanos() as u64)?;
        let start = Instant::now();
        timer.mark(&self.gpu, 0)?;
        for (m, &s) in marked.iter().enumerate() {
            for call in &self.steps[s] {
                self.gpu.launch(&call.function, &call.launch, &call.ptrs)?;
            }
            timer.mark(&self.gpu, m + 1)?;
        }
        let queuing = start.elapsed();
        let ahead = !timer.reached(0)?;
        self.gpu.synchronize()?;
        Ok((ahead, queuing))
    }
}
