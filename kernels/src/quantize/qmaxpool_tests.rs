//! `QMaxPool::run` on every ISA against `QMaxPool::reference`, and that against the float
//! steps it stands for (fake_quant, PyTorch's max pool, fake_quant), bit for bit: kernels,
//! strides, pads, dilations and ceil mode PyTorch allows, odd sizes, f32 and byte inputs
//! and outputs, int8 and uint8, the same or another output quantization, 1–3 threads.

use super::qconv::{QIn, QOut};
use super::qmaxpool::QMaxPool;
use super::{reference, QuantDtype};
use crate::pool2d::{self, Pool2dParams};
use crate::quantize::test_util::quant;
use crate::testing::Rng;
use crate::Isa;

#[test]
fn every_isa_is_the_float_steps_bit_for_bit() {
    let mut rng = Rng::new(0x900);
    let (i8q, u8q) = (QuantDtype::Int8, QuantDtype::Uint8);
    // (n, c, h, w, kernel, stride, pad, dilation, ceil_mode)
    let shapes = [
        (1, 3, 12, 12, 3, 2, 1, 1, false),
        (2, 2, 9, 13, 2, 2, 0, 1, false),
        (1, 2, 11, 7, 3, 2, 1, 1, true),
        (1, 1, 10, 300, 3, 1, 1, 2, false),
        (1, 4, 7, 7, 5, 3, 2, 1, true),
        (1, 2, 1, 1, 1, 1, 0, 1, false),
    ];
    let quants = [
        (quant(0.05, -3, i8q), quant(0.05, -3, i8q)),
        (quant(0.04, 120, u8q), quant(0.07, -20, i8q)),
    ];
    for (i, &(n, c, h, w, k, s, pad, d, ceil_mode)) in shapes.iter().enumerate() {
        let p = Pool2dParams {
            n,
            c,
            h,
            w,
            kernel: [k, k],
            stride: [s, s],
            pad: [pad, pad],
            dilation: [d, d],
            ceil_mode,
            count_include_pad: false,
        };
        let (oh, ow) = p.output_hw();
        let len = n * c * h * w;
        let out_len = n * c * oh * ow;
        let fx: Vec<f32> = (0..len)
            .map(|j| match j % 61 {
                3 => f32::NAN,
                4 => f32::INFINITY,
                5 => f32::NEG_INFINITY,
                _ => (rng.f32() - 0.5) * 16.0,
            })
            .collect();
        for (qi, &(x, y)) in quants.iter().enumerate() {
            let pool = QMaxPool::new(&p, x, y);
            let shift = x.dtype.byte_shift();
            let bx: Vec<u8> = fx
                .iter()
                .map(|&v| (reference::quantize(&x, v) + shift) as u8)
                .collect();
            // The float steps: fake_quant by x, PyTorch's max pool, fake_quant by y.
            let fq: Vec<f32> = fx.iter().map(|&v| reference::fake_quant(&x, v)).collect();
            let mut pooled = vec![0.0; out_len];
            pool2d::reference::max_pool2d(&p, &fq, &mut pooled);
            let steps: Vec<f32> = pooled
                .iter()
                .map(|&v| reference::fake_quant(&y, v))
                .collect();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            for (k, input) in [QIn::F32(&fx), QIn::U8(&bx)].into_iter().enumerate() {
                let what = format!("shape {i} quant {qi} input {k}");
                let mut want_f = vec![0.0; out_len];
                let mut want_b = vec![0u8; out_len];
                pool.reference(input, QOut::F32(&mut want_f));
                pool.reference(input, QOut::U8(&mut want_b));
                assert_eq!(bits(&want_f), bits(&steps), "{what}");
                for isa in Isa::available() {
                    for threads in 1..=3 {
                        let what = format!("{what} {isa} {threads} threads");
                        let mut scratch = vec![0.0; pool.scratch_len(threads)];
                        let mut got_f = vec![f32::NAN; out_len];
                        let mut got_b = vec![0u8; out_len];
                        pool.run(isa, input, QOut::F32(&mut got_f), &mut scratch, threads);
                        pool.run(isa, input, QOut::U8(&mut got_b), &mut scratch, threads);
                        assert_eq!(bits(&got_f), bits(&want_f), "{what}");
                        assert_eq!(got_b, want_b, "{what}");
                    }
                }
            }
        }
    }
}
