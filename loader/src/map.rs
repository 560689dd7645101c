//! A read-only memory map of a whole model file (unix), so that weights are read in place
//! instead of copied: a page of the file is resident only while it is touched, and
//! [`FileMap::release`] hands touched pages back to the OS once their values have been
//! consumed (packed, folded). Clean file-backed pages cost no swap and no copy: read again,
//! they fault back in from the page cache.
//!
//! The one failure a map adds: a file truncated on disk while it is mapped kills the reader
//! with SIGBUS when it touches a page past the new end. Every size is validated against
//! the length the file had when it was mapped, before any data page is read, so a file
//! that was short or corrupt to begin with is a [`crate::LoadError`] as before; only a
//! truncation racing the load or a later session build remains. `write_tensors` and the
//! Python exporter replace a file by renaming a new one over it, which leaves an existing
//! map on the old bytes; `Model::from_bytes` (read the file yourself) avoids maps entirely.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;

/// A `PROT_READ`, `MAP_SHARED` map of `len > 0` bytes of a file, unmapped on drop.
pub(crate) struct FileMap {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the map is read-only and never remapped while it lives; reading it from several
// threads at once is reading shared immutable memory.
unsafe impl Send for FileMap {}
// SAFETY: as for Send: `&FileMap` only gives out reads.
unsafe impl Sync for FileMap {}

impl FileMap {
    /// Maps the first `len` bytes of `file` (its length when checked); `len` must be > 0.
    pub(crate) fn new(file: &File, len: usize) -> io::Result<FileMap> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map 0 bytes",
            ));
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr null) of a file descriptor that
        // is open for reading; the result is checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(FileMap {
            ptr: ptr.cast::<u8>().cast_const(),
            len,
        })
    }

    /// The whole file as bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives. Another
        // process may still write the file (module doc): f32 and u8 have no invalid bit
        // patterns, so that changes values, never memory safety.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Drops the pages overlapping `bytes` (a range of [`FileMap::bytes`]) from this
    /// process's resident set: they stay mapped and readable, and a later read faults
    /// them back in from the file. Rounded outwards to whole pages: a neighbour sharing an
    /// edge page only faults it back in. Linux and Android; elsewhere it does nothing.
    pub(crate) fn release(&self, bytes: std::ops::Range<usize>) {
        let (start, end) = (bytes.start.min(self.len), bytes.end.min(self.len));
        if start >= end {
            return;
        }
        release_pages(self.ptr, start, end, self.len);
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn release_pages(base: *const u8, start: usize, end: usize, len: usize) {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let first = start - start % page;
    // The map itself ends on a page boundary: rounding up past `len` stays inside it.
    let last = end.next_multiple_of(page).min(len.next_multiple_of(page));
    // SAFETY: [first, last) lies inside this map (the base is page-aligned and the map
    // covers whole pages up to len rounded up). MADV_DONTNEED on a read-only shared file
    // mapping only drops page-table entries: the contents stay those of the file, read
    // again on the next touch. The result is ignored: the advice is an optimisation.
    unsafe {
        libc::madvise(
            base.add(first).cast_mut().cast::<libc::c_void>(),
            last - first,
            libc::MADV_DONTNEED,
        );
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn release_pages(_base: *const u8, _start: usize, _end: usize, _len: usize) {}

impl Drop for FileMap {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are the mapping made in `new`, unmapped only here; no
        // slice into it outlives `self` (every view holds an `Arc<FileMap>`).
        unsafe {
            libc::munmap(self.ptr.cast_mut().cast::<libc::c_void>(), self.len);
        }
    }
}

impl std::fmt::Debug for FileMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileMap({} bytes)", self.len)
    }
}
