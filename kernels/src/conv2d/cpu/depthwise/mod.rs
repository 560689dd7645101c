//! Depthwise conv2d on the CPU (groups = c_in = c_out), any kernel, stride, pad and
//! dilation, with the fused epilogue `y = act(conv + bias + residual)`.
//!
//! Loop 1: (image, channel) planes, or blocks of channels, split over threads
//! (`parallel::for_each_task`); each task's range goes to one of three paths:
//! - `blocked.rs`: 3×3 and 5×5 at stride 1 or 2 with outputs at most 8 wide (MobileNetV3's
//!   and EfficientNet's 7×7 layers), and 5×5 stride 1 up to 28 wide: a vector holds one
//!   pixel of LANES channels.
//! - `padded.rs`: 3×3 and 5×5 at stride 1 or 2 (all of MobileNetV2's, MobileNetV3's and
//!   EfficientNet's): a zero-padded, stride-deinterleaved copy of each plane, then
//!   mask-free FMA chunks, several output rows per pass.
//! - `strided.rs`: anything else, straight from x with lane masks at the borders.

mod blocked;
mod padded;
mod strided;

use std::ops::Range;

use crate::parallel::for_each_task;
use crate::parallel::SharedMut;
use crate::simd::{dispatch, store_epilogue, Simd};
use crate::{Activation, Isa};

use crate::conv2d::Conv2dParams;

/// Whether `DepthwiseCpu` can compute this conv: depthwise with multiplier 1 (groups =
/// c_in = c_out), any kernel, stride, pad and dilation.
pub fn applies(p: &Conv2dParams) -> bool {
    p.depthwise_multiplier() == Some(1)
}

/// A depthwise conv with its weights, ready to run.
pub struct DepthwiseCpu {
    p: Conv2dParams,
    /// (c, kh*kw): the conv weight as given, one tap row per channel.
    weight: Vec<f32>,
    /// (c); zeros when the conv has no bias.
    bias: Vec<f32>,
    /// For the blocked path: weight and bias in blocks of `lanes` channels
    /// (`blocked::pack`); empty for the others.
    blocked: Vec<f32>,
    /// The ISA's f32 lanes.
    lanes: usize,
    path: DepthwisePath,
    isa: Isa,
}

/// Which of the depthwise kernel's paths computes a conv (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthwisePath {
    /// `blocked.rs`: LANES channels per vector, for small planes.
    Blocked,
    /// `padded.rs`: zero-padded plane copies, for larger planes.
    Padded,
    /// `strided.rs`: any kernel, stride, pad and dilation.
    Strided,
}

impl DepthwiseCpu {
    /// w: (c, 1, kh, kw)  bias: (c). None unless `applies(p)`. `p` must be validated.
    pub fn new(
        p: &Conv2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
    ) -> Option<DepthwiseCpu> {
        if !applies(p) {
            return None;
        }
        assert!(isa.is_supported(), "depthwise: this CPU cannot run {isa}");
        // w: (c, 1, kh, kw)  bias: (c)
        assert_eq!(weight.len(), p.c_in * p.kh * p.kw, "depthwise: w length");
        bias.inspect(|b| assert_eq!(b.len(), p.c_in, "depthwise: bias length"));
        let path = if blocked::applies(p) {
            DepthwisePath::Blocked
        } else if padded::shape(p).is_some() {
            DepthwisePath::Padded
        } else {
            DepthwisePath::Strided
        };
        let dw = DepthwiseCpu {
            p: *p,
            weight: weight.to_vec(),
            bias: bias.map_or_else(|| vec![0.0; p.c_in], <[f32]>::to_vec),
            blocked: Vec::new(),
            // SAFETY: dispatch! checks the ISA; `lanes` reads a constant.
            lanes: unsafe { dispatch!(isa, lanes()) },
            path,
            isa,
        };
        dw.with_path(path)
    }

    /// The path `run` takes.
    pub fn path(&self) -> DepthwisePath {
        self.path
    }

