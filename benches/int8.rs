//! Int8 kernel microbenchmarks: `qconv2d/cpu-<path>/<shape>` for every distinct conv of
//! ResNet-50 and the dense ones of MobileNetV2 at batch 1, 224×224, on every int8 path this
//! CPU has (`QIsa`), 1 thread, beside `conv2d/cpu-<isa>/<shape>`, the fp32 kernel the
//! engine picks for the same conv on the best ISA. Throughput is Elements = 2 ×
//! multiply-adds, so "elem/s" reads as OP/s; at the end each int8 bench is listed as a
//! share of the `vpdpbusd` peak measured here (`peak::dot_peak`). The best path also
//! runs `…/<shape>/bytes`, bytes in and out, as a session runs a conv between two int8
//! ops (no quantize of x timed). One path: `cargo bench --bench int8 -- cpu-avx512-vnni/`.
//!
//! `qlinear/cpu-<path>/<in>x<out>`: the classifier linears (MobileNetV3's 960→1280 and
//! 1280→1000, ResNet-50's 2048→1000, ResNet-18's 512→1000) at batch 1 on every int8 path,
//! beside `linear/cpu-<isa>/<in>x<out>`, the fp32 kernel; a GEMV is bound by its
//! weights, so throughput is their bytes read (1 per int8 weight, 4 per f32):
//! `cargo bench --bench int8 -- linear/`.
//! `qdwconv2d/cpu-<path>/<shape>` times the int8 depthwise kernel (`QDepthwiseCpu`) on
//! MobileNetV2's and MobileNetV3-Large's depthwise shapes, f32 in and out, each int8 path
//! whose f32 vectors differ, and `…/bytes` with bytes in and out (as between two int8
//! convs in a session) on the best one, beside `dwconv2d/cpu-<isa>/<shape>`, the fp32
//! depthwise kernel on the best ISA, with a fused relu. `cargo bench --bench int8 -- dwconv2d`.

use criterion::{criterion_group, Criterion, Throughput};
use kestrel_kernels::conv2d::cpu::CpuConv;
use kestrel_kernels::conv2d::shapes::{shape_id, MOBILENET_V2, RESNET50};
use kestrel_kernels::conv2d::Conv2dParams;
use kestrel_kernels::linear::cpu::LinearCpu;
use kestrel_kernels::linear::LinearParams;
use kestrel_kernels::peak::dot_peak;
use kestrel_kernels::quantize::conv::QConv2d;
use kestrel_kernels::quantize::qconv::{QConvCpu, QIn, QOut};
use kestrel_kernels::quantize::qdw::QDepthwiseCpu;
use kestrel_kernels::quantize::qlinear::QLinearCpu;
use kestrel_kernels::quantize::{QIsa, QuantDtype, QuantParams};
use kestrel_kernels::{Activation, Isa};
use std::time::Duration;

/// Deterministic values in [-1, 1).
fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) >> 9) as f32 / (1 << 22) as f32 - 1.0)
        .collect()
}

/// The int8 conv of shape `p` every bench times: int8 in and out, a relu.
fn int8_conv(p: &Conv2dParams) -> QConv2d {
    let q8 = |scale| QuantParams::new(scale, -3, -128, 127, QuantDtype::Int8).expect("valid");
    QConv2d {
        p: *p,
        x: q8(1.0 / 100.0),
        w_scale: vec![0.01; p.c_out],
        y: q8(1.0 / 50.0),
        relu: true,
        clamp: None,
    }
}

/// The int8 conv on `p`, f32 in and out; bytes in and out too where `bytes` (as between
/// two int8 convs in a session, where no quantize of x is timed).
fn qconv(c: &mut Criterion, p: &Conv2dParams, qisa: QIsa, bytes: bool) {
    let (q, w, bias) = int8_weights(p);
    let kernel = QConvCpu::new(&q, &w, Some(&bias), qisa);
    let run = |x: QIn<'_>, y: QOut<'_>, s: &mut [f32]| kernel.run_io(x, y, s, 1);
    time_int8(c, "qconv2d", p, qisa, bytes, kernel.scratch_len(1), run);
}

