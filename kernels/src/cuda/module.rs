//! Compiled modules on the device: loaded with the driver's JIT logs, their kernels
//! launched, and the rule for which NVRTC a driver can take.
//!
//! cudarc's `load_module` passes no log buffers, so a module the driver refuses (ptxas
//! out of registers on a PTX fallback, a PTX ISA newer than the driver) fails with a bare
//! `CUDA_ERROR_INVALID_PTX`. Loading through `cuModuleLoadDataEx` here keeps the log in
//! the error. Kernels are then launched with `cuLaunchKernel` directly, since a cudarc
//! `CudaFunction` can only come from cudarc's own loader.

use super::compile::Module;
use super::nvrtc::{ImageKind, Nvrtc};
use super::CudaError;
use cudarc::driver::{result, sys, CudaContext, DriverError};
use std::ffi::c_void;
use std::sync::Arc;

/// Bytes of each JIT log buffer: ptxas and the JIT linker write a few lines per kernel.
const LOG_BYTES: usize = 16 << 10;

/// A module loaded into a context, unloaded when the last [`Kernel`] of it drops.
pub(crate) struct Loaded {
    raw: sys::CUmodule,
    ctx: Arc<CudaContext>,
}

// SAFETY: a CUmodule is a handle the driver lets any thread use once its context is
// current (every use here binds the context first); nothing here mutates it after load.
unsafe impl Send for Loaded {}
unsafe impl Sync for Loaded {}

impl Drop for Loaded {
    fn drop(&mut self) {
        // SAFETY: raw came from cuModuleLoadDataEx in ctx and is unloaded only here. An
        // error (a context lost to a device fault) leaves nothing to free.
        unsafe {
            if self.ctx.bind_to_thread().is_ok() {
                let _ = result::module::unload(self.raw);
            }
        }
    }
}

/// One kernel of a loaded module: what [`super::device::Gpu::launch`] runs.
#[derive(Clone)]
pub struct Kernel {
    function: sys::CUfunction,
    _module: Arc<Loaded>,
}

// SAFETY: as for `Loaded`: a CUfunction is an immutable handle usable from any thread.
unsafe impl Send for Kernel {}
unsafe impl Sync for Kernel {}

/// What a failed load said: the driver's error and its JIT error and info logs.
pub(crate) struct LoadFailure {
    pub error: DriverError,
    pub log: String,
}

