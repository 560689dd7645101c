//! The max pool of int8 values between two quantizations, `fake_quant(x) → max_pool →
//! fake_quant(y)`: a dequantize is increasing (its scale is positive) and so is a
//! quantize, so the max of the input's integers, then the table of
//! `quantize(y, dequantize(x, q))` (a `QLut`), is what the float steps give, bit for bit.
//! A byte 0 is the least value of any dtype, so padding, which never wins in PyTorch's
//! max pool, is a 0 byte. Inputs and output are f32 or bytes, as `qconv::QIn` and `QOut`
//! say; an f32 input is quantized by x as read (a NaN to the integer 0, as x's
//! `fake_quant` makes it, so no NaN reaches the max).

use super::qconv::{QIn, QOut};
use super::qlut::{QLut, SendPtr as Shared};
use super::unzip::unzip;
use super::QuantParams;
use crate::parallel::{for_each_task, SharedMut};
use crate::pool2d::Pool2dParams;
use crate::Isa;

/// A prepared int8 max pool.
#[derive(Debug, Clone)]
pub struct QMaxPool {
    p: Pool2dParams,
    /// x's integers to y's.
    lut: QLut,
    /// The table maps every byte to itself (`QLut::bytes_unchanged`).
    same: bool,
}

impl QMaxPool {
    /// The pool `p` from x's quantization to y's. Panics on invalid params.
    pub fn new(p: &Pool2dParams, x: QuantParams, y: QuantParams) -> QMaxPool {
        p.validate().expect("QMaxPool: invalid params");
        let lut = QLut::new(x, y, |v| v);
        QMaxPool {
            p: *p,
            same: lut.bytes_unchanged(),
            lut,
        }
    }

    /// Taps per output.
    pub fn taps(&self) -> usize {
        self.p.kernel[0] * self.p.kernel[1]
    }

    /// The output's quantization.
    pub fn y(&self) -> &QuantParams {
        self.lut.y()
    }

    /// Bytes of one thread's row buffers: the window rows' maxima, padded on both sides
    /// with 0 (which never wins) as far as any window reaches, then the same split by
    /// parity for a stride of 2, then the pooled row.
    fn row_bytes(&self) -> usize {
        let p = &self.p;
        let (_, ow) = p.output_hw();
        let reach = (ow - 1) * p.stride[1] + (p.kernel[1] - 1) * p.dilation[1] + 1;
        let padded = reach.max(p.pad[1] + p.w) + 1;
        2 * padded + ow
    }

    /// Floats of scratch `run` needs: the input as bytes (used where it is f32), then the
    /// row buffers of each thread.
    pub fn scratch_len(&self, threads: usize) -> usize {
        let p = &self.p;
        (p.n * p.c * p.h * p.w + threads.max(1) * self.row_bytes()).div_ceil(4)
    }