/// The int8 depthwise kernel on `p`, as `qconv`.
fn qdw(c: &mut Criterion, p: &Conv2dParams, qisa: QIsa, bytes: bool) {
    let (q, w, bias) = int8_weights(p);
    let kernel = QDepthwiseCpu::new(&q, &w, Some(&bias), qisa);
    let run = |x: QIn<'_>, y: QOut<'_>, s: &mut [f32]| kernel.run_io(x, y, s, 1);
    time_int8(c, "qdwconv2d", p, qisa, bytes, kernel.scratch_len(1), run);
}

/// The conv every int8 bench of shape `p` times, its weights and bias.
fn int8_weights(p: &Conv2dParams) -> (QConv2d, Vec<i8>, Vec<f32>) {
    let w: Vec<i8> = data(p.weight_shape().iter().product(), 2)
        .iter()
        .map(|v| (v * 127.0) as i8)
        .collect();
    (int8_conv(p), w, data(p.c_out, 3))
}

/// `group/cpu-<qisa>/<shape>`: `run` (a kernel's `run_io` on 1 thread) f32 in and out;
/// and `…/bytes`, bytes in and out, where `bytes`.
fn time_int8(
    c: &mut Criterion,
    group: &str,
    p: &Conv2dParams,
    qisa: QIsa,
    bytes: bool,
    scratch_len: usize,
    run: impl Fn(QIn<'_>, QOut<'_>, &mut [f32]),
) {
    let x = data(p.n * p.c_in * p.h * p.w, 1);
    let mut y = vec![0.0; p.output_shape().iter().product()];
    let mut scratch = vec![0.0; scratch_len];
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(p.flops()));
    g.bench_function(format!("cpu-{qisa}/{}", shape_id(p)), |b| {
        b.iter(|| run(QIn::F32(&x), QOut::F32(&mut y), &mut scratch))
    });
    if bytes {
        let x8: Vec<u8> = x.iter().map(|v| (v * 100.0 + 128.0) as u8).collect();
        let mut y8 = vec![0u8; y.len()];
        g.bench_function(format!("cpu-{qisa}/{}/bytes", shape_id(p)), |b| {
            b.iter(|| run(QIn::U8(&x8), QOut::U8(&mut y8), &mut scratch))
        });
    }
    g.finish();
}

/// MobileNetV2's and MobileNetV3-Large's depthwise convs the int8 depthwise kernel is
/// timed on: 3×3 s1 144 ch at 56², s2 96 ch at 112², s1 960 ch at 7²; 5×5 s2 72 ch at
/// 56², s1 120 ch at 28².
fn depthwise_shapes() -> Vec<Conv2dParams> {
    let dw = |c: usize, hw: usize, k: usize, s: usize| Conv2dParams {
        n: 1,
        c_in: c,
        h: hw,
        w: hw,
        c_out: c,
        kh: k,
        kw: k,
        stride: [s, s],
        pad: [k / 2, k / 2],
        dilation: [1, 1],
        groups: c,
    };
    vec![
        dw(144, 56, 3, 1),
        dw(96, 112, 3, 2),
        dw(960, 7, 3, 1),
        dw(72, 56, 5, 2),
        dw(120, 28, 5, 1),
    ]
}

fn fp32(c: &mut Criterion, p: &Conv2dParams, isa: Isa) {
    fp32_in(c, "conv2d", p, isa)
}

