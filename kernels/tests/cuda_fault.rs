//! A device fault is sticky in CUDA: once a kernel has faulted, the process's context is
//! unusable. Kestrel records the first fault and refuses to open a device afterwards,
//! naming that fault, instead of failing later at some unrelated call. This file is its
//! own test process so the recorded fault touches no other test; it needs no GPU.

use cudarc::driver::{sys::CUresult, DriverError};
use kestrel_kernels::cuda::device::{driver_error, fault_in_process, is_sticky, Gpu};
use kestrel_kernels::cuda::CudaError;

#[test]
fn a_fault_is_sticky_and_refuses_later_devices() {
    let oom = DriverError(CUresult::CUDA_ERROR_OUT_OF_MEMORY);
    assert!(!is_sticky(oom));
    let err = driver_error("allocate", oom);
    assert!(matches!(err, CudaError::Driver { .. }), "{err:?}");
    assert!(
        fault_in_process().is_none(),
        "an ordinary error counted as a fault"
    );

    let illegal = DriverError(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS);
    assert!(is_sticky(illegal));
    assert!(is_sticky(DriverError(CUresult::CUDA_ERROR_LAUNCH_FAILED)));
    let err = driver_error("synchronize the stream", illegal);
    assert!(matches!(err, CudaError::Fault { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("CUDA_ERROR_ILLEGAL_ADDRESS"), "{msg}");
    assert!(msg.contains("sticky") && msg.contains("restart"), "{msg}");

    // Checked before the driver is even looked for: the same with or without a GPU.
    let err = Gpu::new(0).err().expect("a device opened after a fault");
    let msg = err.to_string();
    assert!(matches!(err, CudaError::ContextLost { .. }), "{err:?}");
    assert!(
        msg.contains("synchronize the stream") && msg.contains("CUDA_ERROR_ILLEGAL_ADDRESS"),
        "{msg}"
    );
    assert!(msg.contains("restart the process"), "{msg}");
}
