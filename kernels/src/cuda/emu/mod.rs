//! Runs CUDA launches on the CPU: the `.cu` sources compiled with g++ against `emu.h`.
//!
//! One C++ program per [`run`](crate::cuda::emu::run) call, whatever the number of cases: each distinct module
//! text goes in its own `namespace emu_mN` (its `#define`s before, `#undef`s after,
//! `extern "C"` stripped so equal entry names in different namespaces do not collide),
//! each distinct (module, entry) gets a wrapper `emu_kN(float** args)`, and `main` hands
//! those to `emu::run_cases`, which reads the cases (buffer sizes, launches) from a
//! manifest. The program text therefore depends only on the kernels, not on the data, and
//! the built executable is cached under `$TMPDIR/kestrel-emu-cache/<hash>`: rerunning a
//! test skips g++ (0.5 s for the 8 modules of a conv2d test at -O1; running them 0.06 s).
//!
//! How the CUDA threads of a block run (fibers, barriers, shuffles, guard pages): `emu.h`.

use super::compile::fnv1a64;
use super::{Arg, CudaOp, Launch};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod tail;
#[cfg(test)]
mod tests;
pub use tail::{run_tail, Window};

/// The emulator's headers, written beside each generated program: emu.h includes the others.
const HEADERS: [(&str, &str); 3] = [
    ("emu.h", include_str!("emu.h")),
    ("emu_fibers.h", include_str!("emu_fibers.h")),
    ("emu_run.h", include_str!("emu_run.h")),
];
const GXX: &str = "g++";
const GXX_FLAGS: [&str; 5] = [
    "-std=c++20",
    "-O1",
    "-pthread",
    "-w",
    "-fno-strict-aliasing",
];
/// An emulated program running longer than this is killed (a kernel that never ends).
const DEFAULT_TIMEOUT_S: u64 = 600;

/// One op to emulate with its inputs.
pub struct EmuCase<'a> {
    /// The op: its constants and launches.
    pub op: &'a CudaOp,
    /// Its inputs, in `Arg::Input` order.
    pub inputs: Vec<&'a [f32]>,
    /// Floats in its output.
    pub out_len: usize,
}

/// A sequence of launches over shared buffers, each pointer argument a view into one of
/// them: how a whole session plan runs on one arena (`buffers[0]`, say, with the
/// constants after it). The result is the final content of `buffers[result]`.
pub struct EmuRun<'a> {
    /// The buffers; the views of the launches point into them.
    pub buffers: Vec<&'a [f32]>,
    /// Each launch with one view per pointer argument.
    pub launches: Vec<(&'a Launch, Vec<View>)>,
    /// The buffer whose final content is the result.
    pub result: usize,
}

/// Where a pointer argument points: `offset` floats into buffer `buffer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Index into `EmuRun::buffers`.
    pub buffer: usize,
    /// Floats from that buffer's start.
    pub offset: usize,
}

/// What the generated program runs per case: buffers, launches with their views
/// (buffer -1 is the case's zeroed output buffer), and which buffer is the result.
struct Lowered<'a> {
    buffers: Vec<&'a [f32]>,
    out_len: usize,
    launches: Vec<LoweredLaunch<'a>>,
    /// -1: the output buffer.
    result: i64,
    /// 16 GiB of reserved address space around each buffer (see `run_tail`).
    wide: bool,
}

/// One launch of a [`Lowered`] case.
struct LoweredLaunch<'a> {
    launch: &'a Launch,
    /// Blocks before this one (x fastest) are skipped.
    first_block: u64,
    /// Per argument: (buffer, offset in floats), negative only in a wide case.
    views: Vec<(i64, i64)>,
}

impl Lowered<'_> {
    fn result_len(&self) -> usize {
        match self.result {
            r if r < 0 => self.out_len,
            r => self.buffers[r as usize].len(),
        }
    }
}

