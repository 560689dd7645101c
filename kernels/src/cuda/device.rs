//! The GPU itself, through cudarc: context, stream, modules, buffers, launches.
//!
//! Thin methods over cudarc with every `DriverError` turned into a `CudaError` that says
//! what was being done. Two rules from docs/cuda.md shape [`Gpu::new`]: cudarc panics on first
//! use when libcuda cannot be loaded, so the library is probed before any cudarc call;
//! and a session is captured into a CUDA graph, which needs per-buffer event tracking off
//! (it adds cross-stream waits that break capture) and one non-default stream for every
//! allocation, copy and launch (the default stream cannot be captured).

use super::compile::{Compiler, Module};
use super::module::{self, Kernel, Loaded};
use super::{Arg, CudaError, CudaOp, Launch};
use cudarc::driver::{
    result, sys, CudaContext, CudaSlice, CudaStream, DevicePtr, DriverError, PinnedHostSlice,
};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};

pub use super::timer::{spin_launch, Timer};

/// One device's context with the one stream everything of a session runs on.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    arch: String,
    name: String,
    /// The driver's CUDA version, e.g. (13, 0).
    driver_version: (i32, i32),
    /// Loaded modules by image: launches that share a specialisation load it once.
    modules: Mutex<HashMap<Vec<u8>, Arc<Loaded>>>,
}

/// The first device fault of this process, once there has been one: CUDA's errors of
/// that kind are sticky (the context stays broken), so later session builds are refused
/// with this instead of failing at some unrelated call.
static FAULT: OnceLock<String> = OnceLock::new();

/// The device fault that made this process's CUDA context unusable, if one happened.
pub fn fault_in_process() -> Option<&'static str> {
    FAULT.get().map(String::as_str)
}

/// Maps a cudarc error to a `CudaError` naming what was being done: `Fault` (recorded
/// for the process) for the sticky errors of a kernel gone wrong, else `Driver`.
pub fn driver_error(what: impl Into<String>, e: DriverError) -> CudaError {
    let (what, detail) = (what.into(), describe(e));
    if is_sticky(e) {
        let _ = FAULT.set(format!("{what}: {detail}"));
        return CudaError::Fault { what, detail };
    }
    CudaError::Driver { what, detail }
}

/// The CUresult codes CUDA documents as leaving the context unusable: an uncorrectable
/// ECC error, and a kernel's illegal address, timeout, assert, stack error, illegal
/// instruction, misaligned address, invalid address space, invalid PC and launch failure.
pub fn is_sticky(e: DriverError) -> bool {
    matches!(e.0 as u32, 214 | 700 | 702 | 710 | 714..=719)
}

/// [`driver_error`] as a `map_err` argument.
pub(crate) fn driver(what: impl Into<String>) -> impl FnOnce(DriverError) -> CudaError {
    let what = what.into();
    move |e| driver_error(what, e)
}

/// "CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
fn describe(e: DriverError) -> String {
    // SAFETY: only tries to dlopen libcuda; the name lookups below panic without it.
    if !unsafe { sys::is_culib_present() } {
        return format!("{:?}", e.0);
    }
    match (e.error_name(), e.error_string()) {
        (Ok(name), Ok(text)) => format!("{} ({})", name.to_string_lossy(), text.to_string_lossy()),
        _ => format!("{:?}", e.0),
    }
}

/// The driver's device count, or `Unavailable` saying why there is no device to use.
fn device_count(ordinal: usize) -> Result<usize, CudaError> {
    // SAFETY: only tries to dlopen libcuda's candidate names; every other cudarc driver
    // call panics when that fails, so this comes first.
    if !unsafe { sys::is_culib_present() } {
        return Err(CudaError::Unavailable(
            "no CUDA driver (libcuda.so.1) found".into(),
        ));
    }
    // cuInit fails with CUDA_ERROR_NO_DEVICE on a machine with the driver but no GPU.
    let count = CudaContext::device_count()
        .map_err(|e| CudaError::Unavailable(format!("the CUDA driver reports {}", describe(e))))?;
    let count = count.max(0) as usize;
    if ordinal >= count {
        return Err(CudaError::Unavailable(format!(
            "device {ordinal} requested, the driver sees {count} CUDA device(s)"
        )));
    }
    Ok(count)
}

/// The name of device `ordinal` (e.g. "NVIDIA H100 80GB HBM3"), or `Unavailable` when
/// there is no driver or no such device. Creates no context: tests call it to decide
/// whether to skip.
pub fn probe(ordinal: usize) -> Result<String, CudaError> {
    device_count(ordinal)?;
    let device = result::device::get(ordinal as i32).map_err(driver("get device"))?;
    result::device::get_name(device).map_err(driver("read the device name"))
}