    /// This conv on `path` instead of the one `new` picked (tests check every path, benches
    /// time them against each other); None where `path` cannot compute it: the blocked and
    /// padded paths take 3×3 and 5×5 at stride 1 or 2, dilation 1, any plane size.
    pub fn with_path(mut self, path: DepthwisePath) -> Option<DepthwiseCpu> {
        let p = &self.p;
        self.blocked = match path {
            DepthwisePath::Strided => Vec::new(),
            _ if padded::shape(p).is_none() => return None,
            DepthwisePath::Blocked => blocked::pack(p, &self.weight, &self.bias, self.lanes),
            DepthwisePath::Padded => Vec::new(),
        };
        self.path = path;
        Some(self)
    }

    /// Floats of scratch `run` needs with `threads` threads: per task, the blocked path's
    /// input and output blocks, or one padded plane copy (or a batch of small ones) for the
    /// padded path; nothing for the strided one.
    pub fn scratch_len(&self, threads: usize) -> usize {
        self.scratch_per_task() * threads.clamp(1, self.units())
    }

    fn scratch_per_task(&self) -> usize {
        let p = &self.p;
        match (self.path, padded::shape(p)) {
            (DepthwisePath::Blocked, _) => blocked::scratch_floats(p, self.lanes),
            (DepthwisePath::Padded, Some((k, st))) => padded::scratch_floats(p, k, st),
            _ => 0,
        }
    }

    /// Units of work split over threads: (image, channel) planes, or blocks of channels.
    fn units(&self) -> usize {
        match self.path {
            DepthwisePath::Blocked => self.p.n * self.p.c_in.div_ceil(self.lanes),
            _ => self.p.n * self.p.c_in,
        }
    }

    /// y = act(dwconv(x) + bias + residual); residual has y's shape. `scratch` holds at
    /// least `scratch_len(threads)` floats; its contents on entry do not matter.
    pub fn run(
        &self,
        x: &[f32],
        residual: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        // x: (n, c, h, w)  residual, y: (n, c, oh, ow)
        let p = &self.p;
        p.assert_io("depthwise", x, y, residual);
        // One task per thread, each a contiguous range of units: set-up (dispatch, shape
        // arithmetic) is paid per task, not per plane (MobileNetV2 has 7,136 planes, most 7x7 or 14x14).
        let (units, tasks) = (self.units(), threads.clamp(1, self.units()));
        let per_task = self.scratch_per_task();
        assert!(
            scratch.len() >= per_task * tasks,
            "depthwise: scratch length"
        );
        let (oh, ow) = p.output_hw();
        let io = Io {
            x,
            residual,
            act,
            y: SharedMut::new(y),
            ow,
            out: oh * ow,
        };
        let scratch = SharedMut::new(scratch);
        let kernel = (self.path, padded::shape(p), p.stride[1]);
        for_each_task(threads, tasks, |t| {
            let range = units * t / tasks..units * (t + 1) / tasks;
            // SAFETY: the lengths are asserted above, and tasks own disjoint unit ranges
            // and disjoint scratch parts; dispatch! checks the ISA.
            unsafe {
                let s = scratch.part(t * per_task, per_task);
                // One dispatch! per path, so each is a function of its own compiled for the
                // ISA: inlined into one, the 5×5 paths made the 3×3 ones ~1.2× slower.
                match kernel {
                    (DepthwisePath::Blocked, Some((3, 1)), _) => {
                        dispatch!(self.isa, blocked_3s1(self, range, io, s))
                    }
                    (DepthwisePath::Blocked, Some((3, 2)), _) => {
                        dispatch!(self.isa, blocked_3s2(self, range, io, s))
                    }
                    (DepthwisePath::Blocked, Some((5, 1)), _) => {
                        dispatch!(self.isa, blocked_5s1(self, range, io, s))
                    }
                    (DepthwisePath::Blocked, _, _) => {
                        dispatch!(self.isa, blocked_5s2(self, range, io, s))
                    }
                    (DepthwisePath::Padded, Some((3, 1)), _) => {
                        dispatch!(self.isa, padded_3s1(self, range, io, s))
                    }
                    (DepthwisePath::Padded, Some((3, 2)), _) => {
                        dispatch!(self.isa, padded_3s2(self, range, io, s))
                    }
                    (DepthwisePath::Padded, Some((5, 1)), _) => {
                        dispatch!(self.isa, padded_5s1(self, range, io, s))
                    }
                    (DepthwisePath::Padded, _, _) => {
                        dispatch!(self.isa, padded_5s2(self, range, io, s))
                    }
                    (_, _, 1) => dispatch!(self.isa, strided_s1(self, range, io, s)),
                    (_, _, 2) => dispatch!(self.isa, strided_s2(self, range, io, s)),
                    (_, _, _) => dispatch!(self.isa, strided_any(self, range, io, s)),
                }
            }
        });
    }
}

