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
///
/// A buffer of a huge page or more (the arena and kernel scratch of the larger models) asks
/// for transparent huge pages (`advise_huge_pages`), and gets one huge page of spare
/// capacity, never touched and so never resident, so that its aligned huge pages reach its
/// end.
pub(crate) fn zeroed(len: usize, what: &str) -> Result<Vec<f32>, crate::Error> {
    let oom = || crate::Error::OutOfMemory {
        what: what.to_string(),
        floats: len,
    };
    if len == 0 {
        return Ok(Vec::new());
    }
    let huge = len.saturating_mul(4) >= HUGE_PAGE;
    let cap = match huge {
        true => len.checked_add(HUGE_PAGE / 4).ok_or_else(oom)?,
        false => len,
    };
    let layout = std::alloc::Layout::array::<f32>(cap).map_err(|_| oom())?;
    // SAFETY: the layout has a non-zero size. On success the memory is `cap` f32s of
    // zero bits (0.0), allocated by the global allocator with exactly the layout a
    // Vec<f32> of capacity `cap` frees it with; the first `len` are the Vec's.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<f32>();
        if ptr.is_null() {
            return Err(oom());
        }
        if huge {
            advise_huge_pages(ptr, cap);
        }
        Ok(Vec::from_raw_parts(ptr, len, cap))
    }
}

/// Bytes of an x86-64 (and most aarch64) transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// Asks Linux to back the 2 MiB-aligned part of `len` floats at `ptr` with transparent
/// huge pages, before anything touches it. Where THP is "madvise" (as on the development
/// VMs) nothing else would; "always" gives them anyway, "never" or another OS ignores the
/// advice, which is all it is. A memory-bound layer's strided reads (a 1×1 conv's B rows
/// 12 KiB apart, a depthwise conv's planes) then cost a TLB entry per 2 MiB, not per 4 KiB:
/// on the Xeon model 207, two sessions, with and without it on the arena, alternated run by
/// run in one process (the `kestrel` library, twice each): ResNet-50 0.955–0.974× the
/// median time at 1 thread (an 8 MiB arena), MobileNetV2 0.971–0.978×, MobileNetV2 batch 8
/// at 2 threads 0.916–0.964×. The cost: the arena's last huge page is resident whole
/// (peak RSS of `kestrel run` ResNet-50 173.7 → 175.5 MB, MobileNetV2 26.6 → 27.9 MB).
///
/// # Safety
/// `ptr` is the start of an allocation of `len` floats that nothing has touched yet.
unsafe fn advise_huge_pages(ptr: *mut f32, len: usize) {
    #[cfg(target_os = "linux")]
    {
        let (at, end) = (ptr as usize, ptr as usize + len * 4);
        let (start, stop) = (at.next_multiple_of(HUGE_PAGE), end / HUGE_PAGE * HUGE_PAGE);
        if stop > start {
            // SAFETY: [start, stop) lies inside the caller's allocation; the advice changes
            // how its pages are backed, never their contents (zero until written).
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    stop - start,
                    libc::MADV_HUGEPAGE,
                )
            };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len);
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
