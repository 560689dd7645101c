#!/usr/bin/env bash
# The CPU test suite under LeakSanitizer: every test binary of the workspace built with
# -Zsanitizer=leak (nightly), run as `cargo test` runs them; a leak fails the binary that
# made it. CUDA tests skip here (no GPU); run it where NVRTC is on LD_LIBRARY_PATH to
# cover the NVRTC compile path too.
#
#   scripts/leak-check.sh [cargo test args...]      e.g. scripts/leak-check.sh --test fixtures
#
# Needs a nightly toolchain (`rustup toolchain install nightly`). Builds into
# target/lsan so the normal build is untouched; about 5 minutes on 2 cores, first time.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=leak"
export RUSTDOCFLAGS="-Zsanitizer=leak"
# Leaks are reported at exit; fail the process when there is one. A huge allocation
# returns null, as from the system allocator (tests/bad_input.rs asks for 256 GiB and
# expects an out-of-memory error), instead of the sanitizer aborting.
export LSAN_OPTIONS="exitcode=23:allocator_may_return_null=1:${LSAN_OPTIONS:-}"
exec cargo +nightly test --workspace --release --target "$target" --target-dir target/lsan "$@"
