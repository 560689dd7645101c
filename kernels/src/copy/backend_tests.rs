//! The strided copy on every backend (`testing::everywhere`): the CPU kernel (rows,
//! strips, gathers; 1 and 2 threads), and on CUDA `copy_f32` on every shape and
//! `copy_transpose_f32` on every shape it takes, alone and as `copy` picks, bit for bit.
//!
//! Each expected output comes from the view before `CopyParams::new` simplifies it
//! (nothing dropped or merged), or from the op's own index formula, so a wrong merge, a
//! wrong permute or slice stride fails too.

use super::cuda::{launch_copy_f32, launch_copy_transpose_f32};
use super::{cpu, cuda, reference, CopyParams, MAX_DIMS};
use crate::activation::backend_tests::values;
use crate::cuda::emu::{self, EmuCase};
use crate::cuda::{device, CudaOp};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::{require_or_skip, Need, Rng};

/// NaNs with payloads (quiet and signalling, either sign), written over `values`: a copy
/// must move them unchanged.
const PAYLOADS: [u32; 4] = [0x7fc0_1234, 0xffc0_0001, 0x7f80_0001, 0xffa5_a5a5];

/// x for a copy reading `span` elements: `values` (NaN, ±inf, ±0 among them) with a NaN of
/// each payload every 13th element.
fn input(span: usize, seed: u64) -> Vec<f32> {
    let mut x = values(span, seed);
    for (k, v) in x.iter_mut().enumerate().skip(7).step_by(13) {
        *v = f32::from_bits(PAYLOADS[k % PAYLOADS.len()]);
    }
    x
}

/// The copy `p` of `x` against `expected` through `copy`'s own choice of CUDA kernel and
/// the CPU kernel, and through each CUDA kernel that takes `p` alone.
fn cases(p: CopyParams, x: Vec<f32>, expected: Vec<f32>, what: &str) -> Vec<Case> {
    assert_eq!(expected.len(), p.len(), "{what}: expected length");
    let name = format!("copy {what} {p:?}");
    let mut all = Vec::new();
    if p.dims.len() <= MAX_DIMS && !p.is_empty() {
        let kernels = [Some(launch_copy_f32(&p)), launch_copy_transpose_f32(&p)];
        for launch in kernels.into_iter().flatten() {
            let name = format!("{name} ({} alone)", launch.entry);
            let op = CudaOp {
                consts: Vec::new(),
                launches: vec![launch],
            };
            all.push(Case::new(name, vec![x.clone()], expected.clone(), Allow::Bits).cuda(op));
        }
    }
    let mut case = Case::new(name, vec![x], expected, Allow::Bits);
    if let Ok(op) = cuda::copy(&p) {
        case = case.cuda(op);
    }
    all.push(case.cpu(move |_, threads, x, y| cpu::copy(&p, x[0], y, threads)));
    all
}

/// The copy of the view (`dims`, `strides`, `offset`) of a fresh x: simplified by
/// `CopyParams::new`, expected from the view as given.
fn view_cases(dims: &[usize], strides: &[usize], offset: usize, what: &str) -> Vec<Case> {
    let raw = CopyParams {
        dims: dims.to_vec(),
        strides: strides.to_vec(),
        offset,
    };
    let x = input(raw.span().max(1), raw.span() as u64 + dims.len() as u64);
    let mut expected = vec![0.0; raw.len()];
    reference::copy(&raw, &x, &mut expected);
    cases(CopyParams::new(dims, strides, offset), x, expected, what)
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// `x.permute(perm)` of `shape`, expected from the unmerged view.
fn permute_cases(shape: &[usize], perm: &[usize]) -> Vec<Case> {
    let (out, p) = CopyParams::permute(shape, perm).unwrap();
    let st = strides(shape);
    let raw: Vec<usize> = perm.iter().map(|&d| st[d]).collect();
    assert_eq!(out, perm.iter().map(|&d| shape[d]).collect::<Vec<_>>());
    let all = view_cases(&out, &raw, 0, &format!("permute {shape:?} {perm:?}"));
    assert_eq!(
        CopyParams::new(&out, &raw, 0),
        p,
        "permute {shape:?} {perm:?}"
    );
    all
}

/// Every permutation of 0..n, in lexicographic order.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    match n {
        0 => vec![vec![]],
        _ => permutations(n - 1)
            .into_iter()
            .flat_map(|p| {
                (0..n).map(move |at| {
                    let mut q = p.clone();
                    q.insert(at, n - 1);
                    q
                })
            })
            .collect(),
    }
}

