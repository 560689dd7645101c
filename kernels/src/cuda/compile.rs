//! NVRTC compilation of launches, cached in memory and on disk.
//!
//! Each module is compiled to a CUBIN for the device's exact architecture (`sm_90`),
//! which the driver loads without JIT-compiling anything; PTX only where this NVRTC
//! cannot emit that architecture (`nvrtc::Target::choose`). A module is keyed by a 64-bit
//! FNV-1a hash of everything that decides it: the module text (defines + source), the
//! NVRTC options, the target (kind and architecture) and NVRTC's version. NVRTC costs
//! ~35 ms warm and ~290 ms cold per module on the H100 host, and a ResNet session has a
//! few dozen distinct modules, so the disk cache turns the second session build from
//! seconds into milliseconds.

use super::nvrtc::{self, ImageKind, Nvrtc, Resources, Target};
use super::{CudaError, Launch};
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

/// One compiled module: what the driver loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// CUBIN or PTX.
    pub kind: ImageKind,
    /// The CUBIN, or the PTX text (no terminating NUL).
    pub image: Vec<u8>,
    /// ptxas's `-v` report for a CUBIN (see [`Module::resources`]); empty for PTX.
    pub ptxas: String,
}

impl Module {
    /// Registers, static shared memory, stack and spills of each kernel, as ptxas
    /// reported them (none for PTX: the driver's JIT decides those).
    pub fn resources(&self) -> Vec<Resources> {
        nvrtc::parse_ptxas(&self.ptxas)
    }
}

/// Compiles module texts for one device architecture, once per distinct text.
pub struct Compiler {
    /// The device's architecture, e.g. "sm_90".
    arch: String,
    target: Target,
    nvrtc: Nvrtc,
    cache_dir: Option<PathBuf>,
    memory: Mutex<HashMap<u64, Arc<Module>>>,
    /// NVRTC invocations actually made (not served from memory or disk).
    compiled: AtomicUsize,
}

impl Compiler {
    /// A compiler for a device of architecture `arch` (e.g. "sm_90"); `cache_dir` None
    /// keeps the cache in memory only. Fails with `CudaError::Unavailable` when the NVRTC
    /// library cannot be loaded or cannot compile for `arch` at all.
    pub fn new(arch: &str, cache_dir: Option<PathBuf>) -> Result<Compiler, CudaError> {
        let nvrtc = Nvrtc::open()?;
        let target = Target::choose(arch, &nvrtc.archs)
            .map_err(|why| CudaError::Unavailable(format!("NVRTC {}: {why}", nvrtc.describe())))?;
        Ok(Compiler {
            arch: arch.to_string(),
            target,
            nvrtc,
            cache_dir,
            memory: Mutex::new(HashMap::new()),
            compiled: AtomicUsize::new(0),
        })
    }

    /// The device architecture this compiler was made for, e.g. "sm_90".
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// What the modules are compiled to: CUBIN for `arch`, or PTX as the fallback.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The NVRTC library in use: version, path, architectures.
    pub fn nvrtc(&self) -> &Nvrtc {
        &self.nvrtc
    }

    /// NVRTC's version as (major, minor), e.g. (13, 0).
    pub fn nvrtc_version(&self) -> (i32, i32) {
        self.nvrtc.version
    }

    /// How many modules this compiler has handed to NVRTC (cache hits not counted).
    pub fn compiled_count(&self) -> usize {
        self.compiled.load(Ordering::Relaxed)
    }