/// Loads `module` into `ctx`, passing the JIT's error and info log buffers.
pub(crate) fn load(ctx: &Arc<CudaContext>, module: &Module) -> Result<Arc<Loaded>, LoadFailure> {
    let failure = |error| LoadFailure {
        error,
        log: String::new(),
    };
    ctx.bind_to_thread().map_err(failure)?;
    // PTX is loaded as a C string; a CUBIN is an ELF image the driver sizes itself.
    let image: std::borrow::Cow<[u8]> = match module.kind {
        ImageKind::Ptx => [&module.image[..], &[0]].concat().into(),
        ImageKind::Cubin => (&module.image[..]).into(),
    };
    let mut error_log = vec![0u8; LOG_BYTES];
    let mut info_log = vec![0u8; LOG_BYTES];
    let mut options = [
        sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER,
        sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
        sys::CUjit_option::CU_JIT_INFO_LOG_BUFFER,
        sys::CUjit_option::CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
        sys::CUjit_option::CU_JIT_LOG_VERBOSE,
    ];
    // Sizes and flags are passed as the pointer-sized value itself (the driver's rule).
    let mut values: [*mut c_void; 5] = [
        error_log.as_mut_ptr().cast(),
        std::ptr::without_provenance_mut(LOG_BYTES),
        info_log.as_mut_ptr().cast(),
        std::ptr::without_provenance_mut(LOG_BYTES),
        std::ptr::without_provenance_mut(1),
    ];
    let mut raw: sys::CUmodule = std::ptr::null_mut();
    // SAFETY: image outlives the call (NUL-terminated for PTX); the log buffers are
    // LOG_BYTES long, as their size options say; options and values have equal length.
    let loaded = unsafe {
        sys::cuModuleLoadDataEx(
            &mut raw,
            image.as_ptr().cast(),
            options.len() as u32,
            options.as_mut_ptr(),
            values.as_mut_ptr(),
        )
    }
    .result();
    match loaded {
        Ok(()) => Ok(Arc::new(Loaded {
            raw,
            ctx: ctx.clone(),
        })),
        Err(error) => Err(LoadFailure {
            error,
            log: [("error log", &error_log), ("info log", &info_log)]
                .iter()
                .filter_map(|(name, buf)| {
                    let text = c_text(buf);
                    (!text.trim().is_empty()).then(|| format!("{name}:\n{}", text.trim_end()))
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }),
    }
}

/// Kernel `entry` of a loaded module.
pub(crate) fn kernel(module: &Arc<Loaded>, entry: &str) -> Result<Kernel, DriverError> {
    let name = std::ffi::CString::new(entry)
        .map_err(|_| DriverError(sys::cudaError_enum::CUDA_ERROR_INVALID_VALUE))?;
    module.ctx.bind_to_thread()?;
    // SAFETY: module.raw is loaded in its context, which is current; name is a C string.
    let function = unsafe { result::module::get_function(module.raw, name) }?;
    Ok(Kernel {
        function,
        _module: module.clone(),
    })
}

impl Kernel {
    /// Enqueues the kernel on `stream`.
    ///
    /// # Safety
    /// `params` holds one pointer per kernel parameter, each to a value of that
    /// parameter's type, and whatever memory the kernel touches through them is valid
    /// for the launch's grid.
    pub(crate) unsafe fn launch(
        &self,
        stream: sys::CUstream,
        grid: [u32; 3],
        block: [u32; 3],
        shared_bytes: u32,
        params: &mut [*mut c_void],
    ) -> Result<(), DriverError> {
        result::launch_kernel(
            self.function,
            (grid[0], grid[1], grid[2]),
            (block[0], block[1], block[2]),
            shared_bytes,
            stream,
            params,
        )
    }
}

/// A NUL-terminated buffer as text (lossy).
fn c_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The driver's CUDA version as (major, minor): 13000 is (13, 0).
pub fn driver_version() -> Result<(i32, i32), DriverError> {
    let mut version = 0;
    // SAFETY: writes one int through a valid pointer; the caller has loaded the driver.
    unsafe { sys::cuDriverGetVersion(&mut version) }.result()?;
    Ok((version / 1000, version % 1000 / 10))
}

/// Whether modules `nvrtc` compiles to `kind` load on a driver of CUDA version `driver`.
///
/// A CUBIN needs no JIT: a driver runs code of its own major version built by any
/// minor toolkit (CUDA's minor version compatibility), so only the major versions must
/// agree (or the driver be newer). PTX is JIT-compiled by the driver, which refuses a PTX
/// ISA newer than itself: NVRTC must not be newer than the driver at all.
pub fn check_versions(nvrtc: &Nvrtc, kind: ImageKind, driver: (i32, i32)) -> Result<(), CudaError> {
    let (nv, dv) = (nvrtc.version, driver);
    let problem = match kind {
        ImageKind::Cubin if nv.0 > dv.0 => format!(
            "CUBIN from NVRTC {}.{} needs a CUDA {}.x driver",
            nv.0, nv.1, nv.0
        ),
        ImageKind::Ptx if nv > dv => format!(
            "this GPU's architecture is past what NVRTC compiles to machine code, so its \
             modules are PTX, which the driver JIT-compiles only up to its own version \
             (NVRTC {}.{} emits a newer PTX ISA than driver {}.{} reads)",
            nv.0, nv.1, dv.0, dv.1
        ),
        _ => return Ok(()),
    };
    Err(CudaError::Version {
        nvrtc: nvrtc.describe(),
        driver: format!("{}.{}", dv.0, dv.1),
        detail: format!(
            "{problem}. Fix: use an NVRTC no newer than the driver, e.g. `pip install \
             nvidia-cuda-nvrtc=={}.{}.*` and put its lib folder \
             (site-packages/nvidia/cu{}/lib) first on LD_LIBRARY_PATH, or the CUDA {}.{} \
             toolkit's lib folder; or update the driver",
            dv.0, dv.1, dv.0, dv.0, dv.1
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nvrtc(version: (i32, i32)) -> Nvrtc {
        Nvrtc {
            version,
            library: Some("/opt/nvrtc/libnvrtc.so.13".into()),
            archs: vec![80, 90],
        }
    }

    #[test]
    fn cubin_needs_the_same_major_version_and_ptx_no_newer_nvrtc() {
        let driver_13_0 = (13, 0);
        // A 13.2 NVRTC's CUBIN runs on a 13.0 driver (minor version compatibility)...
        assert!(check_versions(&nvrtc((13, 2)), ImageKind::Cubin, driver_13_0).is_ok());
        assert!(check_versions(&nvrtc((13, 0)), ImageKind::Ptx, driver_13_0).is_ok());
        assert!(check_versions(&nvrtc((12, 8)), ImageKind::Ptx, driver_13_0).is_ok());
        // ...but its PTX (ISA 9.2) does not: the driver JIT reads up to 9.0.
        let err = check_versions(&nvrtc((13, 2)), ImageKind::Ptx, driver_13_0).unwrap_err();
        let msg = err.to_string();
        for part in [
            "NVRTC 13.2",
            "/opt/nvrtc/libnvrtc.so.13",
            "CUDA 13.0 driver",
        ] {
            assert!(msg.contains(part), "{part} missing from: {msg}");
        }
        assert!(
            msg.contains("pip install nvidia-cuda-nvrtc==13.0.*"),
            "{msg}"
        );
        assert!(msg.contains("LD_LIBRARY_PATH"), "{msg}");
        // And no CUBIN of a newer major version.
        let err = check_versions(&nvrtc((13, 0)), ImageKind::Cubin, (12, 8)).unwrap_err();
        assert!(matches!(err, CudaError::Version { .. }), "{err:?}");
        assert!(err.to_string().contains("12.8"), "{err}");
    }
}
