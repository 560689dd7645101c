use super::*;

fn params(dims: &[usize], strides: &[usize], offset: usize) -> (Vec<usize>, Vec<usize>, usize) {
    let p = CopyParams::new(dims, strides, offset);
    (p.dims, p.strides, p.offset)
}

#[test]
fn new_drops_ones_and_merges_runs() {
    // Contiguous (2, 3, 4): one run of 24.
    assert_eq!(params(&[2, 3, 4], &[12, 4, 1], 0), (vec![24], vec![1], 0));
    // NCHW -> NHWC of (2, 3, 5, 7): (n, h, w, c) strides (105, 7, 1, 35): h and w merge.
    assert_eq!(
        params(&[2, 5, 7, 3], &[105, 7, 1, 35], 0),
        (vec![2, 35, 3], vec![105, 1, 35], 0)
    );
    // 1-sized dims go wherever they are, whatever their stride.
    assert_eq!(
        params(&[1, 4, 1, 5, 1], &[99, 5, 7, 1, 3], 2),
        (vec![20], vec![1], 2)
    );
    // A broadcast (stride 0) merges with another broadcast only.
    assert_eq!(
        params(&[3, 4, 5], &[0, 0, 1], 0),
        (vec![12, 5], vec![0, 1], 0)
    );
    // All ones: one dim of 1. Empty: dims [0], whatever else.
    assert_eq!(params(&[1, 1], &[5, 3], 4), (vec![1], vec![1], 4));
    assert_eq!(params(&[3, 0, 2], &[2, 9, 1], 4), (vec![0], vec![1], 0));
}

#[test]
fn permute_and_slice_shapes_and_strides() {
    let (out, p) = CopyParams::permute(&[2, 3, 5, 7], &[0, 3, 1, 2]).unwrap();
    assert_eq!(out, [2, 7, 3, 5]);
    assert_eq!(
        (p.dims, p.strides, p.offset),
        (vec![2, 7, 15], vec![105, 1, 7], 0)
    );
    let (out, p) = CopyParams::permute(&[4, 6], &[0, 1]).unwrap();
    assert_eq!((out, p.is_identity(), p.span()), (vec![4, 6], true, 24));
    // x[:, 1:7:2] of (3, 8, 5): offset 5, strides (40, 10, 1).
    let (out, p) = CopyParams::slice(&[3, 8, 5], 1, 1, 3, 2).unwrap();
    assert_eq!(out, [3, 3, 5]);
    assert_eq!(
        (p.dims.clone(), p.strides.clone(), p.offset),
        (vec![3, 3, 5], vec![40, 10, 1], 5)
    );
    // Last element read: 5 + 2·40 + 2·10 + 4 = 109; span 110 of x's 120.
    assert_eq!((p.len(), p.span(), p.is_identity()), (45, 110, false));
    // A chunk along dim 0 is one run from an offset.
    let (_, p) = CopyParams::slice(&[4, 6], 0, 2, 2, 1).unwrap();
    assert_eq!(
        (p.span(), p.dims, p.strides, p.offset),
        (24, vec![12], vec![1], 12)
    );
    // Empty: nothing read.
    let (out, p) = CopyParams::slice(&[4, 6], 1, 6, 0, 1).unwrap();
    assert_eq!(
        (out, p.len(), p.span(), p.is_empty()),
        (vec![4, 0], 0, 0, true)
    );
}

#[test]
fn bad_permutations_and_slices_are_errors() {
    for perm in [&[0, 1][..], &[0, 0, 1], &[0, 1, 3], &[2, 1, 0, 3]] {
        let err = CopyParams::permute(&[2, 3, 4], perm).unwrap_err();
        assert!(err.0.contains("is not a permutation"), "{perm:?}: {err}");
    }
    let slice = |dim, start, len, step| CopyParams::slice(&[4, 6], dim, start, len, step);
    assert!(slice(2, 0, 1, 1).unwrap_err().0.contains("dim 2 of [4, 6]"));
    assert!(slice(1, 0, 1, 0)
        .unwrap_err()
        .0
        .contains("step must be at least 1"));
    assert!(slice(1, 1, 3, 3).unwrap_err().0.contains("run past dim 1"));
    assert!(slice(1, 6, 1, 1).is_err());
    assert!(slice(1, 0, usize::MAX, 2).is_err());
    assert!(slice(1, 5, 1, 9).is_ok());
    let huge = CopyParams::permute(&[usize::MAX, 2], &[1, 0]).unwrap_err();
    assert!(huge.0.contains("too many elements"), "{huge}");
}

#[test]
fn cuda_refuses_more_than_max_dims() {
    // (2, 2, ..) with the strides reversed (a full transpose): nothing merges.
    let dims = [2; 7];
    let strides = [1, 2, 4, 8, 16, 32, 64];
    let p = CopyParams::new(&dims, &strides, 0);
    assert_eq!(p.dims.len(), 7);
    let err = cuda::copy(&p).unwrap_err();
    assert!(
        err.to_string().contains("7 dims after merging, over 6"),
        "{err}"
    );
    let empty = CopyParams::new(&[0, 3], &[3, 1], 0);
    assert!(cuda::copy(&empty).unwrap().launches.is_empty());
}