    /// Compiles every distinct module of `launches` not yet cached, on up to one thread
    /// per core, so the [`Compiler::module`] calls that follow find them in memory. NVRTC
    /// compiles distinct programs concurrently; a YOLO-style net has ~60 distinct modules
    /// at ~35-290 ms each, so a session build on a 16-core host waits for the slowest few
    /// instead of all of them in a row. The first error (in `launches` order) is returned.
    pub fn precompile<'a>(
        &self,
        launches: impl IntoIterator<Item = &'a Launch>,
    ) -> Result<(), CudaError> {
        let mut seen = std::collections::HashSet::new();
        let todo: Vec<&Launch> = launches
            .into_iter()
            .filter(|l| seen.insert(l.module_text()))
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = threads.min(todo.len());
        if threads <= 1 {
            return todo.iter().try_for_each(|l| self.module(l).map(drop));
        }
        let next = AtomicUsize::new(0);
        let mut errors: Vec<(usize, CudaError)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut errors = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(launch) = todo.get(i) else {
                                return errors;
                            };
                            if let Err(e) = self.module(launch) {
                                errors.push((i, e));
                            }
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        errors.sort_by_key(|(i, _)| *i);
        match errors.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// The compiled module of `launch`: from memory, else from the disk cache, else NVRTC.
    pub fn module(&self, launch: &Launch) -> Result<Arc<Module>, CudaError> {
        let text = launch.module_text();
        let key = self.key(&text);
        if let Some(module) = self.memory().get(&key) {
            return Ok(module.clone());
        }
        let extension = match self.target.kind {
            ImageKind::Cubin => "cubin",
            ImageKind::Ptx => "ptx",
        };
        let path = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{key:016x}.{extension}")));
        let cached = path
            .as_deref()
            .and_then(|p| read_cached(p, key, self.target.kind));
        let module = Arc::new(match cached {
            Some(module) => module,
            None => {
                let module = self.compile(launch, &text)?;
                if let (Some(dir), Some(path)) = (&self.cache_dir, &path) {
                    write_cached(dir, path, key, &module);
                }
                module
            }
        });
        self.memory().insert(key, module.clone());
        Ok(module)
    }

    fn key(&self, text: &str) -> u64 {
        let (major, minor) = self.nvrtc.version;
        let target = format!(
            "{} {} nvrtc {major}.{minor}",
            self.target.kind.as_str(),
            self.target.arch
        );
        let mut keyed = Vec::with_capacity(text.len() + 128);
        for part in [text, &OPTIONS.join(" "), &target] {
            keyed.extend_from_slice(part.as_bytes());
            keyed.push(0);
        }
        fnv1a64(&keyed)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Module>>> {
        // A thread that panicked while holding the lock left the map whole: each insert
        // is one call.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn compile(&self, launch: &Launch, text: &str) -> Result<Module, CudaError> {
        self.compiled.fetch_add(1, Ordering::Relaxed);
        let compiled =
            nvrtc::compile(text, launch.source.name, &self.target, &OPTIONS).map_err(|log| {
                CudaError::Compile {
                    source_name: launch.source.name.to_string(),
                    entry: launch.entry.to_string(),
                    log: format!(
                        "{}\n(defines: {}; NVRTC {}, {} for {})",
                        log.trim_end(),
                        defines(launch),
                        self.nvrtc.describe(),
                        self.target.kind.as_str(),
                        self.target.arch
                    ),
                }
            })?;
        Ok(Module {
            kind: self.target.kind,
            image: compiled.image,
            ptxas: compiled.ptxas,
        })
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

/// A cache file is a header line naming its kind, key, body hash and ptxas report
/// length, then the report, then the image. Anything else (truncated, corrupted, another
/// key's or kind's) reads as a miss.
fn header(key: u64, module: &Module) -> String {
    format!(
        "kestrel {} {key:016x} {:016x} {}\n",
        module.kind.as_str(),
        fnv1a64(&body(module)),
        module.ptxas.len()
    )
}

fn body(module: &Module) -> Vec<u8> {
    [module.ptxas.as_bytes(), &module.image].concat()
}

fn read_cached(path: &Path, key: u64, kind: ImageKind) -> Option<Module> {
    let file = std::fs::read(path).ok()?;
    let newline = file.iter().position(|&b| b == b'\n')?;
    let (first, rest) = (
        std::str::from_utf8(&file[..newline]).ok()?,
        &file[newline + 1..],
    );
    let report_len: usize = first.rsplit(' ').next()?.parse().ok()?;
    if report_len > rest.len() {
        return None;
    }
    let module = Module {
        kind,
        ptxas: String::from_utf8(rest[..report_len].to_vec()).ok()?,
        image: rest[report_len..].to_vec(),
    };
    (format!("{first}\n") == header(key, &module)).then_some(module)
}

/// Best effort: a disk error only means the next process compiles again. The file is
/// written under a temporary name and renamed, so no reader ever sees half of it.
fn write_cached(dir: &Path, path: &Path, key: u64, module: &Module) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let tmp = dir.join(format!(
        ".{key:016x}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = [header(key, module).as_bytes(), &body(module)].concat();
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, file))
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