fn lower_case<'a>(c: usize, case: &EmuCase<'a>) -> Result<Lowered<'a>, String> {
    let mut launches = Vec::new();
    for (l, launch) in case.op.launches.iter().enumerate() {
        validate(c, l, case, &launch.args)?;
        let views = launch
            .args
            .iter()
            .map(|arg| match *arg {
                Arg::Input(i) => (i as i64, 0),
                Arg::Const(i) => ((case.inputs.len() + i) as i64, 0),
                Arg::Output => (-1, 0),
                Arg::Value(_) => unreachable!("validate refuses plan values"),
            })
            .collect();
        launches.push(LoweredLaunch {
            launch,
            first_block: 0,
            views,
        });
    }
    Ok(Lowered {
        buffers: case
            .inputs
            .iter()
            .copied()
            .chain(case.op.consts.iter().map(Vec::as_slice))
            .collect(),
        out_len: case.out_len,
        launches,
        result: -1,
        wide: false,
    })
}

/// Emulates `run`'s launches in order and returns the final `buffers[run.result]`.
/// Views must lie inside their buffers; a kernel writing past a buffer's end faults,
/// one writing past a view's end into the same buffer is only caught by its results.
pub fn run_views(run: &EmuRun<'_>) -> Result<Vec<f32>, String> {
    for (l, (launch, views)) in run.launches.iter().enumerate() {
        if views.len() != launch.args.len() {
            return Err(format!(
                "launch {l} ({}): {} views for {} arguments",
                launch.entry,
                views.len(),
                launch.args.len()
            ));
        }
        if let Some(v) = views
            .iter()
            .find(|v| run.buffers.get(v.buffer).is_none_or(|b| v.offset > b.len()))
        {
            return Err(format!(
                "launch {l} ({}): view {v:?} outside the buffers",
                launch.entry
            ));
        }
    }
    if run.result >= run.buffers.len() {
        return Err(format!(
            "result buffer {} of {}",
            run.result,
            run.buffers.len()
        ));
    }
    let lowered = Lowered {
        buffers: run.buffers.clone(),
        out_len: 0,
        launches: run
            .launches
            .iter()
            .map(|(l, views)| LoweredLaunch {
                launch: l,
                first_block: 0,
                views: views
                    .iter()
                    .map(|v| (v.buffer as i64, v.offset as i64))
                    .collect(),
            })
            .collect(),
        result: run.result as i64,
        wide: false,
    };
    Ok(execute_cases(&[lowered])?.pop().unwrap_or_default())
}

/// Ok when g++ can be run; Err says why not (the caller prints a skip line).
pub fn available() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| match Command::new(GXX).arg("--version").output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!("`{GXX} --version` failed: {}", out.status)),
            Err(e) => Err(format!("cannot run {GXX}: {e}")),
        })
        .clone()
}

