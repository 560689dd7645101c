//! `QLut::run` on every ISA against `QLut::reference` and against the float steps it
//! stands for (dequantize, the function, quantize), bit for bit: f32 and byte inputs and
//! outputs, int8 and uint8, lengths off the vector width and the chunks, 1–3 threads, f32
//! inputs past the range and not finite.

use super::qconv::{QIn, QOut};
use super::qlut::QLut;
use super::{reference, QuantDtype, QuantParams};
use crate::epilogue::Activation;
use crate::quantize::test_util::quant;
use crate::testing::Rng;
use crate::Isa;

/// x's and y's quantization and the function.
type Case<'f> = (QuantParams, QuantParams, &'f dyn Fn(f32) -> f32);

#[test]
fn every_isa_is_the_float_steps_bit_for_bit() {
    let mut rng = Rng::new(0x1a7);
    let (i8q, u8q) = (QuantDtype::Int8, QuantDtype::Uint8);
    let hardswish = |v| Activation::HardSwish.apply(v);
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    let cases: [Case; 3] = [
        (quant(0.05, -3, i8q), quant(0.03, -90, i8q), &hardswish),
        (
            quant(0.04, 120, u8q),
            quant(1.0 / 256.0, -128, i8q),
            &sigmoid,
        ),
        (quant(0.1, 7, i8q), quant(0.1, 7, u8q), &|v: f32| {
            v.clamp(0.0, 6.0)
        }),
    ];
    for (c, &(x, y, f)) in cases.iter().enumerate() {
        let lut = QLut::new(x, y, f);
        for len in [1, 7, 16, 17, 63, 64, 65, 1000, 70_001] {
            let fx: Vec<f32> = (0..len)
                .map(|j| match j % 89 {
                    3 => f32::NAN,
                    4 => f32::INFINITY,
                    5 => f32::NEG_INFINITY,
                    _ => (rng.f32() - 0.5) * 16.0,
                })
                .collect();
            let bx: Vec<u8> = (0..len).map(|_| (rng.f32() * 255.99) as u8).collect();
            for (k, input) in [QIn::F32(&fx), QIn::U8(&bx)].into_iter().enumerate() {
                let mut want_f = vec![0.0; len];
                let mut want_b = vec![0u8; len];
                lut.reference(input, QOut::F32(&mut want_f));
                lut.reference(input, QOut::U8(&mut want_b));
                // The float steps the table stands for.
                for j in (0..len).step_by(97) {
                    let q = match input {
                        QIn::F32(v) => reference::quantize(&x, v[j]),
                        QIn::U8(v) => i32::from(v[j]) - x.dtype.byte_shift(),
                    };
                    let out = reference::quantize(&y, f(reference::dequantize(&x, q)));
                    let what = format!("case {c} len {len} input {k} [{j}]");
                    assert_eq!(want_f[j], reference::dequantize(&y, out), "{what}");
                    assert_eq!(i32::from(want_b[j]) - y.dtype.byte_shift(), out, "{what}");
                }
                for isa in Isa::available() {
                    for threads in 1..=3 {
                        let what = format!("case {c} len {len} input {k} {isa} {threads} threads");
                        let mut got_f = vec![f32::NAN; len];
                        let mut got_b = vec![0u8; len];
                        lut.run(isa, input, QOut::F32(&mut got_f), threads);
                        lut.run(isa, input, QOut::U8(&mut got_b), threads);
                        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got_f), bits(&want_f), "{what}");
                        assert_eq!(got_b, want_b, "{what}");
                    }
                }
            }
        }
    }
}
