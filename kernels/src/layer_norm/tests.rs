use super::reference::layer_norm;
use super::*;
use crate::testing::assert_near;
use crate::Activation;

fn run(p: LayerNormParams, x: &[f32], w: Option<&[f32]>, b: Option<&[f32]>) -> Vec<f32> {
    p.validate().unwrap();
    let mut y = vec![f32::NAN; x.len()];
    layer_norm(&p, x, w, b, Activation::None, &mut y);
    y
}

#[test]
fn one_row() {
    // [1 2 3 4]: mean 2.5, biased var 1.25, eps 0: (x - 2.5) / 1.118034 = ±1.341641, ±0.447214.
    let p = LayerNormParams {
        outer: 1,
        norm: 4,
        inner: 1,
        eps: 0.0,
    };
    let y = run(p, &[1., 2., 3., 4.], None, None);
    assert_near(&y, &[-1.341_640_8, -0.447_213_6, 0.447_213_6, 1.341_640_8]);
    // weight [2 1 1 1], bias [0 0 0 10].
    let y = run(
        p,
        &[1., 2., 3., 4.],
        Some(&[2., 1., 1., 1.]),
        Some(&[0., 0., 0., 10.]),
    );
    assert_near(&y, &[-2.683_281_6, -0.447_213_6, 0.447_213_6, 11.341_641]);
}

#[test]
fn columns_over_the_middle_dim() {
    // x: (outer 1, norm 2, inner 2), eps 0: line i=0 = [0, 2] -> [-1, 1], line i=1 =
    // [5, 5] (var 0, eps 1 would be needed: here 0/0) -> NaN.
    let p = LayerNormParams {
        outer: 1,
        norm: 2,
        inner: 2,
        eps: 0.0,
    };
    let y = run(p, &[0., 5., 2., 5.], None, None);
    assert_near(&y, &[-1., f32::NAN, 1., f32::NAN]);
    // With eps 1 the constant line is exactly 0, plus the bias.
    let y = run(
        LayerNormParams { eps: 1.0, ..p },
        &[0., 5., 2., 5.],
        None,
        Some(&[3., 4.]),
    );
    assert_near(&y, &[3. - 1. / 2f32.sqrt(), 3., 4. + 1. / 2f32.sqrt(), 4.]);
}

#[test]
fn validate_names_the_attribute_and_values() {
    let p = LayerNormParams {
        outer: 1,
        norm: 0,
        inner: 4,
        eps: 1e-5,
    };
    assert_eq!(
        p.validate().unwrap_err().0,
        "norm must be at least 1, got 0"
    );
    let p = LayerNormParams {
        norm: 3,
        eps: -1.0,
        ..p
    };
    assert!(p.validate().unwrap_err().0.contains("eps must be finite"));
    let p = LayerNormParams { eps: 1e-6, ..p };
    assert_eq!((p.validate(), p.len(), p.is_empty()), (Ok(()), 12, false));
}

#[test]
fn cuda_refuses_weights_of_the_wrong_length() {
    let p = LayerNormParams {
        outer: 2,
        norm: 3,
        inner: 1,
        eps: 1e-5,
    };
    let err = cuda::layer_norm(&p, None, Some(&[1.0; 4]), Activation::None).unwrap_err();
    assert!(
        err.to_string()
            .contains("bias has 4 values for a norm of 3"),
        "{err}"
    );
    let op = cuda::layer_norm(&p, Some(&[1.0; 3]), Some(&[0.0; 3]), Activation::None).unwrap();
    assert_eq!(op.consts, [vec![1.0; 3], vec![0.0; 3]]);
}
