//! 1×1 convs of 1×1 planes (squeeze-excite's) as a linear layer, a GEMV at batch 1:
//! `LinearCpu` streams the weights once for all outputs, where the GEMM ran an 8-column
//! tile for one column. x: (n, c_in, 1, 1) is (rows, in) as it lies, y: (n, c_out, 1, 1)
//! is (rows, out).

use crate::conv2d::Conv2dParams;
use crate::linear::{cpu::LinearCpu, LinearParams};
use crate::{Activation, Isa};

/// Whether `GemvCpu` can compute this conv: 1×1 kernel, 1×1 input planes, no padding,
/// one group (any stride or dilation: the output is 1×1 too).
pub fn applies(p: &Conv2dParams) -> bool {
    [p.kh, p.kw, p.h, p.w, p.groups] == [1; 5] && p.pad == [0, 0]
}

/// A 1×1 conv of 1×1 planes prepared as a linear layer: weights packed once for `isa`.
pub struct GemvCpu {
    p: Conv2dParams,
    isa: Isa,
    lin: LinearCpu,
}

impl GemvCpu {
    /// weight: (c_out, c_in, 1, 1)  bias: (c_out). Panics on invalid params, unless
    /// `applies(p)`, or on an ISA this CPU lacks.
    pub fn new(p: &Conv2dParams, weight: &[f32], bias: Option<&[f32]>, isa: Isa) -> GemvCpu {
        p.validate().expect("GemvCpu: invalid params");
        assert!(applies(p), "GemvCpu: not a 1×1 conv of 1×1 planes: {p:?}");
        assert!(isa.is_supported(), "GemvCpu: this CPU cannot run {isa}");
        assert_eq!(weight.len(), p.c_out * p.c_in, "GemvCpu: weight length");
        bias.inspect(|b| assert_eq!(b.len(), p.c_out, "GemvCpu: bias length"));
        let lp = LinearParams {
            rows: p.n,
            in_features: p.c_in,
            out_features: p.c_out,
        };
        GemvCpu {
            p: *p,
            isa,
            lin: LinearCpu::new(&lp, weight, bias, isa),
        }
    }

    /// Floats of scratch `run_scaled` needs: x · in_scale (n × c_in), whatever the threads.
    pub fn scratch_len(&self, _threads: usize) -> usize {
        self.p.n * self.p.c_in
    }

    /// y = act(conv(x · in_scale) + bias + residual), or without a scale when None; as
    /// `Conv2dCpu::run_scaled`: x · in_scale is written to scratch first. Allocates
    /// nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn run_scaled(
        &self,
        x: &[f32],
        in_scale: Option<&[f32]>,
        residual: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        // x, in_scale: (n, c_in, 1, 1) = (rows, in)  y, residual: (n, c_out, 1, 1)
        self.p.assert_io("GemvCpu", x, y, residual);
        let x = match in_scale {
            // n × c_in products: x is as small as the scale itself.
            Some(s) => {
                self.p.assert_in_scale("GemvCpu", s);
                let xs = &mut scratch[..x.len()];
                xs.iter_mut()
                    .zip(x.iter().zip(s))
                    .for_each(|(d, (&v, &s))| *d = v * s);
                &*xs
            }
            None => x,
        };
        let Some(r) = residual else {
            return self.lin.run(x, act, y, threads);
        };
        // The activation comes after the residual: a pass over the n·c_out outputs.
        self.lin.run(x, Activation::None, y, threads);
        y.iter_mut().zip(r).for_each(|(y, r)| *y += r);
        crate::activation::cpu::activate_in_place(self.isa, act, y, threads)
    }
}
