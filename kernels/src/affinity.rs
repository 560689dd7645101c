//! Pinning threads to cores, for callers that want a steadier latency tail: a pinned
//! thread is never migrated, so its caches stay warm and it never waits for a core the
//! scheduler would rather give it later. Linux only (sched_setaffinity); elsewhere the
//! calls report that they cannot pin.

/// Why a thread could not be pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot pin a thread to core {core}: {reason}")]
pub struct PinError {
    /// The core it was to be pinned to.
    pub core: usize,
    /// Why the OS refused, or why this platform cannot pin.
    pub reason: String,
}

/// Cores this process may run on, in order (its affinity mask at the time of the call).
pub fn allowed_cores() -> Vec<usize> {
    imp::allowed_cores()
}

/// Pins the calling thread to `core` (an index into [`allowed_cores`]'s numbering, i.e.
/// the OS's CPU number).
pub fn pin_current_thread(core: usize) -> Result<(), PinError> {
    imp::pin(0, core)
}

/// Pins the thread with kernel thread id `tid` (0: the caller) to `core`.
pub(crate) fn pin_thread(tid: i32, core: usize) -> Result<(), PinError> {
    imp::pin(tid, core)
}

/// The calling thread's kernel thread id, for [`pin_thread`] from another thread.
pub(crate) fn current_tid() -> i32 {
    imp::tid()
}

#[cfg(target_os = "linux")]
mod imp {
    use super::PinError;

    pub fn allowed_cores() -> Vec<usize> {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: set is a valid, writable cpu_set_t of `size` bytes.
        if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: i < CPU_SETSIZE, the set's capacity.
            .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
            .collect()
    }

    pub fn pin(tid: i32, core: usize) -> Result<(), PinError> {
        let fail = |reason: String| PinError { core, reason };
        if core >= libc::CPU_SETSIZE as usize {
            return Err(fail(format!(
                "past the {} cores Linux can name",
                libc::CPU_SETSIZE
            )));
        }
        // SAFETY: as above; CPU_SET stays inside the set (core < CPU_SETSIZE).
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(core, &mut set) };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: set is a valid cpu_set_t of `size` bytes; tid 0 is the calling thread.
        match unsafe { libc::sched_setaffinity(tid, size, &set) } {
            0 => Ok(()),
            _ => Err(fail(std::io::Error::last_os_error().to_string())),
        }
    }

    pub fn tid() -> i32 {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::PinError;

    pub fn allowed_cores() -> Vec<usize> {
        Vec::new()
    }

    pub fn pin(_tid: i32, core: usize) -> Result<(), PinError> {
        Err(PinError {
            core,
            reason: "thread pinning is only implemented on Linux".into(),
        })
    }

    pub fn tid() -> i32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_the_caller_to_an_allowed_core_and_refuses_an_impossible_one() {
        let cores = allowed_cores();
        if cfg!(target_os = "linux") {
            assert!(!cores.is_empty());
        }
        std::thread::spawn(move || {
            if let Some(&last) = cores.last() {
                pin_current_thread(last).unwrap();
                assert_eq!(allowed_cores(), [last]);
            }
            let e = pin_current_thread(1 << 20).unwrap_err();
            assert_eq!(e.core, 1 << 20);
        })
        .join()
        .unwrap();
    }
}