/// The fp32 conv the engine picks for `p`, with a relu, in bench group `group`.
fn fp32_in(c: &mut Criterion, group: &str, p: &Conv2dParams, isa: Isa) {
    let x = data(p.n * p.c_in * p.h * p.w, 1);
    let w = data(p.weight_shape().iter().product(), 2);
    let bias = data(p.c_out, 3);
    let mut y = vec![0.0; p.output_shape().iter().product()];
    let conv = CpuConv::new(p, &w, Some(&bias), isa, false);
    let mut scratch = vec![0.0; conv.scratch_len(1)];
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(p.flops()));
    g.bench_function(format!("cpu-{isa}/{}", shape_id(p)), |b| {
        b.iter(|| conv.run(&x, None, Activation::Relu, &mut y, &mut scratch, 1))
    });
    g.finish();
}

/// (in_features, out_features) of the classifier linears.
const LINEARS: [(usize, usize); 4] = [(960, 1280), (1280, 1000), (2048, 1000), (512, 1000)];

fn qlinear(c: &mut Criterion, (k, out): (usize, usize), qisa: QIsa) {
    let q8 = |scale| QuantParams::new(scale, -3, -128, 127, QuantDtype::Int8).expect("valid");
    let q = QConv2d {
        p: QLinearCpu::conv_params(1, k, out),
        x: q8(1.0 / 100.0),
        w_scale: vec![0.01; out],
        y: q8(1.0 / 50.0),
        relu: false,
        clamp: None,
    };
    let x = data(k, 1);
    let w: Vec<i8> = data(k * out, 2).iter().map(|v| (v * 127.0) as i8).collect();
    let bias = data(out, 3);
    let mut y = vec![0.0; out];
    let kernel = QLinearCpu::new(&q, &w, Some(&bias), qisa);
    let mut scratch = vec![0.0; kernel.scratch_len(1)];
    let mut g = c.benchmark_group("qlinear");
    g.throughput(Throughput::Bytes((k * out) as u64));
    g.bench_function(format!("cpu-{qisa}/{k}x{out}"), |b| {
        b.iter(|| kernel.run(&x, &mut y, &mut scratch, 1))
    });
    g.finish();
}

fn fp32_linear(c: &mut Criterion, (k, out): (usize, usize), isa: Isa) {
    let p = LinearParams {
        rows: 1,
        in_features: k,
        out_features: out,
    };
    let (x, w, bias) = (data(k, 1), data(k * out, 2), data(out, 3));
    let mut y = vec![0.0; out];
    let linear = LinearCpu::new(&p, &w, Some(&bias), isa);
    let mut g = c.benchmark_group("linear");
    g.throughput(Throughput::Bytes((4 * k * out) as u64));
    g.bench_function(format!("cpu-{isa}/{k}x{out}"), |b| {
        b.iter(|| linear.run(&x, Activation::None, &mut y, 1))
    });
    g.finish();
}

fn shapes() -> Vec<Conv2dParams> {
    let r50 = RESNET50.iter().map(|(p, _)| *p);
    let dense = MOBILENET_V2.iter().filter(|p| p.groups == 1).copied();
    r50.chain(dense).collect()
}

fn int8(c: &mut Criterion) {
    for p in shapes() {
        for (i, qisa) in QIsa::available().into_iter().rev().enumerate() {
            qconv(c, &p, qisa, i == 0);
        }
        fp32(c, &p, Isa::best());
    }
    for shape in LINEARS {
        for qisa in QIsa::available().into_iter().rev() {
            qlinear(c, shape, qisa);
        }
        fp32_linear(c, shape, Isa::best());
    }
    for p in depthwise_shapes() {
        let mut seen = Vec::new();
        for qisa in QIsa::available().into_iter().rev() {
            // AVX-VNNI's f32 vectors are AVX2's: the same kernel.
            if !seen.contains(&qisa.float_isa()) {
                qdw(c, &p, qisa, seen.is_empty());
                seen.push(qisa.float_isa());
            }
        }
        fp32_in(c, "dwconv2d", &p, Isa::best());
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(500));
    targets = int8
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    for qisa in QIsa::available() {
        if let Some(gops) = dot_peak(qisa, 1, Duration::from_millis(300)) {
            println!("vpdpbusd peak, {qisa}, 1 thread: {gops:.0} GOPS (Elements/s above)");
        }
    }
}