/// Emulates every case in one g++ program and returns each case's output; Err when g++
/// is missing (see [`available`]), the program does not compile, or a kernel faults.
pub fn run(cases: &[EmuCase<'_>]) -> Result<Vec<Vec<f32>>, String> {
    let lowered = cases
        .iter()
        .enumerate()
        .map(|(c, case)| lower_case(c, case))
        .collect::<Result<Vec<_>, _>>()?;
    execute_cases(&lowered)
}

fn execute_cases(cases: &[Lowered<'_>]) -> Result<Vec<Vec<f32>>, String> {
    available()?;
    let program = Program::new(cases);
    let dir = WorkDir::new()?;
    let exe = program.executable(&dir.0)?;
    let (manifest, data) = program.manifest(cases);
    let paths = [
        dir.0.join("manifest.txt"),
        dir.0.join("data.bin"),
        dir.0.join("out.bin"),
    ];
    write(&paths[0], manifest.as_bytes())?;
    write(&paths[1], &data)?;
    execute(&exe, &paths, &dir.0)?;
    let bytes = std::fs::read(&paths[2]).map_err(|e| format!("reading {:?}: {e}", paths[2]))?;
    let total: usize = cases.iter().map(Lowered::result_len).sum();
    if bytes.len() != total * 4 {
        return Err(format!(
            "emulated program wrote {} bytes of output, expected {}",
            bytes.len(),
            total * 4
        ));
    }
    let mut floats = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    Ok(cases
        .iter()
        .map(|c| floats.by_ref().take(c.result_len()).collect())
        .collect())
}

/// The generated C++ program: the distinct modules and kernels of a set of cases.
struct Program {
    text: String,
    /// For each case, for each launch: its kernel's index in the program.
    kernel_of: Vec<Vec<usize>>,
}

impl Program {
    fn new(cases: &[Lowered<'_>]) -> Program {
        let mut modules: HashMap<String, usize> = HashMap::new();
        let mut kernels: HashMap<(usize, &str, usize), usize> = HashMap::new();
        let mut text = String::from("#include \"emu.h\"\n");
        let mut wrappers = String::new();
        let mut names = Vec::new();
        let mut kernel_of = Vec::with_capacity(cases.len());
        for case in cases {
            let mut of_case = Vec::with_capacity(case.launches.len());
            for LoweredLaunch { launch, .. } in &case.launches {
                let module_text = launch.module_text();
                let next = modules.len();
                let m = *modules.entry(module_text.clone()).or_insert_with(|| {
                    push_module(&mut text, next, &module_text, launch);
                    next
                });
                let key = (m, launch.entry, launch.args.len());
                let next = kernels.len();
                let k = *kernels.entry(key).or_insert_with(|| {
                    let args: Vec<String> =
                        (0..launch.args.len()).map(|i| format!("a[{i}]")).collect();
                    let _ = writeln!(
                        wrappers,
                        "static void emu_k{next}(float** a) {{ (void)a; emu_m{m}::{}({}); }}",
                        launch.entry,
                        args.join(", ")
                    );
                    names.push(format!("\"{} in {}\"", launch.entry, launch.source.name));
                    next
                });
                of_case.push(k);
            }
            kernel_of.push(of_case);
        }
        text.push_str(&wrappers);
        let list: Vec<String> = (0..names.len()).map(|k| format!("emu_k{k}")).collect();
        // Zero-length arrays are not C++: a null entry keeps both non-empty.
        let _ = writeln!(
            text,
            "static const emu::Kernel kernels[] = {{{}nullptr}};\n\
             static const char* const names[] = {{{}nullptr}};\n\
             int main(int argc, char** argv) {{\n    \
             return emu::run_cases(argc, argv, kernels, names, {});\n}}",
            list.iter().map(|k| format!("{k}, ")).collect::<String>(),
            names.iter().map(|n| format!("{n}, ")).collect::<String>(),
            names.len()
        );
        Program { text, kernel_of }
    }

    /// The built program: from the cache, else compiled with g++ in `dir` (and cached).
    fn executable(&self, dir: &Path) -> Result<PathBuf, String> {
        let mut keyed = format!("{GXX_FLAGS:?}\n").into_bytes();
        for (_, text) in HEADERS {
            keyed.extend_from_slice(text.as_bytes());
        }
        keyed.extend_from_slice(self.text.as_bytes());
        let cache = std::env::temp_dir().join("kestrel-emu-cache");
        let cached = cache.join(format!("{:016x}", fnv1a64(&keyed)));
        if cached.is_file() {
            return Ok(cached);
        }
        for (name, text) in HEADERS {
            write(&dir.join(name), text.as_bytes())?;
        }
        write(&dir.join("main.cpp"), self.text.as_bytes())?;
        // g++ writes the executable straight into the cache under a temporary name, then
        // it is renamed into place: a concurrent reader never runs half a file, and this
        // process never holds the executable open for writing (a thread forking at that
        // moment would make running it fail with ETXTBSY). Without a cache directory it
        // is built in `dir`.
        let cacheable = std::fs::create_dir_all(&cache).is_ok();
        if cacheable {
            prune(&cache);
        }
        let exe = match cacheable {
            true => cache.join(format!(".{}.tmp", dir_tag(dir))),
            false => dir.join("emu"),
        };
        let out = Command::new(GXX)
            .args(GXX_FLAGS)
            .arg("-o")
            .arg(&exe)
            .arg("main.cpp")
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {GXX}: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&exe);
            return Err(format!(
                "g++ could not compile the emulated kernels ({}):\n{}",
                out.status,
                trim(&String::from_utf8_lossy(&out.stderr))
            ));
        }
        if cacheable && std::fs::rename(&exe, &cached).is_ok() {
            return Ok(cached);
        }
        Ok(exe)
    }

    /// The manifest `emu::run_cases` reads and the data file (inputs, then consts, of
    /// every case in order, little-endian f32).
    fn manifest(&self, cases: &[Lowered<'_>]) -> (String, Vec<u8>) {
        let mut m = format!("{}\n", cases.len());
        let mut data = Vec::new();
        for (case, kernels) in cases.iter().zip(&self.kernel_of) {
            let lens: Vec<String> = case
                .buffers
                .iter()
                .map(|b| {
                    data.extend(b.iter().flat_map(|v| v.to_le_bytes()));
                    b.len().to_string()
                })
                .collect();
            let _ = writeln!(m, "{} {} {}", case.wide as u8, lens.len(), lens.join(" "));
            let _ = writeln!(
                m,
                "{} {} {}",
                case.out_len,
                case.launches.len(),
                case.result
            );
            for (l, k) in case.launches.iter().zip(kernels) {
                let [gx, gy, gz] = l.launch.grid;
                let [bx, by, bz] = l.launch.block;
                let (first, views) = (l.first_block, &l.views);
                let _ = write!(
                    m,
                    "{k} {first} {gx} {gy} {gz} {bx} {by} {bz} {}",
                    views.len()
                );
                for (buffer, offset) in views {
                    let _ = write!(m, " {buffer} {offset}");
                }
                m.push('\n');
            }
        }
        (m, data)
    }
}

/// Appends module `m`: its text in a namespace, then `#undef`s of every macro it defined
/// (the launch's defines and the source's own), so the next module starts clean.
fn push_module(text: &mut String, m: usize, module_text: &str, launch: &super::Launch) {
    let _ = writeln!(text, "namespace emu_m{m} {{");
    text.push_str(&module_text.replace("extern \"C\"", ""));
    text.push_str("\n}\n");
    let own = launch.source.code.lines().filter_map(defined_macro);
    for name in launch.defines.iter().map(|d| d.0).chain(own) {
        let _ = writeln!(text, "#undef {name}");
    }
    let line = text.lines().count() + 2;
    let _ = writeln!(text, "#line {line} \"emu_main.cpp\"");
}

/// `NAME` for a `#define NAME ...` line.
fn defined_macro(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let rest = rest.strip_prefix("define")?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Every argument role of launch `l` of case `c` names a buffer the case has.
fn validate(c: usize, l: usize, case: &EmuCase<'_>, args: &[Arg]) -> Result<(), String> {
    for arg in args {
        let ok = match *arg {
            Arg::Input(i) => i < case.inputs.len(),
            Arg::Const(i) => i < case.op.consts.len(),
            Arg::Output => true,
            Arg::Value(_) => false,
        };
        if !ok {
            return Err(format!(
                "case {c}, launch {l}: argument {arg:?} but the case has {} inputs and {} consts",
                case.inputs.len(),
                case.op.consts.len()
            ));
        }
    }
    Ok(())
}

/// Runs the built program, killing it after `KESTREL_EMU_TIMEOUT` seconds (600).
fn execute(exe: &Path, paths: &[PathBuf; 3], dir: &Path) -> Result<(), String> {
    let stderr_path = dir.join("stderr.txt");
    let stderr =
        std::fs::File::create(&stderr_path).map_err(|e| format!("{stderr_path:?}: {e}"))?;
    let mut child = Command::new(exe)
        .args(paths)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run the emulated program {exe:?}: {e}"))?;
    let timeout = std::env::var("KESTREL_EMU_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT_S);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > Duration::from_secs(timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the emulated program ran past {timeout} s (a kernel that never ends?); \
                     KESTREL_EMU_TIMEOUT sets the limit"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for the emulated program: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    Err(format!(
        "the emulated program failed ({status}):\n{}",
        trim(&log)
    ))
}

/// At most the first 60 lines / 6,000 characters of a log.
fn trim(log: &str) -> String {
    let mut out: String = log.lines().take(60).collect::<Vec<_>>().join("\n");
    if out.len() > 6000 {
        let mut end = 6000;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    if out.len() < log.trim_end().len() {
        out.push_str("\n[...]");
    }
    out
}

/// Deletes cached executables unused for a week (each is ~100 KB; every edit of a kernel
/// makes a new one). Running a cached executable does not touch its mtime, so this is
/// "built a week ago": at worst a test compiles once more.
fn prune(cache: &Path) {
    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > WEEK));
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("writing {path:?}: {e}"))
}

fn dir_tag(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A fresh directory per call (tests run in parallel threads), removed on drop unless
/// `KESTREL_EMU_KEEP=1`.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("kestrel-emu-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(WorkDir(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("creating {dir:?}: {e}")),
            }
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::env::var("KESTREL_EMU_KEEP").is_ok_and(|v| v == "1") {
            eprintln!("emu: kept {:?}", self.0);
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
