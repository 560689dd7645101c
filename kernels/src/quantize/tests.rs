//! The quantization rule against PyTorch's own numbers (`pytorch_values.rs`, printed by
//! `pytorch_values.py`), every backend (the SIMD kernels on every ISA and thread count,
//! `fake_quant_f32` on CUDA) against the rule bit for bit, and the params' checks.

use super::pytorch_values::CASES;
use super::{cpu, cuda, reference, QuantDtype, QuantParams};
use crate::testing::everywhere::{check, Allow, Case};
use crate::Isa;

fn params(&(scale, zp, qmin, qmax, uint8): &(f64, i64, i64, i64, bool)) -> QuantParams {
    let dtype = match uint8 {
        true => QuantDtype::Uint8,
        false => QuantDtype::Int8,
    };
    QuantParams::new(scale, zp, qmin, qmax, dtype).unwrap()
}

#[test]
fn the_rule_gives_pytorchs_integers_and_floats() {
    for (case, rows) in CASES {
        let p = params(case);
        for &(x, q, y) in rows.iter() {
            let x = f32::from_bits(x);
            assert_eq!(reference::quantize(&p, x), q, "{case:?}: quantize({x:e})");
            let got = reference::fake_quant(&p, x);
            assert_eq!(got.to_bits(), y, "{case:?}: fake_quant({x:e}) = {got:e}");
            assert_eq!(
                reference::dequantize(&p, q).to_bits(),
                y,
                "{case:?}: dequantize({q})"
            );
        }
    }
}

#[test]
fn every_backend_gives_the_rules_bits() {
    for (case, rows) in CASES {
        let p = params(case);
        let x: Vec<f32> = rows.iter().map(|r| f32::from_bits(r.0)).collect();
        // Each case's values, then cycled to past the parallel threshold, in lengths that
        // end in every vector tail.
        let long: Vec<f32> = x.iter().copied().cycle().take(70_001).collect();
        let mut want = vec![0.0; long.len()];
        reference::fake_quant_slice(&p, &long, &mut want);
        for isa in Isa::available() {
            for len in (0..=33).chain([x.len(), long.len()]) {
                for threads in [1, 2] {
                    let mut y = vec![f32::NAN; len];
                    cpu::fake_quant(isa, &p, &long[..len], &mut y, threads);
                    for (i, (g, w)) in y.iter().zip(&want).enumerate() {
                        assert_eq!(
                            g.to_bits(),
                            w.to_bits(),
                            "{isa} {case:?} len {len} threads {threads} [{i}]: x {:e}: {g:e} vs {w:e}",
                            long[i]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn bad_params_are_errors_naming_the_value() {
    let int8 = QuantDtype::Int8;
    let cases: &[(f64, i64, i64, i64, QuantDtype, &str)] = &[
        (0.0, 0, -128, 127, int8, "got 0e0"),
        (-0.5, 0, -128, 127, int8, "-5e-1"),
        (f64::NAN, 0, -128, 127, int8, "NaN"),
        (f64::INFINITY, 0, -128, 127, int8, "inf"),
        // Positive in f64, 0 or infinite once rounded to f32 (or its inverse is).
        (1e-46, 0, -128, 127, int8, "1e-46"),
        (1e39, 0, -128, 127, int8, "1e39"),
        (1e-39, 0, -128, 127, int8, "1e-39"),
        (1.0, 0, -129, 127, int8, "-129..=127"),
        (1.0, 0, 0, 256, QuantDtype::Uint8, "0..=256"),
        (1.0, 0, 5, 4, int8, "5..=4"),
        (1.0, 128, -128, 127, int8, "zero point 128"),
        (1.0, -1, 0, 255, QuantDtype::Uint8, "zero point -1"),
    ];
    for &(scale, zp, lo, hi, dtype, want) in cases {
        match QuantParams::new(scale, zp, lo, hi, dtype) {
            Err(e) => assert!(e.0.contains(want), "{want}: {e}"),
            Ok(p) => panic!("{want}: accepted as {p:?}"),
        }
    }
    let p = QuantParams::new(0.1, -3, -127, 127, int8).unwrap();
    assert_eq!((p.scale, p.inv_scale), (0.1f32, 10.0f32));
    assert_eq!((p.zero_point, p.qmin, p.qmax), (-3, -127, 127));
}

/// `fake_quant_f32` on CUDA (the emulator, and the GPU where there is one) and the CPU
/// kernels through the backends' common harness: bits.
#[test]
fn fake_quant_on_every_backend() {
    let mut cases = Vec::new();
    for (case, rows) in CASES {
        let p = params(case);
        for len in [1, 17, 100, 4099] {
            let x: Vec<f32> = rows
                .iter()
                .map(|r| f32::from_bits(r.0))
                .cycle()
                .take(len)
                .collect();
            let mut expected = vec![0.0; len];
            reference::fake_quant_slice(&p, &x, &mut expected);
            let name = format!("fake_quant {case:?} len {len}");
            let c = Case::new(&name, vec![x], expected, Allow::Bits)
                .cuda(cuda::fake_quant(&p, len).unwrap())
                .cpu(move |isa, threads, x, y| cpu::fake_quant(isa, &p, x[0], y, threads));
            cases.push(c);
        }
    }
    check("fake_quant", &cases);
    let p = params(&CASES[0].0);
    assert!(cuda::fake_quant(&p, 0).unwrap().launches.is_empty());
}
