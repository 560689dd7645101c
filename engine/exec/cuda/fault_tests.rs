//! On a GPU: a kernel that faults is named by the session's validation pass, and the
//! process then refuses further CUDA sessions with the reason. The fault it provokes ends
//! its process's CUDA context, so it runs only when asked (`KESTREL_FAULT_TEST=1`), alone
//! in its process: `benches/gpu/check.sh` does that.

use super::{CudaExecutor, OpChoice};
use crate::error::Error;
use crate::session::{session_plan, SessionOptions};
use crate::{Device, Model};
use kestrel_kernels::cuda::CudaError;

#[test]
fn a_faulting_kernel_is_named_by_node_step_and_launch() {
    if std::env::var("KESTREL_FAULT_TEST").as_deref() != Ok("1") {
        return println!(
            "skipping: run alone on a GPU with KESTREL_FAULT_TEST=1 (benches/gpu/check.sh); \
             the device fault it provokes would fail every later CUDA test in this process"
        );
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let model = Model::load(format!("{dir}/cifarnet.safetensors")).unwrap();
    let opts = SessionOptions {
        device: Device::Cuda(0),
        ..SessionOptions::default()
    };
    let plan = session_plan(model.graph(), &opts).unwrap();
    let mut exec = CudaExecutor::new(&plan, 0, None, OpChoice::of(&opts)).unwrap();
    // Point the first launching step's first argument at an unmapped address: what an
    // index bug or a wrong arena offset would do.
    let step = exec
        .steps
        .iter()
        .position(|calls| !calls.is_empty())
        .unwrap();
    exec.steps[step][0].ptrs[0] = 1 << 47;
    let err = exec.validate(&plan).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    match &err {
        Error::CudaStep {
            node,
            step: index,
            error,
            ..
        } if matches!(**error, CudaError::Fault { .. }) => {
            assert_eq!((node, *index), (&plan.steps[step].name, step), "{msg}");
        }
        other => panic!("not a CudaStep fault: {other:?}"),
    }
    let launch = &exec.steps[step][0].launch;
    assert!(msg.contains(launch.entry) && msg.contains("grid "), "{msg}");
    assert!(msg.contains("sticky"), "{msg}");
    drop(exec);
    // A later session build says why it cannot work.
    let later = model
        .session(&opts)
        .err()
        .expect("a session after a device fault");
    assert!(
        matches!(later, Error::Cuda(CudaError::ContextLost { .. })),
        "{later:?}"
    );
}
