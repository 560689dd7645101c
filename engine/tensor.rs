//! Tensors at the API: shape (batch first, NCHW) and f32 storage. Kestrel computes in f32;
//! weights stored as f16 or bf16 are widened to f32 when the file is loaded.

use crate::error::Error;

/// A read-only view of one tensor, borrowed from a session's arena.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorView<'a> {
    /// Batch first, NCHW for images.
    pub shape: &'a [usize],
    /// The values, row-major in `shape`.
    pub data: &'a [f32],
}

impl TensorView<'_> {
    /// Copies the view out, to keep past the next run.
    pub fn to_tensor(&self) -> Tensor {
        Tensor {
            shape: self.shape.to_vec(),
            data: self.data.to_vec(),
        }
    }
}

/// An owned f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor of `shape` holding `data`; their sizes must agree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, Error> {
        let elems = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if elems != Some(data.len()) {
            return Err(Error::Input {
                name: "tensor".into(),
                detail: format!("shape {shape:?} does not hold {} values", data.len()),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// Its shape, batch first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Its values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// A borrowed view of it.
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            shape: &self.shape,
            data: &self.data,
        }
    }
}

/// `len` zeroed floats, or `Error::OutOfMemory` naming `what`: never an abort. The zero
/// pages come from the OS untouched (calloc-style), so a buffer bigger than the machine
/// can hold may still be granted under overcommit and fail only when first written;
/// `Session::warm_up` writes it before the runs that matter.
pub(crate) fn zeroed(len: usize, what: &str) -> Result<Vec<f32>, crate::Error> {
    let oom = || crate::Error::OutOfMemory {
        what: what.to_string(),
        floats: len,
    };
    if len == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<f32>(len).map_err(|_| oom())?;
    // SAFETY: the layout has a non-zero size. On success the memory is `len` f32s of
    // zero bits (0.0), allocated by the global allocator with exactly the layout a
    // Vec<f32> of capacity `len` frees it with.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<f32>();
        if ptr.is_null() {
            return Err(oom());
        }
        Ok(Vec::from_raw_parts(ptr, len, len))
    }
}

/// Hands the allocator's free memory back to the OS. Building a session frees one transient
/// buffer per packed step (a folded weight, a Winograd transform) among the packed ones it
/// keeps, and glibc keeps such holes resident where it cannot reuse them; `malloc_trim`
/// returns free pages from the middle of the heap too. Called after each step is packed:
/// ResNet-50's peak RSS (`kestrel run`) 231 → 204 MiB, ConvNeXt-T's 135 → 126 MiB, for
/// 57 calls taking 12 ms in all. Elsewhere (another libc) it does nothing.
pub(crate) fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases memory that is free.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::Tensor;

    #[test]
    fn shape_and_data_must_agree() {
        let t = Tensor::new(vec![2, 3], (0..6).map(|i| i as f32).collect()).unwrap();
        assert_eq!(t.view().to_tensor(), t);
        assert_eq!(t.view().data[5], 5.0);
        assert!(Tensor::new(vec![2, 3], vec![0.0; 5]).is_err());
        assert!(Tensor::new(vec![1 << 40, 1 << 40], vec![]).is_err());
    }
}
