//! Shared by the loader's integration tests.

use kestrel_loader::testfile::TempFile;
use kestrel_loader::{read_model, LoadError, ModelFile};

/// Writes `bytes` to a temp file whose name contains `stem` and loads it with `read_model`.
pub fn load(stem: &str, bytes: &[u8]) -> (TempFile, Result<ModelFile, LoadError>) {
    let file = TempFile::new(stem, bytes);
    let result = read_model(file.path());
    (file, result)
}

/// Loads `bytes`, expects an error, checks its message is one line starting with the file's
/// path and naming each of `culprits`, and returns it.
pub fn load_err(stem: &str, bytes: &[u8], culprits: &[&str]) -> LoadError {
    let (file, result) = load(stem, bytes);
    let e = match result {
        Ok(_) => panic!("{stem}: loaded, but should have been refused"),
        Err(e) => e,
    };
    let msg = e.to_string();
    let path = file.path().display().to_string();
    assert!(
        msg.starts_with(&format!("{path}: ")),
        "message does not start with the path: {msg}"
    );
    assert!(!msg.contains('\n'), "message is not one line: {msg}");
    for c in culprits {
        assert!(
            msg.contains(&format!("{c:?}")),
            "message does not name {c:?}: {msg}"
        );
    }
    e
}
