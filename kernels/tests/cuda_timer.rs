//! The profiler's clock, `cuda::device::Timer`: its hold kernel (spin.cu) compiles with
//! NVRTC for the H100's sm_90 without a GPU, and on a GPU a hold of known length times as
//! that long. Skips print why; `KESTREL_REQUIRE_NVRTC=1` and `REQUIRE_CUDA=1` make them
//! failures.

use kestrel_kernels::cuda::compile::Compiler;
use kestrel_kernels::cuda::device::{spin_launch, Gpu, Timer};
use kestrel_kernels::cuda::nvrtc::{self, ImageKind, Target};
use kestrel_kernels::cuda::CudaError;
use kestrel_kernels::testing::{require_or_skip, Need};

#[test]
fn spin_compiles_for_sm_90() {
    let compiler = match Compiler::new("sm_90", None) {
        Ok(c) => c,
        Err(CudaError::Unavailable(why)) => {
            return require_or_skip(Need::Nvrtc, "NVRTC compile of spin.cu", &why)
        }
        Err(e) => panic!("{e}"),
    };
    let launch = spin_launch();
    let module = compiler.module(&launch).unwrap();
    let used = module.resources();
    assert!(
        used.len() == 1 && used[0].entry == "spin_ns",
        "{}",
        module.ptxas
    );
    // The clock it reads: visible in the PTX (the CUBIN holds machine code).
    let ptx_target = Target {
        kind: ImageKind::Ptx,
        arch: "compute_90".into(),
    };
    let ptx = nvrtc::compile(&launch.module_text(), "spin.cu", &ptx_target, &[]).unwrap();
    let ptx = String::from_utf8(ptx.image).unwrap();
    assert!(ptx.contains(".entry spin_ns"), "{ptx}");
    assert!(ptx.contains("%globaltimer"), "{ptx}");
}

#[test]
fn a_hold_times_as_long_as_it_holds() {
    let gpu = match Gpu::new(0) {
        Ok(gpu) => gpu,
        Err(CudaError::Unavailable(why)) => {
            return require_or_skip(Need::Gpu, "the GPU timer's hold", &why)
        }
        Err(e) => panic!("{e}"),
    };
    let compiler = Compiler::new(gpu.arch(), None).unwrap();
    let timer = Timer::new(&gpu, &compiler, 3).unwrap();
    assert_eq!(timer.len(), 3);
    // A first short hold, so that loading the module is not in the timed one.
    timer.hold(&gpu, 1_000).unwrap();
    gpu.synchronize().unwrap();
    timer.mark(&gpu, 0).unwrap();
    timer.hold(&gpu, 500_000).unwrap();
    timer.mark(&gpu, 1).unwrap();
    timer.mark(&gpu, 2).unwrap();
    // Queuing took the host microseconds: the GPU is still in the 500 µs hold.
    assert!(!timer.reached(1).unwrap());
    gpu.synchronize().unwrap();
    assert!(timer.reached(1).unwrap() && timer.reached(2).unwrap());
    let spans = timer.spans().unwrap();
    assert_eq!(spans.len(), 2);
    // The hold, plus the launch's few µs; 2 ms leaves room for a GPU shared with others.
    // Events resolve ~0.5 µs, %globaltimer ticks 1 µs at worst.
    assert!(spans[0] >= 495e-6 && spans[0] < 2e-3, "{spans:?}");
    // Nothing between marks 1 and 2.
    assert!((0.0..20e-6).contains(&spans[1]), "{spans:?}");
    // A mark past the last is an error, not a panic.
    assert!(timer.mark(&gpu, 3).is_err() && timer.reached(3).is_err());
}
