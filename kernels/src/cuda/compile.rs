//! NVRTC compilation of launches, cached in memory and on disk.
//!
//! A module's PTX is keyed by a 64-bit FNV-1a hash of everything that decides it: the
//! module text (defines + source), the NVRTC options, the architecture and NVRTC's
//! version. NVRTC costs ~35 ms warm and ~290 ms cold per module on the H100 host, and a
//! ResNet session has a few dozen distinct modules, so the disk cache turns the second
//! session build from seconds into milliseconds.

use super::{CudaError, Launch};
use cudarc::nvrtc::{CompileError, CompileOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// IEEE fp32 everywhere (no `--use_fast_math`): the kernels are checked against the CPU
/// at rtol 1e-5. Contracting `a * b + c` into one FMA is allowed (`--fmad=true`): it only
/// rounds less.
const OPTIONS: [&str; 4] = [
    "--fmad=true",
    "--prec-div=true",
    "--prec-sqrt=true",
    "--ftz=false",
];

/// Compiles module texts to PTX for one architecture, once per distinct text.
pub struct Compiler {
    arch: String,
    cache_dir: Option<PathBuf>,
    /// NVRTC's (major, minor): a new NVRTC must not reuse an old one's PTX.
    version: (i32, i32),
    memory: Mutex<HashMap<u64, Arc<str>>>,
    /// NVRTC invocations actually made (not served from memory or disk).
    compiled: AtomicUsize,
}

impl Compiler {
    /// A compiler for `arch` (e.g. "sm_90"); `cache_dir` None keeps the cache in memory only.
    /// Fails with `CudaError::Unavailable` when the NVRTC library cannot be loaded.
    pub fn new(arch: &str, cache_dir: Option<PathBuf>) -> Result<Compiler, CudaError> {
        // SAFETY: only tries to dlopen the candidate library names; cudarc panics on the
        // first NVRTC call when none loads, so this probe must come first.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(CudaError::Unavailable(
                "NVRTC library (libnvrtc.so.13) not found: install the CUDA toolkit or \
                 `pip install nvidia-cuda-nvrtc`, and put its lib folder on LD_LIBRARY_PATH"
                    .into(),
            ));
        }
        let (mut major, mut minor) = (0, 0);
        // SAFETY: the library is present (probed above); nvrtcVersion writes two ints
        // through pointers that are valid for the call.
        unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) }
            .result()
            .map_err(|e| CudaError::Unavailable(format!("NVRTC version query failed: {e:?}")))?;
        Ok(Compiler {
            arch: arch.to_string(),
            cache_dir,
            version: (major, minor),
            memory: Mutex::new(HashMap::new()),
            compiled: AtomicUsize::new(0),
        })
    }

    /// The architecture this compiler targets, e.g. "sm_90".
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// NVRTC's version as (major, minor), e.g. (13, 0).
    pub fn nvrtc_version(&self) -> (i32, i32) {
        self.version
    }

    /// How many modules this compiler has handed to NVRTC (cache hits not counted).
    pub fn compiled_count(&self) -> usize {
        self.compiled.load(Ordering::Relaxed)
    }

    /// The PTX of `launch`'s module: from memory, else from the disk cache, else NVRTC.
    pub fn ptx(&self, launch: &Launch) -> Result<Arc<str>, CudaError> {
        let text = launch.module_text();
        let options = self.options();
        let key = self.key(&text, &options);
        if let Some(ptx) = self.memory().get(&key) {
            return Ok(ptx.clone());
        }
        let path = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{key:016x}.ptx")));
        let ptx: Arc<str> = match path.as_deref().and_then(|p| read_cached(p, key)) {
            Some(ptx) => ptx.into(),
            None => {
                let ptx = self.nvrtc(launch, text, options)?;
                if let (Some(dir), Some(path)) = (&self.cache_dir, &path) {
                    write_cached(dir, path, key, &ptx);
                }
                ptx.into()
            }
        };
        self.memory().insert(key, ptx.clone());
        Ok(ptx)
    }

    fn options(&self) -> Vec<String> {
        // The same flag `CompileOptions::arch` would add; passed as a string because
        // that field wants a &'static str.
        let mut options = vec![format!("--gpu-architecture={}", self.arch)];
        options.extend(OPTIONS.iter().map(|o| o.to_string()));
        options
    }

    fn key(&self, text: &str, options: &[String]) -> u64 {
        let mut keyed = Vec::with_capacity(text.len() + 128);
        for part in [text, &options.join(" "), &self.arch] {
            keyed.extend_from_slice(part.as_bytes());
            keyed.push(0);
        }
        keyed.extend_from_slice(format!("nvrtc {}.{}", self.version.0, self.version.1).as_bytes());
        fnv1a64(&keyed)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<str>>> {
        // A thread that panicked while holding the lock left the map whole: each insert
        // is one call.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nvrtc(
        &self,
        launch: &Launch,
        text: String,
        options: Vec<String>,
    ) -> Result<String, CudaError> {
        let failed = |log: String| CudaError::Compile {
            source_name: launch.source.name.to_string(),
            entry: launch.entry.to_string(),
            log: format!("{}\n(defines: {})", log.trim_end(), defines(launch)),
        };
        // cudarc panics on an interior NUL; no real source has one.
        if text.contains('\0') {
            return Err(failed("the source contains a NUL byte".into()));
        }
        let opts = CompileOptions {
            options,
            name: Some(launch.source.name.to_string()),
            ..Default::default()
        };
        self.compiled.fetch_add(1, Ordering::Relaxed);
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(text, opts).map_err(|e| match e {
            CompileError::CompileError { log, .. } => failed(log.to_string_lossy().into_owned()),
            other => failed(format!("{other:?}")),
        })?;
        let bytes = ptx.as_bytes().unwrap_or_default();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8(bytes[..end].to_vec())
            .map_err(|_| failed("NVRTC returned PTX that is not UTF-8".into()))
    }
}

/// `NAME=value` of every define of `launch`, for error messages.
fn defines(launch: &Launch) -> String {
    let list: Vec<String> = launch
        .defines
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(" ")
    }
}

/// A cache file is a header naming its key and its body's hash, then the PTX. Anything
/// else (truncated, corrupted, another key's) reads as a miss.
fn header(key: u64, ptx: &str) -> String {
    format!(
        "// kestrel ptx {key:016x} {:016x}\n",
        fnv1a64(ptx.as_bytes())
    )
}

fn read_cached(path: &Path, key: u64) -> Option<String> {
    let file = std::fs::read_to_string(path).ok()?;
    let (first, ptx) = file.split_once('\n')?;
    (format!("{first}\n") == header(key, ptx)).then(|| ptx.to_string())
}

/// Best effort: a disk error only means the next process compiles again. The file is
/// written under a temporary name and renamed, so no reader ever sees half of it.
fn write_cached(dir: &Path, path: &Path, key: u64, ptx: &str) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let tmp = dir.join(format!(
        ".{key:016x}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, format!("{}{ptx}", header(key, ptx))))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Where compiled modules are kept between processes: `$KESTREL_CUDA_CACHE`, else
/// `$XDG_CACHE_HOME/kestrel/cuda`, else `$HOME/.cache/kestrel/cuda`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("KESTREL_CUDA_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("kestrel/cuda")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/kestrel/cuda")))
}

/// 64-bit FNV-1a: a hash that is the same in every build (std's `DefaultHasher` is not
/// promised to be), so cache keys written by one binary are found by the next.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
