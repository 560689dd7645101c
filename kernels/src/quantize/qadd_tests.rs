//! `QAdd::run` on every ISA against `QAdd::reference`, bit for bit: f32 and byte inputs
//! and outputs in every mix, int8 and uint8, relu or not, lengths off the vector width,
//! 1–3 threads, f32 inputs past the range and not finite.

use super::qadd::QAdd;
use super::qconv::{QIn, QOut};
use super::QuantDtype;
use crate::quantize::test_util::quant;
use crate::testing::Rng;
use crate::Isa;

#[test]
fn every_isa_is_the_reference_bit_for_bit() {
    let mut rng = Rng::new(0x5add);
    let (i8q, u8q) = (QuantDtype::Int8, QuantDtype::Uint8);
    let cases = [
        (
            quant(0.05, -3, i8q),
            quant(0.03, 7, i8q),
            quant(0.06, -20, i8q),
            true,
        ),
        (
            quant(0.02, 120, u8q),
            quant(0.05, -1, i8q),
            quant(0.04, 3, u8q),
            false,
        ),
        (
            quant(0.1, 0, i8q),
            quant(0.1, 0, i8q),
            quant(0.1, 0, i8q),
            true,
        ),
    ];
    for (c, &(a, b, y, relu)) in cases.iter().enumerate() {
        let q = QAdd { a, b, y, relu };
        for len in [1, 7, 16, 17, 40, 1000, 70_001] {
            let fa: Vec<f32> = (0..len)
                .map(|j| match j % 89 {
                    3 => f32::NAN,
                    4 => f32::INFINITY,
                    _ => (rng.f32() - 0.5) * 16.0,
                })
                .collect();
            let fb: Vec<f32> = (0..len).map(|_| (rng.f32() - 0.5) * 12.0).collect();
            let ba: Vec<u8> = (0..len).map(|_| (rng.f32() * 255.99) as u8).collect();
            let bb: Vec<u8> = (0..len).map(|_| (rng.f32() * 255.99) as u8).collect();
            let inputs = [
                (QIn::F32(&fa), QIn::F32(&fb)),
                (QIn::U8(&ba), QIn::F32(&fb)),
                (QIn::F32(&fa), QIn::U8(&bb)),
                (QIn::U8(&ba), QIn::U8(&bb)),
            ];
            for (k, &(x, z)) in inputs.iter().enumerate() {
                let mut want_f = vec![0.0; len];
                let mut want_b = vec![0u8; len];
                q.reference(x, z, QOut::F32(&mut want_f));
                q.reference(x, z, QOut::U8(&mut want_b));
                for isa in Isa::available() {
                    for threads in 1..=3 {
                        let what = format!("case {c} len {len} inputs {k} {isa} {threads} threads");
                        let mut got_f = vec![f32::NAN; len];
                        let mut got_b = vec![0u8; len];
                        q.run(isa, x, z, QOut::F32(&mut got_f), threads);
                        q.run(isa, x, z, QOut::U8(&mut got_b), threads);
                        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got_f), bits(&want_f), "{what}");
                        assert_eq!(got_b, want_b, "{what}");
                    }
                }
            }
        }
    }
}
