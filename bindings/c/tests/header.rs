//! include/kestrel.h is what cbindgen makes of the sources: a function added or changed
//! in Rust without regenerating the header fails here, before a C caller links against
//! a declaration that no longer matches.

use std::path::Path;

#[test]
fn header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not read the sources")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("cbindgen writes UTF-8");
    let path = dir.join("include/kestrel.h");
    if std::env::var_os("KESTREL_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("writing include/kestrel.h");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "{} is stale: regenerate it with\n    KESTREL_BLESS=1 cargo test --release -p kestrel-c --test header\n\
         and commit the result. The generated header starts:\n{}",
        path.display(),
        generated.lines().take(40).collect::<Vec<_>>().join("\n")
    );
}

/// Every exported function is declared, and nothing else is: the list a C user reads is
/// the list the library has.
#[test]
fn header_declares_every_function() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(dir.join("include/kestrel.h")).expect("the header");
    let mut exported = Vec::new();
    for entry in std::fs::read_dir(dir.join("src")).expect("src/") {
        let source = std::fs::read_to_string(entry.expect("src entry").path()).expect("source");
        for line in source.lines() {
            let Some(rest) = line.split("extern \"C\" fn ").nth(1) else {
                continue;
            };
            exported.push(rest.split('(').next().unwrap_or_default().to_string());
        }
    }
    exported.sort();
    let mut declared: Vec<String> = header
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with(' ') && l.contains('('))
        .filter_map(|l| {
            l.split('(')
                .next()?
                .split([' ', '*'])
                .next_back()
                .map(str::to_string)
        })
        .filter(|name| name.starts_with("kestrel_"))
        .collect();
    declared.sort();
    assert_eq!(
        exported, declared,
        "extern \"C\" functions in src/ vs declarations in the header"
    );
    // Guards the scan itself: a parser that finds nothing would pass the comparison.
    assert!(
        exported.len() >= 21,
        "found too few functions: {exported:?}"
    );
}
