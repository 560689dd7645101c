//! The tail of a huge grid: a launch's last blocks run on windows of tensors of up to
//! 2^31 elements, to test the kernels' index arithmetic at the top of the 32-bit range.

use super::{execute_cases, Lowered, LoweredLaunch};
use crate::cuda::Launch;

/// Elements `at .. at + data.len()` of a tensor of up to 2^31 elements: all of it that
/// the blocks a [`run_tail`] runs may touch.
pub struct Window<'a> {
    /// Index of the window's first element in the whole tensor.
    pub at: usize,
    /// The elements from there on.
    pub data: &'a [f32],
}

/// Runs `launch` from block `first_block` on (numbered x fastest, then y, then z) with
/// pointer argument `a` at `windows[a]`, and returns `windows[result]`'s content after.
///
/// How a test reaches the top of the 32-bit index range without 8 GB per tensor: only the
/// windows are memory. Each lies in 16 GiB of reserved, inaccessible address space on
/// either side, and the kernel's pointer is `at` floats below it, so an element of the
/// tensor outside its window faults, and so does any other float the kernel reaches with
/// a 32-bit index, signed or not: one that wrapped negative included.
pub fn run_tail(
    launch: &Launch,
    first_block: u64,
    windows: &[Window<'_>],
    result: usize,
) -> Result<Vec<f32>, String> {
    if windows.len() != launch.args.len() {
        return Err(format!(
            "{}: {} windows for {} arguments",
            launch.entry,
            windows.len(),
            launch.args.len()
        ));
    }
    if let Some(w) = windows.iter().find(|w| w.at + w.data.len() > 1 << 31) {
        return Err(format!(
            "{}: a window ends at element {}, past 2^31",
            launch.entry,
            w.at + w.data.len()
        ));
    }
    if result >= windows.len() {
        return Err(format!("result window {result} of {}", windows.len()));
    }
    let lowered = Lowered {
        buffers: windows.iter().map(|w| w.data).collect(),
        out_len: 0,
        launches: vec![LoweredLaunch {
            launch,
            first_block,
            views: (0..windows.len())
                .map(|a| (a as i64, -(windows[a].at as i64)))
                .collect(),
        }],
        result: result as i64,
        wide: true,
    };
    Ok(execute_cases(&[lowered])?.pop().unwrap_or_default())
}
