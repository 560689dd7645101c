//! A batch run as several passes of a smaller plan (CPU sessions): each pass takes a few
//! images through the whole network, so that their activations stay in the caches from one
//! layer to the next, instead of every layer reading and writing the whole batch's.
//!
//! Measured on the Xeon model 207 (whole models at batch 8; the session run whole and the
//! one run in passes taking turns in one process; time of the passes over the whole run):
//! MobileNetV2 0.71× on 1 thread (passes of 1 image), 0.86–0.90× on 2 (passes of 2);
//! EfficientNet-B0 0.95–0.96× on 2; ResNet-50 0.89–0.93× on 1, 0.95–1.00× on 2;
//! MobileNetV3-Large 0.98×; ResNet-18 level on 2 threads, 0.83–0.95× on 1 (noisy). A
//! pass reads every layer's weights again, so a model whose whole batch stays in the
//! caches gains nothing: the CIFAR net (a 1.6 MB arena at batch 8) ran 1.03× on 1 thread,
//! level on 2. [`images_per_pass`] holds the rule.

use super::{Executor, Inputs};
use crate::error::Error;
use crate::plan::{Plan, Slot};

/// Images per pass for a CPU session of `plan` (built at the session's batch) on
/// `threads` threads: `forced` when given; else, where the batch's arena is larger than
/// the threads' L2 caches, the largest divisor of the batch up to the thread count (each
/// thread then has an image of its own in every layer); else the whole batch.
pub(crate) fn images_per_pass(plan: &Plan, threads: usize, forced: Option<usize>) -> usize {
    let batch = plan.values[0].shape[0];
    if let Some(per) = forced {
        return per;
    }
    // A CPU that reports no L2: Zen 4's 1 MiB, the smallest met.
    let l2 = match kestrel_kernels::cpu_info::cpu().l2 {
        0 => 1 << 20,
        l2 => l2,
    };
    if plan.arena_len * std::mem::size_of::<f32>() <= l2 * threads {
        return batch;
    }
    (1..=threads.min(batch))
        .rev()
        .find(|&d| batch.is_multiple_of(d))
        .unwrap_or(1)
}

/// Runs a batch as `passes` runs of `inner` over `plan`, a plan of the same graph at
/// batch / passes, and gathers the outputs at the whole batch.
pub(crate) struct Passes<E> {
    inner: E,
    /// The graph planned at the images of one pass.
    plan: Plan,
    passes: usize,
    /// Every output of the last run, at the session's batch.
    outputs: Vec<Vec<f32>>,
}

impl<E: Executor> Passes<E> {
    /// `inner` runs `plan`, built at the images of one pass; `whole` is the session's plan,
    /// at `passes` times that batch, with the same steps in the same order. The outputs
    /// at the whole batch are allocated fallibly: a batch too large for them is
    /// `Error::OutOfMemory`.
    pub(crate) fn new(
        inner: E,
        plan: Plan,
        whole: &Plan,
        passes: usize,
    ) -> Result<Passes<E>, Error> {
        let outputs = whole
            .outputs
            .iter()
            .map(|&v| crate::tensor::zeroed(whole.values[v].len, "session outputs"))
            .collect::<Result<_, _>>()?;
        Ok(Passes {
            inner,
            plan,
            passes,
            outputs,
        })
    }

    /// The inputs of pass `pass`: each input's images of that pass.
    fn part<'a>(&self, inputs: &'a dyn Inputs, pass: usize) -> Part<'a> {
        Part {
            inputs,
            pass,
            passes: self.passes,
        }
    }

    /// Copies the last pass's outputs into place in the whole batch's.
    fn gather(&mut self, pass: usize) {
        for (k, out) in self.outputs.iter_mut().enumerate() {
            let part = self.inner.output(&self.plan, k);
            out[pass * part.len()..][..part.len()].copy_from_slice(part);
        }
    }
}

/// One pass's share of the caller's inputs: images pass·b.. of each, b = batch / passes.
struct Part<'a> {
    inputs: &'a dyn Inputs,
    pass: usize,
    passes: usize,
}

impl Inputs for Part<'_> {
    fn data(&self, i: usize) -> &[f32] {
        let all = self.inputs.data(i);
        let len = all.len() / self.passes;
        &all[self.pass * len..][..len]
    }
}

impl<E: Executor> Executor for Passes<E> {
    fn run(&mut self, _whole: &Plan, inputs: &dyn Inputs) -> Result<(), Error> {
        for pass in 0..self.passes {
            self.inner.run(&self.plan, &self.part(inputs, pass))?;
            self.gather(pass);
        }
        Ok(())
    }

    /// Shows `tap` each step's output at the whole batch, after the last pass: this
    /// allocates a copy of every step's output (fallibly: `Error::OutOfMemory`).
    fn run_with(
        &mut self,
        whole: &Plan,
        inputs: &dyn Inputs,
        tap: &mut dyn FnMut(&str, &Slot, &[f32]),
    ) -> Result<(), Error> {
        let mut outs: Vec<Vec<f32>> = whole
            .steps
            .iter()
            .map(|s| crate::tensor::zeroed(whole.values[s.output].len, "layer outputs"))
            .collect::<Result<_, _>>()?;
        for pass in 0..self.passes {
            let mut k = 0;
            let part = self.part(inputs, pass);
            self.inner.run_with(&self.plan, &part, &mut |_, _, data| {
                outs[k][pass * data.len()..][..data.len()].copy_from_slice(data);
                k += 1;
            })?;
            self.gather(pass);
        }
        for (step, data) in whole.steps.iter().zip(&outs) {
            tap(&step.name, &whole.values[step.output], data);
        }
        Ok(())
    }

    fn output(&self, _whole: &Plan, index: usize) -> &[f32] {
        &self.outputs[index]
    }

    /// Each step's time summed over the passes of a run.
    fn profile(
        &mut self,
        _whole: &Plan,
        inputs: &dyn Inputs,
        runs: usize,
    ) -> Result<(Vec<f64>, Option<usize>), Error> {
        let mut seconds = vec![0.0; self.plan.steps.len()];
        for pass in 0..self.passes {
            let part = self.part(inputs, pass);
            let (times, _) = self.inner.profile(&self.plan, &part, runs)?;
            seconds.iter_mut().zip(times).for_each(|(s, t)| *s += t);
        }
        Ok((seconds, None))
    }

    fn kernels_name(&self) -> &str {
        self.inner.kernels_name()
    }

    fn algorithm(&self, step: usize) -> Option<&'static str> {
        self.inner.algorithm(step)
    }

    fn threads(&self) -> usize {
        self.inner.threads()
    }

    fn arena_len(&self) -> usize {
        self.inner.arena_len()
    }

    fn kernel_count(&self, _whole: &Plan) -> usize {
        self.passes * self.inner.kernel_count(&self.plan)
    }

    fn images_per_pass(&self) -> Option<usize> {
        Some(self.plan.values[0].shape[0])
    }
}
