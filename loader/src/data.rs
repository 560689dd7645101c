//! [`F32Data`]: a tensor's f32 values, owned, read in place from a mapped file, or
//! scaled from another's on first read.

use std::ops::Deref;
use std::panic::UnwindSafe;
use std::sync::{Arc, LazyLock};

#[cfg(unix)]
use crate::map::FileMap;

/// A tensor's f32 values: owned, a view into a memory-mapped model file (the file's F32
/// tensors at 4-byte-aligned offsets, on little-endian unix hosts), or another tensor's
/// rows scaled on first read ([`F32Data::scaled`]). Cheap to clone (it shares the buffer,
/// the map or the scaling) and reads as a `[f32]` in every case. A mapped view keeps the map alive;
/// its pages are resident only while touched, and [`F32Data::release_pages`] hands them
/// back once the values have been consumed.
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
    Scaled(Arc<Scaled>),
}

/// What makes a scaled tensor's values. Unwind-safe, so that `F32Data` is.
type Scale = Box<dyn FnOnce() -> Box<[f32]> + Send + UnwindSafe>;

/// `base` with its rows scaled by `factors`, made by the first read and kept until the
/// last clone drops.
struct Scaled {
    base: F32Data,
    factors: Arc<[f32]>,
    values: LazyLock<Box<[f32]>, Scale>,
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

    /// `base`'s values with row `r` times `factors[r]`, the rows being `base.len() /
    /// factors.len()` values each: a batch norm folded into a conv's weights, whose
    /// rows are its output channels. Nothing is computed here: the values are made on the
    /// first read, as `base[k] * factors[r]` in f32, and kept from then on until the last
    /// clone drops. A session reads each conv's weights once, to pack them, and drops them
    /// after, so one folded copy exists at a time rather than all of them at once; and what
    /// reads the values only rarely can keep [`F32Data::scaled_parts`] instead (the mapped
    /// original and the factors), which cost no memory until read. With no factors the
    /// values are `base`'s; should `factors.len()` not divide `base.len()`, the values past
    /// the last whole row take the last factor.
    pub fn scaled(base: F32Data, factors: Arc<[f32]>) -> F32Data {
        let (source, by) = (base.clone(), Arc::clone(&factors));
        let scale: Scale = Box::new(move || {
            let per_row = (source.len() / by.len().max(1)).max(1);
            let values = source.iter().enumerate().map(|(k, &v)| {
                let r = (k / per_row).min(by.len().saturating_sub(1));
                by.get(r).map_or(v, |&s| v * s)
            });
            let values = values.collect();
            // Read once, here: the file's pages of the original can go.
            source.release_pages();
            values
        });
        F32Data(Repr::Scaled(Arc::new(Scaled {
            base,
            factors,
            values: LazyLock::new(scale),
        })))
    }

    /// For values made by [`F32Data::scaled`], the original and the factors: what they are
    /// computed from, held without computing them.
    pub fn scaled_parts(&self) -> Option<(&F32Data, &Arc<[f32]>)> {
        match &self.0 {
            Repr::Scaled(s) => Some((&s.base, &s.factors)),
            _ => None,
        }
    }

    /// The number of values, known without reading (or scaling) them.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Owned(data) => data.len(),
            #[cfg(unix)]
            Repr::Mapped { len, .. } => *len,
            Repr::Scaled(s) => s.base.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the values are read in place from a mapped file.
    pub fn is_mapped(&self) -> bool {
        #[cfg(unix)]
        if let Repr::Mapped { .. } = self.0 {
            return true;
        }
        false
    }

    /// Lets the OS drop this view's pages from the process's resident memory now (on
    /// Linux): for values that were consumed (packed, folded, uploaded) and will not be
    /// read again soon. They stay readable: a later read faults them back in from the file.
    /// Pages shared with a neighbouring tensor go too and fault back in the same way.
    /// Does nothing for owned or scaled values, freed when their last clone drops.
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
            Repr::Scaled(s) => &s.values,
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

#[cfg(test)]
mod tests {
    use super::F32Data;
    use std::panic::{RefUnwindSafe, UnwindSafe};
    use std::sync::Arc;

    /// What a model's weights must be for `Model` to be `Send + Sync` and a kernel that
    /// holds them (Winograd's exact path) to stay unwind-safe.
    #[test]
    fn f32_data_is_send_sync_and_unwind_safe() {
        fn check<T: Send + Sync + UnwindSafe + RefUnwindSafe>() {}
        check::<F32Data>();
    }

    #[test]
    fn scaled_rows_are_the_originals_times_their_factor() {
        // base: (3 rows, 2 values)
        let base = F32Data::from(vec![1.0, -2.0, 3.0, 4.5, -0.0, f32::INFINITY]);
        let factors: Arc<[f32]> = Arc::from([2.0, 0.5, 0.0]);
        let scaled = F32Data::scaled(base.clone(), Arc::clone(&factors));
        assert_eq!(scaled.len(), 6);
        let (original, by) = scaled.scaled_parts().unwrap();
        assert!(original == &base && by == &factors);
        let want = [2.0, -4.0, 1.5, 2.25, -0.0, f32::NAN];
        for (k, (got, want)) in scaled.iter().zip(want).enumerate() {
            let same = got.to_bits() == want.to_bits() || got.is_nan() && want.is_nan();
            assert!(same, "value {k}: {got} != {want}");
        }
        assert!(base.scaled_parts().is_none());
        // Scaling what is scaled already scales the scaled values.
        let twice = F32Data::scaled(scaled, Arc::from([10.0, 1.0, 1.0]));
        assert_eq!(&twice[..4], &[20.0, -40.0, 1.5, 2.25]);
    }

    #[test]
    fn scaled_with_factors_that_do_not_fit_stays_total() {
        let base = F32Data::from(vec![1.0, 2.0, 3.0]);
        assert_eq!(
            &F32Data::scaled(base.clone(), Arc::from([]))[..],
            &[1.0, 2.0, 3.0]
        );
        // Rows of 3 / 2 = 1 value: the third value takes the last factor.
        let odd = F32Data::scaled(base.clone(), Arc::from([2.0, 3.0]));
        assert_eq!(&odd[..], &[2.0, 6.0, 9.0]);
        let empty = F32Data::scaled(F32Data::default(), Arc::from([2.0]));
        assert!(empty.is_empty() && empty[..].is_empty());
    }
}
