//! NVRTC itself: which library was loaded, its version, the architectures it can emit,
//! and one compilation to CUBIN or PTX with ptxas's resource report.
//!
//! cudarc's `compile_ptx_with_opts` returns PTX only, and PTX is JIT-compiled by the
//! driver, which refuses PTX newer than itself (NVRTC 13.2 emits PTX ISA 9.2; a CUDA
//! 13.0 driver takes up to 9.0, and refuses every module). A CUBIN for the device's exact
//! architecture needs no driver JIT, so that is what Kestrel compiles, through the raw
//! NVRTC calls here; PTX is left for a device NVRTC cannot emit code for.

use super::CudaError;
use cudarc::nvrtc::{result, sys};
use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;

/// What NVRTC hands back for a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// Machine code for one real architecture (`sm_90`): loaded as it is.
    Cubin,
    /// PTX for a virtual architecture (`compute_90`): the driver JIT-compiles it, and only
    /// if the PTX ISA is not newer than the driver.
    Ptx,
}

impl ImageKind {
    /// "CUBIN" or "PTX", for messages and cache keys.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Cubin => "CUBIN",
            ImageKind::Ptx => "PTX",
        }
    }
}

/// What a module is compiled for: the image kind and NVRTC's `--gpu-architecture`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// CUBIN or PTX.
    pub kind: ImageKind,
    /// "sm_90" for CUBIN, "compute_89" for PTX.
    pub arch: String,
}

impl Target {
    /// CUBIN for `arch` ("sm_90") when NVRTC lists it in `supported` (its
    /// `nvrtcGetSupportedArchs`); else PTX for the newest virtual architecture NVRTC has
    /// that is not newer than the device, which the driver then JIT-compiles.
    pub fn choose(arch: &str, supported: &[i32]) -> Result<Target, String> {
        let number: i32 = arch
            .strip_prefix("sm_")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("\"{arch}\" is not an architecture of the form sm_XY"))?;
        if supported.contains(&number) {
            return Ok(Target {
                kind: ImageKind::Cubin,
                arch: arch.to_string(),
            });
        }
        match supported.iter().filter(|&&s| s <= number).max() {
            Some(best) => Ok(Target {
                kind: ImageKind::Ptx,
                arch: format!("compute_{best}"),
            }),
            None => Err(format!(
                "this NVRTC compiles for {} only, nothing at or below {arch}",
                archs(supported)
            )),
        }
    }
}

fn archs(list: &[i32]) -> String {
    let names: Vec<String> = list.iter().map(|a| format!("sm_{a}")).collect();
    names.join(", ")
}

/// The loaded NVRTC library: its version and what it can compile for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nvrtc {
    /// (major, minor), e.g. (13, 0).
    pub version: (i32, i32),
    /// The file the dynamic loader found, e.g. ".../nvidia/cu13/lib/libnvrtc.so.13".
    pub library: Option<PathBuf>,
    /// Real architectures NVRTC can emit CUBIN for, as numbers (75, 80, 90, ...).
    pub archs: Vec<i32>,
}

impl Nvrtc {
    /// Loads NVRTC (once per process) and reads its version and architectures;
    /// `CudaError::Unavailable` when no library loads.
    pub fn open() -> Result<Nvrtc, CudaError> {
        // SAFETY: only tries to dlopen the candidate library names; cudarc panics on the
        // first NVRTC call when none loads, so this probe must come first.
        if !unsafe { sys::is_culib_present() } {
            return Err(CudaError::Unavailable(
                "NVRTC library (libnvrtc.so.13) not found: install the CUDA toolkit or \
                 `pip install nvidia-cuda-nvrtc`, and put its lib folder on LD_LIBRARY_PATH"
                    .into(),
            ));
        }
        let failed = |what: &str, e: result::NvrtcError| {
            CudaError::Unavailable(format!("NVRTC {what} query failed: {e:?}"))
        };
        let (mut major, mut minor) = (0, 0);
        // SAFETY: the library is present (probed above); each call writes through
        // pointers valid for it, the architecture list sized by the count NVRTC gave.
        let archs = unsafe {
            sys::nvrtcVersion(&mut major, &mut minor)
                .result()
                .map_err(|e| failed("version", e))?;
            let mut count = 0;
            sys::nvrtcGetNumSupportedArchs(&mut count)
                .result()
                .map_err(|e| failed("architecture count", e))?;
            let mut archs = vec![0; count.max(0) as usize];
            if !archs.is_empty() {
                sys::nvrtcGetSupportedArchs(archs.as_mut_ptr())
                    .result()
                    .map_err(|e| failed("architecture list", e))?;
            }
            archs
        };
        Ok(Nvrtc {
            version: (major, minor),
            library: library_path(),
            archs,
        })
    }

