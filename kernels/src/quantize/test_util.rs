//! What the int8 kernels' tests build their cases from: quantizations over a dtype's whole
//! range, inputs around the range with some past it and some not finite, weights over all
//! 256 int8 values, convs with varied quantizations; and the check of a conv kernel's
//! four pairings of f32 and bytes in and out against the oracle.

use super::conv::QConv2d;
use super::qconv::{QIn, QOut};
use super::{reference, QuantDtype, QuantParams};
use crate::conv2d::Conv2dParams;
use crate::testing::Rng;

/// A quantization of `dtype` over its whole range.
pub(super) fn quant(scale: f64, zp: i64, dtype: QuantDtype) -> QuantParams {
    let (lo, hi) = dtype.range();
    QuantParams::new(scale, zp, lo.into(), hi.into(), dtype).unwrap()
}

/// Random inputs around a quantization's range (scales near 0.03), some far past it, some
/// not finite.
pub(super) fn input(rng: &mut Rng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|j| match j % 97 {
            5 => f32::NAN,
            6 => f32::INFINITY,
            7 => f32::NEG_INFINITY,
            8 => 1e9,
            // Rng::f32 is uniform in [-1, 1).
            _ => rng.f32() * 4.5,
        })
        .collect()
}

/// Int8 weights uniform over all 256 values.
pub(super) fn weights(rng: &mut Rng, len: usize) -> Vec<i8> {
    (0..len).map(|_| rng.next_u64() as u8 as i8).collect()
}

/// An int8 conv of shape `p` for case `i`: the input's and output's dtypes, zero points
/// and scales, the relu and an output clamp (a relu6 folded in) varied by i.
pub(super) fn int8_conv(p: Conv2dParams, i: usize) -> QConv2d {
    let dtype = [QuantDtype::Int8, QuantDtype::Uint8][i % 2];
    let (lo, hi) = dtype.range();
    let y_scale = 0.02 + 0.003 * (i % 9) as f64;
    QConv2d {
        p,
        x: quant(0.03, i64::from((lo + hi) / 2 + (i as i32 % 7) - 3), dtype),
        w_scale: (0..p.c_out)
            .map(|o| 0.004 + 0.001 * (o % 5) as f32)
            .collect(),
        y: match i / 2 % 2 {
            0 => quant(y_scale, (i as i64 % 5) - 2, QuantDtype::Int8),
            _ => quant(y_scale, 10 + i as i64 % 5, QuantDtype::Uint8),
        },
        relu: !i.is_multiple_of(3),
        clamp: (i % 4 == 1).then_some([-3, 40]),
    }
}

/// What a kernel computing `q` must give for x: x as bytes, and the oracle's output as
/// f32 bits and as bytes (q + 128 for int8, q for uint8).
pub(super) struct Want {
    x_bytes: Vec<u8>,
    bits: Vec<u32>,
    bytes: Vec<u8>,
}

impl Want {
    pub(super) fn new(q: &QConv2d, w: &[i8], bias: Option<&[f32]>, x: &[f32]) -> Want {
        let x_q: Vec<i32> = x.iter().map(|&v| reference::quantize(&q.x, v)).collect();
        let w_q: Vec<i32> = w.iter().map(|&v| i32::from(v)).collect();
        let y_q = q.reference(&x_q, &w_q, bias);
        let (sx, sy) = (q.x.dtype.byte_shift(), q.y.dtype.byte_shift());
        Want {
            x_bytes: x_q.iter().map(|&v| (v + sx) as u8).collect(),
            bits: y_q
                .iter()
                .map(|&v| reference::dequantize(&q.y, v).to_bits())
                .collect(),
            bytes: y_q.iter().map(|&v| (v + sy) as u8).collect(),
        }
    }

    /// `run(x, y, scratch)` (a kernel's `run_io` at some thread count) in all four
    /// pairings of f32 and bytes in and out, each against the oracle bit for bit. Scratch
    /// and y start as garbage: the kernel must write every cell it reads.
    pub(super) fn check(
        &self,
        x: &[f32],
        scratch_len: usize,
        at: &str,
        mut run: impl FnMut(QIn<'_>, QOut<'_>, &mut [f32]),
    ) {
        let mut scratch = vec![f32::NAN; scratch_len];
        let mut y = vec![f32::NAN; self.bits.len()];
        run(QIn::F32(x), QOut::F32(&mut y), &mut scratch);
        if let Some(j) = (0..y.len()).find(|&j| y[j].to_bits() != self.bits[j]) {
            let want = f32::from_bits(self.bits[j]);
            panic!("{at}, f32 in and out, [{j}]: {} vs {want}", y[j]);
        }
        let mut y8 = vec![0xa5u8; self.bytes.len()];
        run(QIn::U8(&self.x_bytes), QOut::U8(&mut y8), &mut scratch);
        assert_eq!(y8, self.bytes, "{at}, bytes in and out");
        y8.fill(0x5a);
        run(QIn::F32(x), QOut::U8(&mut y8), &mut scratch);
        assert_eq!(y8, self.bytes, "{at}, bytes out");
        y.fill(f32::NAN);
        run(QIn::U8(&self.x_bytes), QOut::F32(&mut y), &mut scratch);
        let bits: Vec<u32> = y.iter().map(|f| f.to_bits()).collect();
        assert_eq!(bits, self.bits, "{at}, bytes in");
    }
}
