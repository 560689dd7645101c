//! After a device fault, a session build in the same process says the CUDA context is
//! lost, naming the fault, rather than failing obscurely at its first driver call. Its
//! own test process (the fault is recorded for the process); needs no GPU.

mod common;

use common::fixture;
use cudarc::driver::{sys::CUresult, DriverError};
use kestrel::{CudaError, Device, Error, Model, SessionOptions};
use kestrel_kernels::cuda::device::driver_error;

#[test]
fn a_session_after_a_device_fault_is_refused_with_the_reason() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    // What the executor's validation pass records when a kernel faults.
    let fault = driver_error(
        "synchronize the stream",
        DriverError(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS),
    );
    assert!(matches!(fault, CudaError::Fault { .. }), "{fault:?}");
    let opts = SessionOptions::default().with_device(Device::Cuda(0));
    let err = model.session(&opts).err().expect("a session after a fault");
    assert!(
        matches!(err, Error::Cuda(CudaError::ContextLost { .. })),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("CUDA_ERROR_ILLEGAL_ADDRESS"), "{msg}");
    assert!(msg.contains("restart the process"), "{msg}");
    // The CPU is not affected.
    assert!(model.session(&SessionOptions::default()).is_ok());
}