    /// "13.0 (/path/libnvrtc.so.13)".
    pub fn describe(&self) -> String {
        let (major, minor) = self.version;
        match &self.library {
            Some(path) => format!("{major}.{minor} ({})", path.display()),
            None => format!("{major}.{minor}"),
        }
    }
}

/// The path of the libnvrtc the loader found, from the address of one of its functions.
fn library_path() -> Option<PathBuf> {
    // SAFETY: the library is loaded (the caller probed it); the symbol is only used for
    // its address, which dladdr maps back to the file it came from.
    unsafe {
        let lib = sys::culib();
        let symbol = lib.get::<unsafe extern "C" fn()>(b"nvrtcVersion\0").ok()?;
        let mut info: libc::Dl_info = std::mem::zeroed();
        let address = *symbol as *const libc::c_void;
        if libc::dladdr(address, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        let name = CStr::from_ptr(info.dli_fname).to_str().ok()?;
        Some(std::fs::canonicalize(name).unwrap_or_else(|_| PathBuf::from(name)))
    }
}

/// One module compiled by NVRTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The CUBIN, or the PTX text.
    pub image: Vec<u8>,
    /// ptxas's `-v` report (empty for PTX, which ptxas has not seen yet).
    pub ptxas: String,
}

/// Compiles `text` for `target` with `options` (which must not name the architecture).
/// `Err` holds NVRTC's log, or what failed.
pub fn compile(
    text: &str,
    name: &str,
    target: &Target,
    options: &[&str],
) -> Result<Compiled, String> {
    let source = CString::new(text).map_err(|_| "the source contains a NUL byte".to_string())?;
    let name = CString::new(name).map_err(|_| "the name contains a NUL byte".to_string())?;
    let mut all: Vec<String> = vec![format!("--gpu-architecture={}", target.arch)];
    all.extend(options.iter().map(|o| o.to_string()));
    if target.kind == ImageKind::Cubin {
        // ptxas's registers, shared memory, stack and spills per kernel, into the log.
        all.push("--ptxas-options=-v".into());
    }
    let program = Program::create(&source, &name)?;
    // SAFETY: the program is alive until `program` drops, after the last use here.
    let compiled = unsafe { result::compile_program(program.0, &all) };
    let log = program.log();
    if let Err(e) = compiled {
        return Err(match log.trim().is_empty() {
            true => format!("{e:?}"),
            false => log,
        });
    }
    let image = match target.kind {
        ImageKind::Cubin => program.cubin(),
        ImageKind::Ptx => program.ptx(),
    }
    .map_err(|e| {
        format!(
            "NVRTC compiled, but reading its {}: {e:?}",
            target.kind.as_str()
        )
    })?;
    Ok(Compiled {
        image,
        // The same module always gives the same report: ptxas's timing line is dropped.
        ptxas: match target.kind {
            ImageKind::Cubin => log
                .lines()
                .filter(|l| !l.contains("Compile time"))
                .map(|l| format!("{l}\n"))
                .collect(),
            ImageKind::Ptx => String::new(),
        },
    })
}

/// An NVRTC program, destroyed on drop. NVRTC may keep pointers to the source and name it
/// was created from: `compile` declares them before the program, so they outlive it.
struct Program(sys::nvrtcProgram);

impl Program {
    fn create(source: &CStr, name: &CStr) -> Result<Program, String> {
        result::create_program(source, Some(name))
            .map(Program)
            .map_err(|e| format!("nvrtcCreateProgram: {e:?}"))
    }

    fn log(&self) -> String {
        // SAFETY: self.0 is a live program.
        match unsafe { result::get_program_log(self.0) } {
            Ok(raw) => c_text(&raw),
            Err(e) => format!("(no log: {e:?})"),
        }
    }

    fn ptx(&self) -> Result<Vec<u8>, result::NvrtcError> {
        // SAFETY: self.0 is a live, compiled program.
        let raw = unsafe { result::get_ptx(self.0) }?;
        Ok(c_text(&raw).into_bytes())
    }