/// S's lanes. Needs nothing: a constant.
#[inline(always)]
unsafe fn lanes<S: Simd>() -> usize {
    S::LANES
}

/// Names each path's instantiation for `dispatch!`, which takes a function generic over S
/// alone. Each runs units `units` (planes of (n*c), or blocks of channels for the blocked
/// path); it needs S's features; x, residual and y have the shapes `run` asserts, no other
/// task writes these units' planes of y, and `s` holds `scratch_per_task` floats.
macro_rules! named_paths {
    ($($name:ident => $m:ident::$f:ident [$($c:literal),*];)*) => {$(
        #[inline(always)]
        unsafe fn $name<S: Simd>(dw: &DepthwiseCpu, units: Range<usize>, io: Io, s: &mut [f32]) {
            $m::$f::<S, $($c),*>(dw, units, io, s)
        }
    )*};
}

named_paths! {
    blocked_3s1 => blocked::blocks [3, 1];
    blocked_3s2 => blocked::blocks [3, 2];
    blocked_5s1 => blocked::blocks [5, 1];
    blocked_5s2 => blocked::blocks [5, 2];
    padded_3s1 => padded::planes [3, 1, 9];
    padded_3s2 => padded::planes [3, 2, 9];
    padded_5s1 => padded::planes [5, 1, 25];
    padded_5s2 => padded::planes [5, 2, 25];
    strided_s1 => strided::planes [1];
    strided_s2 => strided::planes [2];
    // Any stride along w, by gathers.
    strided_any => strided::planes [0];
}

/// A task's view of the call's tensors: x, residual and y have the shapes `run` asserts.
#[derive(Clone, Copy)]
struct Io<'a> {
    /// (n, c, h, w)
    x: &'a [f32],
    /// (n, c, oh, ow)
    residual: Option<&'a [f32]>,
    act: Activation,
    /// (n, c, oh, ow)
    y: SharedMut<'a>,
    /// ow, and oh * ow: worked out once per task (output_hw divides).
    ow: usize,
    out: usize,
}

impl<'a> Io<'a> {
    /// Plane `plane` of (n*c) with its channel's weights and bias.
    fn plane(&self, dw: &'a DepthwiseCpu, plane: usize) -> Plane<'a> {
        let (p, out) = (&dw.p, self.out);
        let (taps, ch) = (p.kh * p.kw, plane % p.c_in);
        Plane {
            p,
            ow: self.ow,
            x: &self.x[plane * p.h * p.w..][..p.h * p.w],
            w: &dw.weight[ch * taps..][..taps],
            b: dw.bias[ch],
            r: self.residual.map(|r| &r[plane * out..][..out]),
            act: self.act,
        }
    }

    /// Plane `plane` of y.
    ///
    /// # Safety
    /// No other task writes this plane while the slice lives.
    unsafe fn y_plane(&self, plane: usize) -> &'a mut [f32] {
        self.y.part(plane * self.out, self.out)
    }
}

/// One (image, channel) plane's inputs.
struct Plane<'a> {
    p: &'a Conv2dParams,
    ow: usize,
    /// (h, w)
    x: &'a [f32],
    /// (kh, kw)
    w: &'a [f32],
    b: f32,
    /// (oh, ow)
    r: Option<&'a [f32]>,
    act: Activation,
}

impl Plane<'_> {
    /// The epilogue: y[oy, ox0..ox0+n] = act(acc + residual).
    #[inline(always)]
    unsafe fn store<S: Simd>(&self, acc: S::V, oy: usize, ox0: usize, n: usize, y_c: &mut [f32]) {
        store_epilogue::<S>(acc, self.r, self.act, oy * self.ow + ox0, n, y_c);
    }
}
