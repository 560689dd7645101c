#!/usr/bin/env bash
# Fuzz smoke run: builds the fuzz targets and runs each for FUZZ_SECONDS (default 30)
# from the committed seeds plus the local working corpus. Exits non-zero on the first
# crash, panic, timeout or out-of-memory; libFuzzer leaves the input in
# fuzz/artifacts/<target>/ (rerun it with `cargo +nightly fuzz run <target> <file>`).
#
#   fuzz/smoke.sh                        # every target, 30 s each (~1 min + the build)
#   FUZZ_SECONDS=600 fuzz/smoke.sh fuzz_model
#
# Needs a nightly toolchain (libFuzzer's sanitizer flags); installs cargo-fuzz if missing.
set -euo pipefail

cd "$(dirname "$0")"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
seconds="${FUZZ_SECONDS:-30}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(fuzz_model fuzz_reference)
fi

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

for target in "${targets[@]}"; do
    cargo "+$toolchain" fuzz build "$target"
done

for target in "${targets[@]}"; do
    # New inputs go to the first folder (git-ignored); the seeds are only read.
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds} s"
    # -timeout: a small model runs in milliseconds, so 10 s per input is a hang.
    # -rss_limit_mb: the targets skip models over 16 MiB of activations; 2 GiB is a leak.
    cargo "+$toolchain" fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -dict="$target.dict" -max_total_time="$seconds" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
done
echo "fuzz smoke: no findings in ${targets[*]}"