    fn cubin(&self) -> Result<Vec<u8>, result::NvrtcError> {
        let mut size = 0usize;
        // SAFETY: self.0 is a live, compiled program; the buffer has the size NVRTC gave.
        unsafe {
            sys::nvrtcGetCUBINSize(self.0, &mut size).result()?;
            let mut image = vec![0u8; size];
            sys::nvrtcGetCUBIN(self.0, image.as_mut_ptr().cast::<c_char>()).result()?;
            Ok(image)
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: self.0 is live and destroyed only here; an error leaves nothing to do.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

/// A NUL-terminated C buffer as text (lossy).
fn c_text(raw: &[c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What ptxas reports for one kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// The kernel's entry point.
    pub entry: String,
    /// Registers per thread.
    pub registers: u32,
    /// Static shared memory in bytes (dynamic shared memory is the launch's).
    pub shared_bytes: u32,
    /// Local-memory stack per thread in bytes.
    pub stack_bytes: u32,
    /// Bytes stored to local memory by register spills.
    pub spill_stores: u32,
    /// Bytes loaded back from register spills.
    pub spill_loads: u32,
}

/// Parses ptxas's `-v` report: one [`Resources`] per "Compiling entry function" line.
pub fn parse_ptxas(log: &str) -> Vec<Resources> {
    let mut all: Vec<Resources> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let entry = rest.split('\'').next().unwrap_or_default();
            all.push(Resources {
                entry: entry.to_string(),
                ..Resources::default()
            });
            continue;
        }
        let Some(current) = all.last_mut() else {
            continue;
        };
        // "Used 40 registers, used 1 barriers, 4096 bytes smem": each figure is the
        // number before its unit.
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        for (i, pair) in words.windows(2).enumerate() {
            let Ok(n) = pair[0].parse::<u32>() else {
                continue;
            };
            match (
                pair[1],
                words.get(i + 2).copied(),
                words.get(i + 3).copied(),
            ) {
                ("registers", ..) => current.registers = n,
                ("bytes", Some("smem"), _) => current.shared_bytes = n,
                ("bytes", Some("stack"), _) => current.stack_bytes = n,
                ("bytes", Some("spill"), Some("stores")) => current.spill_stores = n,
                ("bytes", Some("spill"), Some("loads")) => current.spill_loads = n,
                _ => {}
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubin_for_a_listed_arch_else_ptx_for_the_newest_below() {
        let listed = [75, 80, 86, 90, 100];
        let cubin = Target::choose("sm_90", &listed).unwrap();
        assert_eq!(
            (cubin.kind, cubin.arch.as_str()),
            (ImageKind::Cubin, "sm_90")
        );
        let ptx = Target::choose("sm_89", &listed).unwrap();
        assert_eq!(
            (ptx.kind, ptx.arch.as_str()),
            (ImageKind::Ptx, "compute_86")
        );
        let newer = Target::choose("sm_120", &listed).unwrap();
        assert_eq!(newer.arch, "compute_100");
        let err = Target::choose("sm_70", &listed).unwrap_err();
        assert!(err.contains("sm_75") && err.contains("sm_70"), "{err}");
        assert!(Target::choose("gfx90a", &listed).is_err());
    }

    #[test]
    fn ptxas_report_gives_each_kernels_resources() {
        // As NVRTC 13.0 logs it with --ptxas-options=-v (two kernels in one module).
        let log = "ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'k' for 'sm_90'
ptxas info    : Function properties for k
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 8 registers, used 1 barriers, 4096 bytes smem
ptxas info    : Compiling entry function 'big' for 'sm_90'
ptxas info    : Function properties for big
ptxas         .     24 bytes stack frame, 16 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 12292 bytes smem, 364 bytes cmem[0]
";
        let used = parse_ptxas(log);
        assert_eq!(
            used,
            vec![
                Resources {
                    entry: "k".into(),
                    registers: 8,
                    shared_bytes: 4096,
                    ..Resources::default()
                },
                Resources {
                    entry: "big".into(),
                    registers: 255,
                    shared_bytes: 12292,
                    stack_bytes: 24,
                    spill_stores: 16,
                    spill_loads: 12,
                },
            ]
        );
        assert!(parse_ptxas("").is_empty());
    }
}
