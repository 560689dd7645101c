//! Copies the README's Rust snippets into a file that `engine/lib.rs` includes as doc
//! comments under `cfg(doctest)`, so that `cargo test --doc` compiles the code users copy
//! first. Only blocks fenced ```rust are taken: the README's shell, Python, text and
//! unlabelled blocks would not compile, and rustdoc treats an unlabelled block as Rust.
//!
//! A README snippet shows the calls and leaves out their setup: one without hidden (`# `)
//! lines is compiled inside a function that returns a Result and is handed an `input`.
//! Every snippet is compiled, not run (`no_run`): it loads files the user has, not us.

use std::path::Path;

/// Hidden lines around a snippet that has none of its own.
const SETUP: &str = "# fn main() -> Result<(), Box<dyn std::error::Error>> {\n\
                     # let input = vec![0.0f32; 3 * 32 * 32];\n";
const TEARDOWN: &str = "# Ok(())\n# }\n";

fn main() {
    println!("cargo:rerun-if-changed=README.md");
    // A package built without its README (vendored, trimmed) still builds.
    let readme = std::fs::read_to_string("README.md").unwrap_or_default();
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("readme.md");
    std::fs::write(&out, rust_snippets(&readme)).expect("OUT_DIR is writable");
}

/// Every ```rust block of `markdown` (not ```rust,ignore), as a `no_run` doctest.
fn rust_snippets(markdown: &str) -> String {
    let mut doc = String::new();
    // The open block's lines, when it is Rust; None inside any other block.
    let mut rust: Option<Vec<&str>> = None;
    let mut in_block = false;
    for line in markdown.lines() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            if let Some(lines) = rust.as_mut() {
                lines.push(line);
            }
            continue;
        };
        if !in_block {
            let mut words = info.trim().split(',');
            let is_rust = words.next() == Some("rust") && !words.any(|w| w == "ignore");
            rust = is_rust.then(Vec::new);
            in_block = true;
            continue;
        }
        in_block = false;
        let Some(lines) = rust.take() else { continue };
        let hidden = lines
            .iter()
            .any(|l| l.trim_start().starts_with("# ") || l.trim() == "#");
        doc.push_str("```rust,no_run\n");
        if !hidden {
            doc.push_str(SETUP);
        }
        for l in lines {
            doc.push_str(l);
            doc.push('\n');
        }
        if !hidden {
            doc.push_str(TEARDOWN);
        }
        doc.push_str("```\n\n");
    }
    doc
}