#[test]
fn permutes_match_the_view() {
    let mut all = Vec::new();
    // Rank 2 and 3, every permutation, odd sizes around the tile (31, 33) and SIMD widths.
    for shape in [&[7, 9][..], &[33, 17], &[31, 40], &[3, 5, 7], &[17, 2, 33]] {
        for perm in permutations(shape.len()) {
            all.extend(permute_cases(shape, &perm));
        }
    }
    // Rank 4: NCHW <-> NHWC on odd shapes and on ConvNeXt's 96x56x56 (enough for two
    // threads), and a few others; rank 5 and 6, some with 1-sized dims, one that merges
    // nothing (six dims: the CUDA kernel's most).
    let four: [(&[usize], &[usize]); 8] = [
        (&[2, 3, 5, 7], &[0, 2, 3, 1]),
        (&[2, 3, 5, 7], &[0, 3, 1, 2]),
        (&[1, 96, 56, 56], &[0, 2, 3, 1]),
        (&[1, 56, 56, 96], &[0, 3, 1, 2]),
        (&[3, 17, 9, 33], &[0, 2, 3, 1]),
        (&[3, 9, 33, 17], &[0, 3, 1, 2]),
        (&[2, 3, 5, 7], &[3, 2, 1, 0]),
        (&[2, 3, 5, 7], &[1, 0, 3, 2]),
    ];
    let more: [(&[usize], &[usize]); 5] = [
        (&[2, 3, 1, 5, 7], &[0, 3, 4, 2, 1]),
        (&[3, 2, 4, 5, 3], &[4, 1, 0, 3, 2]),
        (&[2, 1, 3, 2, 3, 2], &[5, 0, 3, 1, 4, 2]),
        (&[2, 3, 2, 3, 2, 3], &[5, 4, 3, 2, 1, 0]),
        (&[3, 2, 2, 3, 2, 4], &[0, 2, 1, 4, 3, 5]),
    ];
    for (shape, perm) in four.into_iter().chain(more) {
        all.extend(permute_cases(shape, perm));
    }
    check("copy", &all);
}

#[test]
fn slices_match_the_view() {
    // Along every dim of an odd 4-D shape: steps 1 to 3, from the start, the middle and
    // the last element, and empty slices.
    let shape: [usize; 4] = [3, 5, 7, 4];
    let mut all = Vec::new();
    for dim in 0..shape.len() {
        let size = shape[dim];
        for step in 1..=3 {
            for start in [0, 1, size - 1] {
                let len = (size - start).div_ceil(step);
                for len in [len, len.div_ceil(2), 0] {
                    let (out, p) = CopyParams::slice(&shape, dim, start, len, step).unwrap();
                    let mut raw = strides(&shape);
                    let offset = start * raw[dim] * (len > 0) as usize;
                    raw[dim] *= step;
                    let what = format!("slice dim {dim} of {shape:?} {start}..+{len} step {step}");
                    let x = input(shape.iter().product(), all.len() as u64 + 1);
                    let view = CopyParams {
                        dims: out.clone(),
                        strides: raw,
                        offset,
                    };
                    let mut expected = vec![0.0; p.len()];
                    reference::copy(&view, &x, &mut expected);
                    all.extend(cases(p, x, expected, &what));
                }
            }
        }
    }
    check("copy", &all);
}

#[test]
fn channel_shuffle_then_chunk_matches_its_formula() {
    // ShuffleNetV2: x (n, g·c, h, w) viewed (n, g, c, h, w), transpose(1, 2), viewed back
    // as (n, c·g, h, w): shuffled channel j·g + k is x's channel k·c + j. Then chunk q of
    // 2 along channels: its channel m is shuffled channel q·(c·g/2) + m. With g | c·g/2
    // the chunk is the view (n, c/2, g, h·w) with strides (g·c·hw, hw, c·hw, 1), offset
    // q·(c/2)·hw: what the engine composes, checked against the formula.
    let mut all = Vec::new();
    for (n, g, c, h, w) in [
        (2, 2, 6, 5, 7),
        (1, 2, 58, 7, 7),
        (2, 3, 4, 3, 5),
        (1, 4, 2, 1, 1),
    ] {
        let hw = h * w;
        let x = input(n * g * c * hw, (g * c) as u64);
        let half = c * g / 2;
        for q in 0..2 {
            let mut expected = Vec::new();
            for (i, m, s) in
                (0..n).flat_map(|i| (0..half).flat_map(move |m| (0..hw).map(move |s| (i, m, s))))
            {
                let shuffled = q * half + m;
                let (j, k) = (shuffled / g, shuffled % g);
                expected.push(x[(i * g * c + k * c + j) * hw + s]);
            }
            let p = CopyParams::new(
                &[n, c / 2, g, hw],
                &[g * c * hw, hw, c * hw, 1],
                q * (c / 2) * hw,
            );
            let what = format!("channel shuffle n{n} g{g} c{c} {h}x{w} chunk {q}");
            all.extend(cases(p, x.clone(), expected, &what));
        }
    }
    check("copy", &all);
}

