//! The index rule against PyTorch's own numbers (`pytorch_values.rs`, printed by
//! `pytorch_values.py`), and the params' checks.

use super::pytorch_values::{BILINEAR, INF_PLANES, NEAREST, PLANES};
use super::reference::upsample;
use super::*;
use crate::testing::{assert_close, Tol};

#[test]
fn nearest_indices_are_pytorchs() {
    // Includes 10 -> 20 at scale 2.05, where PyTorch's generic kernel reads 0, 0, 0, 1, ...
    // rather than o / 2, and 2 -> 2 at scale 1.1, where it reads 0, 0 rather than copying.
    for &(len_in, len_out, scale, want) in NEAREST {
        let axis = Axis::new(len_in, len_out, false, scale);
        let got: Vec<usize> = (0..len_out).map(|o| axis.nearest(o)).collect();
        assert_eq!(got, want, "nearest {len_in} -> {len_out}, scale {scale:?}");
        if let Some(s) = scale {
            assert_eq!(scaled_len(len_in, s), len_out, "scaled_len({len_in}, {s})");
        }
    }
}

#[test]
fn bilinear_weights_are_pytorchs_bit_for_bit() {
    for &(len_in, len_out, scale, align_corners, want) in BILINEAR {
        let axis = Axis::new(len_in, len_out, align_corners, scale);
        // weights[o][j]: the weight of input j in output o, as PyTorch's one-hot runs give it.
        let mut weights = vec![vec![0.0f32; len_in]; len_out];
        for (o, row) in weights.iter_mut().enumerate() {
            let t = axis.linear(o);
            row[t.i0] += t.l0;
            row[t.i1] += t.l1;
        }
        let mut expected = vec![vec![0.0f32; len_in]; len_out];
        for &(o, j, v) in want {
            expected[o][j] = v;
        }
        let what = format!(
            "bilinear {len_in} -> {len_out}, scale {scale:?}, align_corners {align_corners}"
        );
        for (got, want) in weights.iter().zip(&expected) {
            assert_close(got, want, Tol::BITS, &what);
        }
    }
}

/// PLANES' input: (1, 2, 3, 4) with x[i] = (i·37 mod 23) / 7 - 1.5.
fn planes_input() -> Vec<f32> {
    (0..24).map(|i| (i * 37 % 23) as f32 / 7.0 - 1.5).collect()
}

/// The reference on a (1, c, 3, 4) input resized to `size`, as PLANES lists them.
fn resize(x: &[f32], c: usize, size: [usize; 2], align_corners: Option<bool>) -> Vec<f32> {
    let p = UpsampleParams {
        n: 1,
        c,
        ih: 3,
        iw: 4,
        oh: size[0],
        ow: size[1],
        mode: match align_corners {
            None => UpsampleMode::Nearest,
            Some(align_corners) => UpsampleMode::Bilinear { align_corners },
        },
        scales: None,
    };
    p.validate().unwrap();
    let mut y = vec![f32::NAN; p.out_len()];
    upsample(&p, x, &mut y);
    y
}

#[test]
fn whole_planes_match_pytorch() {
    // PyTorch's channels-last kernel (which it runs on outputs this small) sums in another
    // order: within 4 ulp of the plane's largest value, 1.5.
    let x = planes_input();
    for &(size, align_corners, want) in PLANES {
        let got = resize(&x, 2, size, align_corners);
        let what = format!("{size:?} align_corners {align_corners:?}");
        assert_close(&got, want, Tol::max(4.0 * f32::EPSILON as f64, 0.0), &what);
    }
}

#[test]
fn inf_makes_nan_where_pytorch_does() {
    // 0..12 in a 3x4 plane, +inf at (1, 1): a tap on the inf with weight 0 gives NaN
    // (inf·0), with a positive weight inf. NaN and infinities must match exactly.
    let mut x: Vec<f32> = (0..12).map(|v| v as f32).collect();
    x[5] = f32::INFINITY;
    for &(size, align_corners, want) in INF_PLANES {
        let got = resize(&x, 1, size, align_corners);
        let what = format!("{size:?} align_corners {align_corners:?}");
        assert_close(&got, want, Tol::each(1e-6, 0.0), &what);
    }
}

#[test]
fn validate_names_what_is_wrong() {
    let p = UpsampleParams {
        n: 1,
        c: 1,
        ih: 3,
        iw: 3,
        oh: 0,
        ow: 6,
        mode: UpsampleMode::Nearest,
        scales: None,
    };
    assert_eq!(p.validate().unwrap_err().0, "oh must be at least 1, got 0");
    let p = UpsampleParams {
        oh: 6,
        scales: Some([2.0, f64::NAN]),
        ..p
    };
    assert_eq!(
        p.validate().unwrap_err().0,
        "scale factors must be finite and positive, got [2.0, NaN]"
    );
    let p = UpsampleParams {
        scales: Some([2.0, 0.0]),
        ..p
    };
    assert!(p.validate().is_err());
    let p = UpsampleParams {
        scales: Some([2.0, 2.0]),
        ..p
    };
    p.validate().unwrap();
    assert_eq!((p.in_len(), p.out_len()), (9, 36));
}

#[test]
fn double_is_detected_only_where_every_index_halves() {
    assert!(Axis::new(5, 10, false, None).nearest_is_double());
    assert!(Axis::new(5, 10, false, Some(2.0)).nearest_is_double());
    // out = 2·in, but 1 / 2.05 puts output 2 on input 0.
    assert!(!Axis::new(10, 20, false, Some(2.05)).nearest_is_double());
    assert!(!Axis::new(5, 11, false, None).nearest_is_double());
}