impl Gpu {
    /// Opens device `ordinal`: `CudaError::Unavailable` when there is no driver or no such device.
    pub fn new(ordinal: usize) -> Result<Gpu, CudaError> {
        if let Some(first) = fault_in_process() {
            return Err(CudaError::ContextLost {
                what: format!("open device {ordinal}"),
                first: first.to_string(),
            });
        }
        device_count(ordinal)?;
        let ctx = CudaContext::new(ordinal)
            .map_err(driver(format!("create a context on device {ordinal}")))?;
        // SAFETY: called before any allocation, stream or launch of this context, and
        // everything the Gpu does runs in order on its one stream, so no buffer needs the
        // events cudarc would otherwise record to order cross-stream use.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(driver("create a stream"))?;
        let name = ctx.name().map_err(driver("read the device name"))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver("read the compute capability"))?;
        let driver_version = module::driver_version().map_err(driver("read the driver version"))?;
        Ok(Gpu {
            ctx,
            stream,
            arch: format!("sm_{major}{minor}"),
            name,
            driver_version,
            modules: Mutex::new(HashMap::new()),
        })
    }

    /// The driver's CUDA version, e.g. (13, 0) for a 580 driver.
    pub fn driver_version(&self) -> (i32, i32) {
        self.driver_version
    }

    /// Ok when what `compiler` produces loads on this device's driver; else an error
    /// naming both versions and the fix (see [`module::check_versions`]).
    pub fn check(&self, compiler: &Compiler) -> Result<(), CudaError> {
        module::check_versions(
            compiler.nvrtc(),
            compiler.target().kind,
            self.driver_version,
        )
    }

    /// The device's architecture as NVRTC names it, e.g. "sm_90".
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// The device's name, e.g. "NVIDIA H100 80GB HBM3".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cudarc context, for calls this wrapper does not cover.
    pub fn ctx(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The stream every allocation, copy and launch of this Gpu goes to.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Kernel `launch.entry` of `module` (compiled from `launch`), loading the module
    /// once per distinct image. A refused module is a `CudaError::Load` carrying the
    /// driver's JIT log.
    pub fn load(&self, module: &Module, launch: &Launch) -> Result<Kernel, CudaError> {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = match modules.get(&module.image) {
            Some(m) => m.clone(),
            None => {
                let m = module::load(&self.ctx, module).map_err(|f| CudaError::Load {
                    kind: module.kind.as_str(),
                    entry: launch.entry.to_string(),
                    source_name: launch.source.name.to_string(),
                    detail: describe(f.error),
                    log: f.log,
                })?;
                modules.insert(module.image.clone(), m.clone());
                m
            }
        };
        module::kernel(&loaded, launch.entry)
            .map_err(driver(format!("find {} in its module", launch.entry)))
    }

    /// `len` zeroed floats on the device (at least one: CUDA refuses empty allocations).
    pub fn alloc_zeros(&self, len: usize) -> Result<CudaSlice<f32>, CudaError> {
        self.stream
            .alloc_zeros(len.max(1))
            .map_err(driver(format!("allocate {len} floats")))
    }

    /// A device copy of `data` (one zero when `data` is empty).
    pub fn upload(&self, data: &[f32]) -> Result<CudaSlice<f32>, CudaError> {
        if data.is_empty() {
            return self.alloc_zeros(1);
        }
        self.stream
            .clone_htod(data)
            .map_err(driver(format!("upload {} floats", data.len())))
    }

    /// `slice`'s device address, to bake into launch arguments.
    pub fn device_ptr(&self, slice: &CudaSlice<f32>) -> u64 {
        // Event tracking is off, so the returned guard records nothing.
        let (ptr, _guard) = slice.device_ptr(&self.stream);
        ptr
    }

    /// Page-locked host memory for `len` floats, zeroed. `write_combined` suits buffers
    /// only the CPU writes (inputs); the CPU reads write-combined memory very slowly, so
    /// device-to-host staging must pass false (docs/cuda.md).
    pub fn alloc_pinned(&self, len: usize, write_combined: bool) -> Result<Pinned, CudaError> {
        let len = len.max(1);
        if len > isize::MAX as usize / size_of::<f32>() {
            return Err(CudaError::Driver {
                what: format!("allocate {len} pinned floats"),
                detail: "size overflows".into(),
            });
        }
        let flags = if write_combined {
            sys::CU_MEMHOSTALLOC_WRITECOMBINED
        } else {
            0
        };
        let what = || format!("allocate {len} pinned floats");
        // SAFETY: the memory is uninitialised until the write_bytes below, and nothing
        // reads it before; len * 4 bytes does not overflow (checked above).
        let mut memory = unsafe { self.ctx.alloc_pinned_with_flags::<f32>(len, flags) }
            .map_err(driver(what()))?;
        // Taken once: cudarc's accessors wait on an event each call, which must not
        // happen per run nor inside a graph capture.
        let ptr = memory.as_mut_ptr().map_err(driver(what()))?;
        // SAFETY: ptr points at len f32s of freshly allocated, exclusively owned memory.
        unsafe { std::ptr::write_bytes(ptr, 0, len) };
        Ok(Pinned {
            _memory: memory,
            ptr,
            len,
        })
    }

    /// Enqueues a copy of `host` to device address `device` on the stream. With pinned
    /// `host` the copy is asynchronous: keep `host` unchanged until the stream is
    /// synchronized. A bad device address is reported by the driver, never written.
    pub fn copy_in(&self, device: u64, host: &[f32]) -> Result<(), CudaError> {
        let what = || format!("copy {} floats to the device", host.len());
        self.ctx.bind_to_thread().map_err(driver(what()))?;
        // SAFETY: the driver reads host.len() floats from a live slice; it checks the
        // device range itself.
        unsafe { result::memcpy_htod_async(device, host, self.stream.cu_stream()) }
            .map_err(driver(what()))
    }

    /// Enqueues a copy from device address `device` into `host`. Into pinned memory this
    /// is asynchronous: synchronize the stream before reading `host`.
    pub fn copy_out(&self, host: &mut [f32], device: u64) -> Result<(), CudaError> {
        let len = host.len();
        let what = || format!("copy {len} floats from the device");
        self.ctx.bind_to_thread().map_err(driver(what()))?;
        // SAFETY: the driver writes exactly host.len() floats into the live slice.
        unsafe { result::memcpy_dtoh_async(host, device, self.stream.cu_stream()) }
            .map_err(driver(what()))
    }

    /// [`Gpu::copy_out`], then waits for the stream: `host` is ready on return.
    pub fn copy_out_sync(&self, host: &mut [f32], device: u64) -> Result<(), CudaError> {
        self.copy_out(host, device)?;
        self.synchronize()
    }

    /// A device buffer's first `len` floats, back on the host (waits for the stream).
    pub fn download(&self, slice: &CudaSlice<f32>, len: usize) -> Result<Vec<f32>, CudaError> {
        let mut host = vec![0.0; len.min(slice.len())];
        let ptr = self.device_ptr(slice);
        self.copy_out_sync(&mut host, ptr)?;
        Ok(host)
    }

    /// Enqueues `kernel` with `l`'s grid, block and shared memory; `ptrs[i]` is the
    /// device address of `l.args[i]`, each passed as one 64-bit kernel argument.
    pub fn launch(&self, kernel: &Kernel, l: &Launch, ptrs: &[u64]) -> Result<(), CudaError> {
        let what = || {
            format!(
                "launch {} ({} from {})",
                l.entry,
                geometry(l),
                l.source.name
            )
        };
        let mut values = [0u64; MAX_ARGS];
        if ptrs.len() != l.args.len() || ptrs.len() > MAX_ARGS {
            return Err(CudaError::Driver {
                what: what(),
                detail: format!(
                    "{} addresses for {} arguments (at most {MAX_ARGS})",
                    ptrs.len(),
                    l.args.len()
                ),
            });
        }
        values[..ptrs.len()].copy_from_slice(ptrs);
        let mut params = [std::ptr::null_mut::<c_void>(); MAX_ARGS];
        for (param, value) in params.iter_mut().zip(values.iter_mut()) {
            *param = (value as *mut u64).cast();
        }
        self.ctx.bind_to_thread().map_err(driver(what()))?;
        // SAFETY: every parameter of a Kestrel kernel is a float pointer (the .cu rules),
        // one per `l.args`, passed as a pointer to its 64-bit value; each ptrs[i] is the
        // device address the caller resolved for that role, and the kernel's own bounds
        // come from the defines its module was compiled with, which describe those buffers.
        unsafe {
            kernel.launch(
                self.stream.cu_stream(),
                l.grid,
                l.block,
                l.shared_bytes,
                &mut params[..ptrs.len()],
            )
        }
        .map_err(driver(what()))
    }

    /// Waits until everything enqueued on the stream has run.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.stream
            .synchronize()
            .map_err(driver("synchronize the stream"))
    }
}