    /// y = the pool (module doc), in plain loops over the integers: the test oracle.
    pub fn reference(&self, x: QIn<'_>, y: QOut<'_>) {
        let p = &self.p;
        let (oh, ow) = p.output_hw();
        let plane = p.h * p.w;
        let mut keys = vec![0u8; x.len()];
        self.lut.x_bytes(x, &mut keys);
        let mut pooled = vec![0u8; p.n * p.c * oh * ow];
        for (c, out) in pooled.chunks_exact_mut(oh * ow).enumerate() {
            let src = &keys[c * plane..][..plane];
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut max = 0u8;
                    for ky in 0..p.kernel[0] {
                        for kx in 0..p.kernel[1] {
                            let iy = (oy * p.stride[0] + ky * p.dilation[0]).checked_sub(p.pad[0]);
                            let ix = (ox * p.stride[1] + kx * p.dilation[1]).checked_sub(p.pad[1]);
                            if let (Some(iy), Some(ix)) = (iy, ix) {
                                if iy < p.h && ix < p.w {
                                    max = max.max(src[iy * p.w + ix]);
                                }
                            }
                        }
                    }
                    out[oy * ow + ox] = max;
                }
            }
        }
        self.lut.reference(QIn::U8(&pooled), y);
    }

    /// y = the pool, one (image, channel) plane per task. Allocates nothing.
    pub fn run(&self, isa: Isa, x: QIn<'_>, y: QOut<'_>, scratch: &mut [f32], threads: usize) {
        let p = &self.p;
        let (oh, ow) = p.output_hw();
        let (plane, out_plane) = (p.h * p.w, oh * ow);
        assert_eq!(x.len(), p.n * p.c * plane, "QMaxPool: x length");
        assert_eq!(y.len(), p.n * p.c * out_plane, "QMaxPool: y length");
        let threads = threads.max(1);
        assert!(
            scratch.len() >= self.scratch_len(threads),
            "QMaxPool: scratch too short"
        );
        // SAFETY: the floats' bytes, for as long as `scratch` is borrowed.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(scratch.as_mut_ptr().cast::<u8>(), scratch.len() * 4)
        };
        let (keys, rows) = bytes.split_at_mut(x.len());
        let keys: &[u8] = match x {
            QIn::U8(x) => x,
            QIn::F32(x) => {
                self.lut.run_keys(isa, x, keys, threads);
                keys
            }
        };
        let (yf, yb) = match y {
            QOut::F32(y) => (SharedMut::new(y).as_mut_ptr(), std::ptr::null_mut()),
            QOut::U8(y) => (std::ptr::null_mut(), y.as_mut_ptr()),
        };
        let (yf, yb, rows) = (Shared(yf), Shared(yb), Shared(rows.as_mut_ptr()));
        // Bytes out of the same quantization: the pooled bytes are y's.
        let straight = !yb.0.is_null() && self.same;
        let (planes, row_bytes) = (p.n * p.c, self.row_bytes());
        let padded_len = (row_bytes - ow) / 2;
        let shares = threads.min(planes);
        for_each_task(threads, shares, |s| {
            // SAFETY: share s alone uses row buffers s (scratch_len) and writes the output
            // planes of its range.
            unsafe {
                let buf = std::slice::from_raw_parts_mut(rows.at(s * row_bytes), row_bytes);
                let (padded, rest) = buf.split_at_mut(padded_len);
                let (halves, pooled) = rest.split_at_mut(padded_len);
                // The padding: window_rows writes only the input's columns.
                padded.fill(0);
                for c in planes * s / shares..planes * (s + 1) / shares {
                    let src = &keys[c * plane..][..plane];
                    for oy in 0..oh {
                        self.window_rows(src, oy, &mut padded[p.pad[1]..][..p.w]);
                        let at = c * out_plane + oy * ow;
                        if straight {
                            let out = std::slice::from_raw_parts_mut(yb.at(at), ow);
                            self.window_cols(padded, halves, out);
                        } else {
                            self.window_cols(padded, halves, pooled);
                            self.lut.look_up(isa, pooled, (yf.at(at), yb.at(at)));
                        }
                    }
                }
            }
        });
    }

    /// `row` = the max over the window's rows of output row `oy`, column by column (0
    /// where the window is all padding).
    fn window_rows(&self, src: &[u8], oy: usize, row: &mut [u8]) {
        let p = &self.p;
        row.fill(0);
        for ky in 0..p.kernel[0] {
            let Some(iy) = (oy * p.stride[0] + ky * p.dilation[0]).checked_sub(p.pad[0]) else {
                continue;
            };
            if iy >= p.h {
                continue;
            }
            // Byte maxima the compiler vectorizes (SSE2's pmaxub at least).
            for (m, &v) in row.iter_mut().zip(&src[iy * p.w..][..p.w]) {
                *m = (*m).max(v);
            }
        }
    }

    /// `out[i]` = the max over the window's columns of output column i in `padded` (the
    /// row's maxima with the padding on both sides), branch-free: a stride of 2 reads its
    /// taps as contiguous runs of the row split by parity (`halves`).
    fn window_cols(&self, padded: &[u8], halves: &mut [u8], out: &mut [u8]) {
        let p = &self.p;
        let (k, s, d) = (p.kernel[1], p.stride[1], p.dilation[1]);
        out.fill(0);
        if s == 2 {
            let (evens, odds) = halves.split_at_mut(padded.len().div_ceil(2));
            unzip(padded, Some(&mut *evens), Some(&mut *odds));
            for t in (0..k).map(|kx| kx * d) {
                let run = if t % 2 == 0 {
                    &evens[t / 2..]
                } else {
                    &odds[t / 2..]
                };
                for (o, &v) in out.iter_mut().zip(run) {
                    *o = (*o).max(v);
                }
            }
            return;
        }
        for t in (0..k).map(|kx| kx * d) {
            for (i, o) in out.iter_mut().enumerate() {
                *o = (*o).max(padded[i * s + t]);
            }
        }
    }
}
