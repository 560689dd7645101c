//! [`F32Data`]: a tensor's f32 values, owned or read in place from a mapped file.

use std::ops::Deref;
use std::sync::Arc;

#[cfg(unix)]
use crate::map::FileMap;

/// A tensor's f32 values: either owned, or a view into a memory-mapped model file (the
/// file's F32 tensors at 4-byte-aligned offsets, on little-endian unix hosts). Cheap to
/// clone (it shares the buffer or the map) and reads as a `[f32]` either way. A mapped view
/// keeps the map alive; its pages are resident only while touched, and
/// [`F32Data::release_pages`] hands them back once the values have been consumed.
#[derive(Clone)]
pub struct F32Data(Repr);

#[derive(Clone)]
enum Repr {
    Owned(Arc<[f32]>),
    /// `len` f32s at byte `offset` of `map`: in bounds and 4-byte aligned (`mapped`).
    #[cfg(unix)]
    Mapped {
        map: Arc<FileMap>,
        offset: usize,
        len: usize,
    },
}

impl F32Data {
    /// `len` f32s at byte `offset` of `map`, in place; None if they do not lie inside the
    /// map, are not 4-byte aligned, or this host is big-endian (the file is little-endian).
    #[cfg(unix)]
    pub(crate) fn mapped(map: &Arc<FileMap>, offset: usize, len: usize) -> Option<F32Data> {
        let bytes = len.checked_mul(4)?;
        let span = map.bytes().get(offset..offset.checked_add(bytes)?)?;
        let aligned = span.as_ptr().align_offset(std::mem::align_of::<f32>()) == 0;
        (aligned && cfg!(target_endian = "little")).then(|| {
            F32Data(Repr::Mapped {
                map: Arc::clone(map),
                offset,
                len,
            })
        })
    }

    /// Whether the values are read in place from a mapped file.
    pub fn is_mapped(&self) -> bool {
        !matches!(self.0, Repr::Owned(_))
    }

    /// Lets the OS drop this view's pages from the process's resident memory now (on
    /// Linux): for values that were consumed (packed, folded, uploaded) and will not be
    /// read again soon. They stay readable: a later read faults them back in from the file.
    /// Pages shared with a neighbouring tensor go too and fault back in the same way.
    /// Does nothing for owned data, which is freed when its last clone drops.
    pub fn release_pages(&self) {
        #[cfg(unix)]
        if let Repr::Mapped { map, offset, len } = &self.0 {
            map.release(*offset..*offset + *len * 4);
        }
    }
}

impl Deref for F32Data {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &self.0 {
            Repr::Owned(data) => data,
            #[cfg(unix)]
            Repr::Mapped { map, offset, len } => {
                let bytes = &map.bytes()[*offset..*offset + *len * 4];
                // SAFETY: `mapped` checked that these bytes lie inside the map and start
                // 4-byte aligned, and that the host is little-endian like the file; any
                // bit pattern is a valid f32. The slice borrows `self`, which keeps the map.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), *len) }
            }
        }
    }
}

impl<'a> IntoIterator for &'a F32Data {
    type Item = &'a f32;
    type IntoIter = std::slice::Iter<'a, f32>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl AsRef<[f32]> for F32Data {
    fn as_ref(&self) -> &[f32] {
        self
    }
}

impl Default for F32Data {
    /// No values.
    fn default() -> F32Data {
        F32Data(Repr::Owned(Arc::from([])))
    }
}

impl From<Vec<f32>> for F32Data {
    fn from(data: Vec<f32>) -> F32Data {
        F32Data(Repr::Owned(Arc::from(data)))
    }
}

impl From<Arc<[f32]>> for F32Data {
    fn from(data: Arc<[f32]>) -> F32Data {
        F32Data(Repr::Owned(data))
    }
}

impl From<&[f32]> for F32Data {
    fn from(data: &[f32]) -> F32Data {
        F32Data(Repr::Owned(Arc::from(data)))
    }
}

/// Equal values, as `[f32]` compares them (NaN is unequal to itself).
impl PartialEq for F32Data {
    fn eq(&self, other: &F32Data) -> bool {
        self[..] == other[..]
    }
}

/// As a `[f32]` prints.
impl std::fmt::Debug for F32Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        <[f32] as std::fmt::Debug>::fmt(self, f)
    }
}