#[test]
fn odd_views_match() {
    // A broadcast (stride 0, expand), a view with an offset and a gap between rows, one
    // element, long rows split into pieces (40000 > PIECE), and seven dims (CPU only:
    // past CUDA's six, which `copy` refuses).
    let mut all = Vec::new();
    all.extend(view_cases(&[3, 4, 5], &[0, 1, 0], 0, "expand"));
    all.extend(view_cases(&[5, 9], &[12, 1], 7, "rows with a gap"));
    all.extend(view_cases(&[1], &[1], 11, "one element"));
    all.extend(view_cases(&[3, 40_000], &[40_001, 1], 2, "long rows"));
    all.extend(view_cases(&[2, 20_000], &[1, 2], 0, "long transposed rows"));
    all.extend(view_cases(&[2, 40_000], &[3, 7], 1, "long gathered rows"));
    let seven = view_cases(&[2; 7], &[1, 2, 4, 8, 16, 32, 64], 0, "seven dims");
    assert!(seven.iter().all(|c| c.op.is_none()));
    all.extend(seven);
    check("copy", &all);
}

#[test]
fn nan_payloads_come_through_bit_for_bit() {
    // `check`'s Bits takes any NaN for any NaN: here every bit is compared, on the CPU and
    // on the emulator (and the GPU when there is one), for a transpose, a gather and rows.
    let shapes: [(&[usize], &[usize]); 3] = [
        (&[40, 36], &[1, 0]),
        (&[3, 5, 7], &[2, 0, 1]),
        (&[4, 6, 2], &[1, 0, 2]),
    ];
    let mut rng = Rng::new(5);
    for (shape, perm) in shapes {
        let (_, p) = CopyParams::permute(shape, perm).unwrap();
        let x: Vec<f32> = (0..p.span())
            .map(|_| f32::from_bits(PAYLOADS[rng.range(0, 3)] ^ rng.range(0, 0xff) as u32))
            .collect();
        let mut expected = vec![0.0; p.len()];
        reference::copy(&p, &x, &mut expected);
        let mut outputs = Vec::new();
        for threads in [1, 2] {
            let mut y = vec![0.0; p.len()];
            cpu::copy(&p, &x, &mut y, threads);
            outputs.push((format!("CPU, {threads} threads"), y));
        }
        let op = cuda::copy(&p).unwrap();
        match emu::available() {
            Ok(()) => {
                let case = EmuCase {
                    op: &op,
                    inputs: vec![&x],
                    out_len: p.len(),
                };
                let y = emu::run(&[case]).unwrap().remove(0);
                outputs.push(("CPU emulator".into(), y));
            }
            Err(why) => require_or_skip(Need::Emulator, "NaN payloads on the emulator", &why),
        }
        if let Some(y) = gpu_output(&op, &x, p.len()) {
            outputs.push(("GPU".into(), y));
        }
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for (backend, y) in outputs {
            assert_eq!(
                bits(&y),
                bits(&expected),
                "{backend}: permute {shape:?} {perm:?}"
            );
        }
    }
}

/// `op` run on the GPU, when there is one.
fn gpu_output(op: &CudaOp, x: &[f32], len: usize) -> Option<Vec<f32>> {
    if let Err(e) = device::probe(0) {
        require_or_skip(Need::Gpu, "NaN payloads on the GPU", &e.to_string());
        return None;
    }
    let gpu = device::Gpu::new(0).unwrap();
    let compiler = crate::cuda::compile::Compiler::new(gpu.arch(), None).unwrap();
    Some(device::run_op(&gpu, &compiler, op, &[x], len).unwrap())
}
