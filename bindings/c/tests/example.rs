//! examples/classify.c compiled against include/kestrel.h and the freshly built
//! libkestrel_c.so, then run on the fixture: the C side of the ABI, as a C user builds it.
//! The header is also compiled and linked as C++, for its extern "C" guards. A missing
//! compiler fails these tests rather than skipping them: CI has gcc and g++.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    crate_dir().join("../../tests/fixtures").join(name)
}

/// The directory holding libkestrel_c.so: cargo builds the cdylib beside the test
/// executable (target/<profile>/deps), and copies it one level up.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe
        .parent()
        .expect("the executable's directory")
        .to_path_buf();
    [deps.clone(), deps.join("..")]
        .into_iter()
        .find(|dir| dir.join("libkestrel_c.so").is_file())
        .unwrap_or_else(|| panic!("no libkestrel_c.so in {} or its parent", deps.display()))
}

/// Runs a compiler, failing with what it said; a compiler that is not installed fails
/// the test with the reason.
fn compile(compiler: &str, args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut command = Command::new(compiler);
    command.args(args);
    command.stdin(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!("cannot run `{compiler}` ({e}): this test needs a C and a C++ compiler (gcc, g++)")
    });
    let source = stdin.unwrap_or_default().as_bytes();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(source)
        .expect("writing the source");
    let out = child.wait_with_output().expect("the compiler's output");
    assert!(
        out.status.success(),
        "{compiler} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// classify, compiled once per test process with every warning an error.
fn classify() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let binary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("classify");
        let include = crate_dir().join("include");
        let source = crate_dir().join("examples/classify.c");
        let lib = library_dir();
        let rpath = format!("-Wl,-rpath,{}", lib.display());
        compile(
            "cc",
            &[
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-I",
                include.to_str().unwrap(),
                source.to_str().unwrap(),
                "-L",
                lib.to_str().unwrap(),
                "-lkestrel_c",
                "-lm",
                &rpath,
                "-o",
                binary.to_str().unwrap(),
            ],
            None,
        );
        binary
    })
}

fn run_classify(model: &Path, reference: &Path) -> (Output, String, String) {
    let out = Command::new(classify())
        .arg(model)
        .arg(reference)
        .output()
        .expect("running classify");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn classify_agrees_with_the_pytorch_reference() {
    let (out, stdout, stderr) = run_classify(
        &fixture("cifarnet.safetensors"),
        &fixture("cifarnet.b1.ref.safetensors"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let version = format!("kestrel {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        lines[..3],
        [
            version.as_str(),
            "input 0: input [1, 3, 32, 32]",
            "output 0: fc [1, 10]"
        ]
    );
    assert!(lines[3].starts_with("run: max abs error "), "{stdout}");
    // "row 0: argmax N (reference N)": the same class.
    let row = lines[4].strip_prefix("row 0: argmax ").expect(&stdout);
    let (ours, theirs) = row.split_once(" (reference ").expect(&stdout);
    assert_eq!(format!("{ours})"), theirs, "{stdout}");
    assert!(
        lines[5].starts_with("compare: all outputs within tolerance"),
        "{stdout}"
    );
    assert_eq!(lines[6..], ["OK"]);
    assert_eq!(stderr, "");
}

#[test]
fn classify_reports_a_missing_model_naming_the_file() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-model.safetensors");
    let (out, stdout, stderr) = run_classify(&missing, &fixture("cifarnet.b1.ref.safetensors"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("kestrel_model_load failed"), "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
}

#[test]
fn classify_reports_a_reference_of_another_batch_naming_the_input() {
    let (out, stdout, stderr) = run_classify(
        &fixture("cifarnet.safetensors"),
        &fixture("cifarnet.b3.ref.safetensors"),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let want = "kestrel_session_run failed: input \"input\": expected 3072 values";
    assert!(
        stderr.contains(want) && stderr.contains("got 9216"),
        "{stderr}"
    );
    assert!(!stdout.contains("OK"), "{stdout}");
}

/// The header compiles as C++ and its extern "C" guards hold: a C++ program links
/// against the library's unmangled names and runs.
#[test]
fn header_compiles_and_links_as_cpp() {
    let include = crate_dir().join("include");
    let lib = library_dir();
    let binary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("version_cpp");
    let rpath = format!("-Wl,-rpath,{}", lib.display());
    let source = r#"
        #include "kestrel.h"
        #include <cstdio>
        int main() {
            KestrelModel *model = nullptr;
            KestrelStatus status = kestrel_model_load(nullptr, &model);
            std::printf("%s %d %s\n", kestrel_version(), int(status), kestrel_last_error());
            return status == KESTREL_ERROR_ARGUMENT && model == nullptr ? 0 : 1;
        }
    "#;
    let include_arg = include.to_str().unwrap();
    compile(
        "c++",
        &[
            "-fsyntax-only",
            "-x",
            "c++",
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-I",
            include_arg,
            "-",
        ],
        Some(source),
    );
    compile(
        "c++",
        &[
            "-x",
            "c++",
            "-std=c++11",
            "-Wall",
            "-Werror",
            "-I",
            include_arg,
            "-",
            "-x",
            "none",
            "-L",
            lib.to_str().unwrap(),
            "-lkestrel_c",
            &rpath,
            "-o",
            binary.to_str().unwrap(),
        ],
        Some(source),
    );
    let out = Command::new(&binary)
        .output()
        .expect("running the C++ program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.trim(),
        format!("{} 1 path is NULL", env!("CARGO_PKG_VERSION"))
    );
}