/// The most pointer arguments a kernel takes (conv2d's igemm has six).
const MAX_ARGS: usize = 16;

/// "grid 4x2x1, block 128x1x1", for errors that name a launch.
pub fn geometry(l: &Launch) -> String {
    let [gx, gy, gz] = l.grid;
    let [bx, by, bz] = l.block;
    format!("grid {gx}x{gy}x{gz}, block {bx}x{by}x{bz}")
}

/// One op on its own device buffers, every launch loaded and its arguments resolved:
/// what kernel tests and benches run, [`PreparedOp::enqueue`] as often as they like.
pub struct PreparedOp {
    calls: Vec<(Kernel, Launch, Vec<u64>)>,
    out: CudaSlice<f32>,
    out_len: usize,
    // Held for their device memory, which `calls` point into.
    _buffers: Vec<CudaSlice<f32>>,
}

impl PreparedOp {
    /// Uploads `op`'s constants and `inputs`, allocates its output, compiles and loads its
    /// launches.
    pub fn new(
        gpu: &Gpu,
        compiler: &Compiler,
        op: &CudaOp,
        inputs: &[&[f32]],
        out_len: usize,
    ) -> Result<PreparedOp, CudaError> {
        gpu.check(compiler)?;
        let consts = op
            .consts
            .iter()
            .map(|c| gpu.upload(c))
            .collect::<Result<Vec<_>, _>>()?;
        let ins = inputs
            .iter()
            .map(|x| gpu.upload(x))
            .collect::<Result<Vec<_>, _>>()?;
        let out = gpu.alloc_zeros(out_len)?;
        let mut calls = Vec::new();
        for launch in &op.launches {
            let function = gpu.load(&*compiler.module(launch)?, launch)?;
            let ptrs = launch
                .args
                .iter()
                .map(|arg| {
                    let buf = match *arg {
                        Arg::Input(i) => ins.get(i),
                        Arg::Const(i) => consts.get(i),
                        Arg::Output => Some(&out),
                        Arg::Value(_) => None,
                    };
                    buf.map(|b| gpu.device_ptr(b))
                        .ok_or_else(|| CudaError::Driver {
                            what: format!("launch {}", launch.entry),
                            detail: format!(
                                "argument {arg:?}, but the op has {} inputs and {} consts",
                                ins.len(),
                                consts.len()
                            ),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            calls.push((function, launch.clone(), ptrs));
        }
        Ok(PreparedOp {
            calls,
            out,
            out_len,
            _buffers: consts.into_iter().chain(ins).collect(),
        })
    }

    /// Enqueues every launch of the op on `gpu`'s stream; waits for none.
    pub fn enqueue(&self, gpu: &Gpu) -> Result<(), CudaError> {
        for (function, launch, ptrs) in &self.calls {
            gpu.launch(function, launch, ptrs)?;
        }
        Ok(())
    }

    /// Runs the op once, waiting after each launch so a fault is reported against the
    /// launch that caused it, and returns its output.
    pub fn run(&self, gpu: &Gpu) -> Result<Vec<f32>, CudaError> {
        for (function, launch, ptrs) in &self.calls {
            gpu.launch(function, launch, ptrs)?;
            gpu.synchronize().map_err(|e| match e {
                CudaError::Driver { detail, .. } => CudaError::Driver {
                    what: format!("run {} ({})", launch.entry, geometry(launch)),
                    detail,
                },
                CudaError::Fault { detail, .. } => CudaError::Fault {
                    what: format!("run {} ({})", launch.entry, geometry(launch)),
                    detail,
                },
                other => other,
            })?;
        }
        gpu.download(&self.out, self.out_len)
    }
}

/// Runs one op eagerly on fresh device buffers and returns its output: for kernel tests.
pub fn run_op(
    gpu: &Gpu,
    compiler: &Compiler,
    op: &CudaOp,
    inputs: &[&[f32]],
    out_len: usize,
) -> Result<Vec<f32>, CudaError> {
    PreparedOp::new(gpu, compiler, op, inputs, out_len)?.run(gpu)
}

/// Page-locked host memory: staging for asynchronous copies and graph-captured copies.
pub struct Pinned {
    /// Owns the allocation; never used after `ptr` is taken, so its event stays unrecorded.
    _memory: PinnedHostSlice<f32>,
    ptr: *mut f32,
    len: usize,
}

// SAFETY: `ptr` points into `memory`, which this struct owns and which lives as long as
// it; access goes through `&self`/`&mut self`, so Rust's borrow rules order it like a
// Vec's. Pinned host memory is not tied to the thread that allocated it.
unsafe impl Send for Pinned {}
unsafe impl Sync for Pinned {}

impl Pinned {
    /// The host view. Copies the GPU makes into this memory are asynchronous: synchronize
    /// the stream before reading what a copy wrote.
    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: ptr and len describe the live, initialised (zeroed at allocation) buffer.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// See [`Pinned::as_slice`]; writes must not race a pending copy out of this memory.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as above, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}
