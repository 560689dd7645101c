#!/usr/bin/env bash
# Kestrel's GPU check in one call: (0) the CUDA stack first (NVRTC path and version, driver
# version, device; an NVRTC this driver cannot take stops the check), (a) nvidia-smi, (b)
# the CUDA tests with REQUIRE_CUDA=1 (and, alone in its process, the device-fault test),
# (c) `kestrel compare --device cuda` on every fixture, (d) four models exported here and,
# per model, checked against PyTorch on this GPU and timed with `kestrel bench --device cuda`
# at batch 1 and 32 in every precision (fp32, tf32, fp16), then PyTorch with CUDA graphs on
# the same model, batches and precisions, and per-step GPU times of ResNet-50 and ResNet-18
# at batch 1 (fp32, fp16), (e) a summary table against the GPU targets in
# docs/performance.md.
#
#   PACK/check.sh                  in a pack made by benches/gpu/pack.sh (no cargo needed)
#   benches/gpu/check.sh           in a built tree: packs into gpu-pack/ first
#
# Every step writes $OUT/<step>.log (OUT defaults to ./gpu-out) and has its own timeout; the
# whole check keeps within CHECK_BUDGET_S (default 480 s): a step that would start after the
# budget is spent is skipped and says so. Nothing stops at the first failure. The end is
# summary.md, summary.json and a table on stdout; exit 0 only when everything passed.
#
# Env: OUT, WORK (exports; default /tmp/kestrel-gpu-work), PYTHON (default python3),
# CHECK_BUDGET_S, MODELS (default seednet,resnet18,mobilenet_v2,resnet50), BATCHES ("1 32"),
# PRECISIONS ("fp32 tf32 fp16": compare, bench, PyTorch and per-layer runs), BENCH_ITERS
# (300 at batch 1), BENCH_ITERS_BATCHED (batches above 1: 100, or BENCH_ITERS when that is
# set), BENCH_WARMUP (30), TORCH_ITERS (200), PER_LAYER_MODELS ("resnet50,resnet18"; "" for
# none), PER_LAYER_PRECISIONS ("fp32 fp16"), PER_LAYER_ITERS (200), CHECK_ALL_TESTS=1 (run
# every test, not only the CUDA ones), KEEP_LINKS=1 (keep the build-path links, see
# README.md), CHECK_BUNDLE=1 (leave only summary.md, summary.json and logs.tar.gz in $OUT).
#
# Time, estimated (no run of this shape yet; the H100 figures are from docs/cuda.md and
# docs/performance.md): env, nvidia-smi, paths ~10 s; tests ~60 s; fixture compares ~20 s
# (10 processes: CUDA context ~0.3 s, NVRTC ~0.3 s cold + ~35 ms per module, then kept in
# the disk cache). Per model (4): export ~12 s (python, torch import, GPU references);
# 6 compares (2 batches x 3 precisions) ~2.5 s each, their modules then cached for the
# bench; 6 benches ~1.5 s of setup each plus the runs: assuming Kestrel as slow as
# PyTorch's fp32 graphs in every precision, 330 runs at batch 1 (~4.2 ms for the four
# models) ~1.4 s and 130 at batch 32 (~19 ms) ~2.5 s per precision, ~12 s for all; PyTorch
# ~25 s a model (torch import ~5 s, cuDNN autotuning and capture ~2 s a graph, 230 replays
# a graph plus 230 with copies in fp32: ~32 s over all models); per-layer 4 runs ~3 s each.
# Sum: ~10 + 60 + 20 + 4 x 12 + 24 x 2.5 + 24 x 1.5 + 12 + 100 + 12 = ~360 s, ~2 minutes
# under the budget. At 300 runs for batch 32 too the benches would take ~11 s more. Over
# budget, the last models' steps are skipped (each model's steps run together: its
# Kestrel and PyTorch figures are taken in the same few seconds).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PACK=$(cd "$HERE/../.." && pwd)
T0=$SECONDS

if [[ ! -f $PACK/pack-info/pack.env ]]; then
  # A built tree, not a pack: pack it (needs cargo) and run the pack's copy of this script.
  if ! command -v cargo >/dev/null; then
    echo "check.sh: $PACK is neither a pack (no pack-info/pack.env) nor a tree with cargo;" \
      "make a pack with benches/gpu/pack.sh and run its check.sh" >&2
    exit 2
  fi
  "$HERE/pack.sh" "$PACK/gpu-pack" || exit 2
  exec bash "$PACK/gpu-pack/benches/gpu/check.sh" "$@"
fi

OUT=${OUT:-$PWD/gpu-out}
if ! mkdir -p "$OUT"; then
  echo "check.sh: cannot create OUT=$OUT" >&2
  exit 2
fi
OUT=$(cd "$OUT" && pwd)
WORK=${WORK:-${TMPDIR:-/tmp}/kestrel-gpu-work}
mkdir -p "$WORK" || { echo "check.sh: cannot create WORK=$WORK" >&2; exit 2; }
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 # a timed-out step still leaves what it printed
BUDGET=${CHECK_BUDGET_S:-480}
MODELS=${MODELS:-seednet,resnet18,mobilenet_v2,resnet50}
read -r -a BATCH_LIST <<<"${BATCHES:-1 32}"
PRECS=${PRECISIONS:-fp32 tf32 fp16} PL_PRECS=${PER_LAYER_PRECISIONS:-fp32 fp16}
read -r -a PREC_LIST <<<"${PRECS//,/ }"
read -r -a PL_PREC_LIST <<<"${PL_PRECS//,/ }"
PER_LAYER_MODELS=${PER_LAYER_MODELS-resnet50,resnet18}
for p in "${PREC_LIST[@]}" "${PL_PREC_LIST[@]}"; do
  case $p in
    fp32 | tf32 | fp16) ;;
    *) echo "check.sh: unknown precision '$p' in PRECISIONS or PER_LAYER_PRECISIONS (fp32, tf32, fp16)" >&2; exit 2 ;;
  esac
done
ITERS=${BENCH_ITERS:-300}
ITERS_BATCHED=${BENCH_ITERS_BATCHED:-${BENCH_ITERS:-100}}
PER_LAYER_ITERS=${PER_LAYER_ITERS:-200}
WARMUP=${BENCH_WARMUP:-30}
TORCH_ITERS=${TORCH_ITERS:-200}
KESTREL=$PACK/target/release/kestrel
BUILD_ROOT="" BUILT_BIN="" PACK_GIT="" PACK_DATE="" PACK_RUSTC=""
# shellcheck source=/dev/null
source "$PACK/pack-info/pack.env"
# The fixtures: the pack's copy, or (pack.sh --no-fixtures) the repo's around the pack.
FIXTURES=$PACK/tests/fixtures
if [[ ! -e $FIXTURES/cifarnet.safetensors && -e $PACK/../tests/fixtures/cifarnet.safetensors ]]; then
  FIXTURES=$(cd "$PACK/../tests/fixtures" && pwd)
fi

# Earlier results would mix into the summary.
rm -f "$OUT"/*.log "$OUT"/*.tsv "$OUT"/*.json "$OUT"/summary.md "$OUT"/logs.tar.gz
printf 'step\tstatus\tseconds\tnote\n' >"$OUT/steps.tsv"
printf 'id\tfilter\tstatus\tpassed\tfailed\tignored\tskip_lines\tfailures\n' >"$OUT/tests.tsv"
printf 'kind\tmodel\tbatch\tprecision\tverdict\tmax_abs\ttolerance\tnote\n' >"$OUT/compare.tsv"
# What the check means to measure, so that the summary can name every row it lacks.
printf 'model\tbatch\tprecision\n' >"$OUT/plan.tsv"
IFS=, read -r -a MODEL_LIST <<<"$MODELS"
for m in "${MODEL_LIST[@]}"; do
  for b in "${BATCH_LIST[@]}"; do
    for p in "${PREC_LIST[@]}"; do printf '%s\t%s\t%s\n' "$m" "$b" "$p" >>"$OUT/plan.tsv"; done
  done
done

say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*"; }

# tmo WANT [RESERVE]: a step's timeout, WANT seconds cut to what the budget has left after
# RESERVE seconds kept for the steps after it; 0 when under 5 s would be left.
tmo() {
  local left=$((BUDGET - (SECONDS - T0) - ${2:-0}))
  ((left > $1)) && left=$1
  ((left < 5)) && left=0
  echo "$left"
}

# run LOG SECS CMD...: appends the command line and its output to LOG. Returns its status,
# 124 or 137 when it timed out, 125 when SECS is 0 (budget spent: not run).
run() {
  local logf=$1 secs=$2 rc
  shift 2
  if ((secs <= 0)); then
    echo "skipped: the check's time budget (${BUDGET}s) is spent" >>"$logf"
    return 125
  fi
  printf '$ %s   (timeout %ss)\n' "$*" "$secs" >>"$logf"
  # In the background and waited for, so that a signal to this script is handled at once
  # (stop_child) instead of after the step.
  timeout -k 10 "$secs" "$@" >>"$logf" 2>&1 </dev/null &
  CHILD=$! CHILD_LOG=$logf
  wait "$CHILD"
  rc=$?
  CHILD="" CHILD_LOG=""
  if ((rc == 124 || rc == 137)); then echo "TIMEOUT after ${secs}s" >>"$logf"; fi
  echo "exit $rc" >>"$logf"
  return "$rc"
}

# On a signal: stop the running step. `timeout` leads its own process group, so signalling
# the group reaches the command it runs too.
CHILD="" CHILD_LOG=""
# shellcheck disable=SC2317 # called from the signal trap (on_signal)
stop_child() {
  local i
  [[ -n $CHILD ]] || return 0
  kill -TERM -- "-$CHILD" 2>/dev/null
  for ((i = 0; i < 20; i++)); do
    kill -0 "$CHILD" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL -- "-$CHILD" 2>/dev/null
}

status_of() {
  case $1 in
    0) echo ok ;; 124 | 137) echo timeout ;; 125) echo skipped ;; *) echo "fail" ;;
  esac
}

# record STEP RC START [NOTE]: one line of steps.tsv and one of progress on stdout.
record() {
  local st secs=$((SECONDS - $3))
  st=$(status_of "$2")
  printf '%s\t%s\t%s\t%s\n' "$1" "$st" "$secs" "${4:-}" >>"$OUT/steps.tsv"
  say "$(printf '%-28s %-8s %4ss %s' "$1" "$st" "$secs" "${4:-}")"
}

# -------------------------------------------------------------- build-path links

# The test executables look for $BUILD_ROOT/tests/fixtures and run $BUILT_BIN (paths baked
# in at build time). Where such a path is absent it becomes a symlink to the pack's copy
# (parent folders created as needed); links and folders made here are removed at the end
# unless KEEP_LINKS=1. A path that exists is left alone and checked against the pack.
CREATED=()
link_if_absent() { # TARGET SOURCE
  local target=$1 source=$2 top=$1
  while [[ ! -e $(dirname "$top") ]]; do top=$(dirname "$top"); done
  if mkdir -p "$(dirname "$target")" 2>/dev/null && ln -s "$source" "$target" 2>/dev/null; then
    CREATED+=("$target|$top")
    echo "linked $target -> $source"
    return 0
  fi
  echo "cannot create $target (no permission to create $top?)"
  return 1
}

remove_links() {
  local e target top d
  [[ ${KEEP_LINKS:-0} == 1 ]] && return
  ((${#CREATED[@]})) || return
  local i
  for ((i = ${#CREATED[@]} - 1; i >= 0; i--)); do # newest first: its folders nest in older ones
    e=${CREATED[i]}
    target=${e%%|*} top=${e#*|}
    rm -f "$target"
    d=$(dirname "$target")
    while [[ $d == "$top" || $d == "$top"/* ]]; do
      rmdir "$d" 2>/dev/null || break
      d=$(dirname "$d")
    done
  done
  CREATED=()
}

# same_binary BUILT PACKED: equal, or equal once BUILT is stripped as pack.sh strips.
same_binary() {
  local tmp rc=1
  cmp -s "$1" "$2" && return 0
  command -v strip >/dev/null || return 1
  tmp=$(mktemp)
  strip -o "$tmp" "$1" 2>/dev/null && cmp -s "$tmp" "$2" && rc=0
  rm -f "$tmp"
  return "$rc"
}

fixtures_match() { # DIR: holds the fixtures the pack was made with
  (cd "$1" && sha256sum --quiet -c "$PACK/pack-info/fixtures.sha256") >/dev/null 2>&1
}

setup_paths() {
  local ok=1 bf=$BUILD_ROOT/tests/fixtures
  echo "build root (CARGO_MANIFEST_DIR of the tests): $BUILD_ROOT"
  echo "kestrel as the tests run it (CARGO_BIN_EXE_kestrel): $BUILT_BIN"
  echo "pack: $PACK; fixtures: $FIXTURES"
  if ! fixtures_match "$FIXTURES"; then
    echo "ERROR: $FIXTURES does not hold the fixtures the pack was made with:"
    (cd "$FIXTURES" && sha256sum -c "$PACK/pack-info/fixtures.sha256" 2>&1 | grep -v ': OK$')
    ok=0
  fi
  if [[ ! -e $bf && ! -L $bf ]]; then
    link_if_absent "$bf" "$FIXTURES" || ok=0
  elif ! fixtures_match "$bf"; then
    echo "WARNING: $bf differs from the pack's fixtures; the tests read the ones there"
    ok=0
  fi
  if [[ ! -e $BUILT_BIN && ! -L $BUILT_BIN ]]; then
    link_if_absent "$BUILT_BIN" "$KESTREL" || ok=0
  elif ! same_binary "$BUILT_BIN" "$KESTREL"; then
    echo "WARNING: $BUILT_BIN is not the packed kestrel; cli.rs and cuda.rs run that one"
    ok=0
  fi
  if [[ -r $bf/cifarnet.safetensors && -x $BUILT_BIN ]]; then
    echo "fixtures and kestrel reachable at the build paths"
  else
    echo "ERROR: the build paths do not resolve: tests that read fixtures or run kestrel will fail"
    ok=0
  fi
  ((ok)) && return 0 || return 1
}

# -------------------------------------------------------------- steps

step_env() {
  local f=$OUT/env.log
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)   host: $(uname -n) $(uname -srm)"
    echo "pack: $PACK_GIT packed $PACK_DATE with $PACK_RUSTC"
    echo "budget ${BUDGET}s; models $MODELS; batches ${BATCH_LIST[*]}; precisions ${PREC_LIST[*]}"
    echo "bench --iters $ITERS (batch 1), $ITERS_BATCHED (batched) --warmup $WARMUP; torch iters $TORCH_ITERS"
    echo "per-layer: models ${PER_LAYER_MODELS:-none}; precisions ${PL_PREC_LIST[*]}; --iters $PER_LAYER_ITERS"
    echo "OUT=$OUT WORK=$WORK PYTHON=$PY"
  } >>"$f"
  run "$f" "$(tmo 60)" "$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
  local rc=$?
  record env "$rc" "$T0" "$(grep -m1 '^python' "$f" || echo "$PY with torch: not usable")"
}

# The CUDA stack, first: which libnvrtc.so.13 (the loader's, the toolkit's or pip's
# nvidia/cu13/lib; cudarc opens it by name, so its folder goes first on LD_LIBRARY_PATH),
# its version, the driver's version and the device, as cuda_stack.py reads them with
# ctypes, then as Kestrel sees them (`kestrel info --device cuda` builds a session, so
# every cifarnet kernel also loads and runs once). An NVRTC whose modules this driver
# would refuse stops the check here, saying which versions and what to install.
step_cuda_stack() {
  local f=$OUT/cuda-stack.log s=$SECONDS rc dir line
  run "$f" "$(tmo 30)" "$PY" "$HERE/cuda_stack.py"
  rc=$?
  grep -E '^(driver|device|nvrtc|nvrtc_found|incompatible): ' "$f" | while IFS= read -r line; do
    say "  $line"
  done
  dir=$(sed -n 's/^nvrtc_dir: //p' "$f" | tail -1)
  if [[ -n $dir ]]; then
    export LD_LIBRARY_PATH=$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
  if ((rc == 3)); then
    record cuda-stack 1 "$s" "STOP: $(grep -m1 '^incompatible' "$f" | cut -c1-300)"
    say "STOP: no NVRTC here produces modules this driver loads; see $f"
    finish
  fi
  run "$f" "$(tmo 90)" "$KESTREL" info "$FIXTURES/cifarnet.safetensors" --device cuda
  local krc=$?
  line=$(grep -m1 -E '^cuda: |^error' "$f")
  say "  kestrel: ${line:-printed no cuda line (exit $krc)}"
  if grep -q 'do not work together' "$f"; then
    record cuda-stack 1 "$s" "STOP: $(grep -m1 '^error' "$f" | cut -c1-300)"
    say "STOP: Kestrel refuses this NVRTC/driver pair; see $f"
    finish
  fi
  ((rc == 0)) && rc=$krc
  record cuda-stack "$rc" "$s" "${line:-no NVRTC found (cuda_stack.py exit $rc)}"
}

step_smi() {
  local f=$OUT/nvidia-smi.log s=$SECONDS rc
  if ! command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi not found: no NVIDIA driver here; every CUDA step below will fail" >>"$f"
    record nvidia-smi 1 "$s" "nvidia-smi not found: no NVIDIA driver"
    return
  fi
  run "$f" "$(tmo 30)" nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm,clocks.sm,temperature.gpu,power.draw,compute_mode --format=csv
  rc=$?
  run "$f" "$(tmo 30)" nvidia-smi
  record nvidia-smi "$rc" "$s" "$(grep -m1 -A1 '^index, name' "$f" | tail -1)"
}

step_paths() {
  local s=$SECONDS rc
  setup_paths >>"$OUT/paths.log" 2>&1
  rc=$?
  record paths "$rc" "$s" "$(grep -E -m1 'ERROR|WARNING|cannot' "$OUT/paths.log" || grep -m1 'linked' "$OUT/paths.log" || echo "build paths in place")"
}

# One test executable: the CUDA tests with REQUIRE_CUDA=1, in its package's directory as
# `cargo test` runs it.
step_tests() {
  local id exe mdir cwd filter f s rc name line passed failed ignored skips failures st
  local total=0 s0=$SECONDS
  while IFS=$'\t' read -r id exe mdir; do
    [[ -n $id ]] || continue
    name=tests-${id//\//-}
    f=$OUT/$name.log s=$SECONDS
    filter="cuda backend_tests"
    # Every test of a cuda* target (tests/cuda.rs, kernels/tests/cuda_timer.rs), else
    # those named *cuda* or *backend_tests* (each op's cases on every backend, GPU
    # included; libtest runs a test matching any of the filters).
    [[ $id == */test/cuda || $id == */test/cuda_* || ${CHECK_ALL_TESTS:-0} == 1 ]] && filter=""
    cwd=$BUILD_ROOT/$mdir
    [[ -d $cwd ]] || cwd=$PACK/$mdir
    run "$f" "$(tmo 240 180)" env --chdir="$cwd" REQUIRE_CUDA=1 KESTREL_REQUIRE_NVRTC=1 \
      RUST_BACKTRACE=1 "$PACK/$exe" $filter --color never --show-output
    rc=$?
    line=$(grep -E '^test result:' "$f" | tail -1)
    passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$line")
    failed=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$line")
    ignored=$(sed -nE 's/.* ([0-9]+) ignored.*/\1/p' <<<"$line")
    skips=$(grep -c 'skipping' "$f")
    failures=$(grep -E '^test .* \.\.\. FAILED$' "$f" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | paste -sd, -)
    st=$(status_of "$rc")
    [[ $st == fail && -z $line ]] && st=crashed
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "${filter:-all}" "$st" "${passed:-0}" \
      "${failed:-0}" "${ignored:-0}" "$skips" "$failures" >>"$OUT/tests.tsv"
    total=$((total + ${passed:-0} + ${failed:-0}))
    # An executable with no test matching the filter ran nothing: no line of progress for it.
    if [[ $rc != 0 || ${passed:-0} != 0 || -z $filter ]]; then
      record "$name" "$rc" "$s" "${line:-no test result line (exit $rc)}${failures:+; FAILED: $failures}"
    fi
  done <"$PACK/pack-info/tests.tsv"
  if ! grep -q $'^kestrel-cli/test/cuda\t' "$PACK/pack-info/tests.tsv"; then
    record tests-kestrel-cli-test-cuda 1 "$SECONDS" "no tests/cuda.rs executable in the pack"
  fi
  if ((total == 0)); then
    record tests 1 "$s0" "no CUDA test ran in $(wc -l <"$PACK/pack-info/tests.tsv") executables"
  fi
}

# The device-fault test (engine/exec/cuda/fault_tests.rs: a faulting kernel is named by
# the session's validation pass, and a later session is refused with the reason), alone
# in its process: the fault it provokes leaves that process's CUDA context unusable.
step_fault() {
  local f=$OUT/tests-fault.log s=$SECONDS id exe mdir cwd rc line
  read -r id exe mdir < <(grep -E $'^kestrel/lib/kestrel\t' "$PACK/pack-info/tests.tsv")
  if [[ -z ${exe:-} ]]; then
    record tests-fault 1 "$s" "no kestrel lib test executable in the pack"
    return
  fi
  cwd=$BUILD_ROOT/$mdir
  [[ -d $cwd ]] || cwd=$PACK/$mdir
  run "$f" "$(tmo 60)" env --chdir="$cwd" KESTREL_FAULT_TEST=1 RUST_BACKTRACE=1 \
    "$PACK/$exe" exec::cuda::fault_tests:: --color never --show-output
  rc=$?
  line=$(grep -E '^test result:' "$f" | tail -1)
  grep -q ' 1 passed' <<<"$line" || ((rc != 0)) || rc=1
  record tests-fault "$rc" "$s" "${line:-no test result line (exit $rc)}"
}

# compare KIND MODEL_FILE REF BATCH PRECISION LOG RESERVE: one `kestrel compare --device
# cuda`, at the precision's default tolerance.
compare() {
  local kind=$1 model=$2 ref=$3 batch=$4 prec=$5 f=$6 tmp rc verdict maxabs tol note
  tmp=$(mktemp)
  run "$tmp" "$(tmo 90 "$7")" "$KESTREL" compare "$model" "$ref" --device cuda --precision "$prec"
  rc=$?
  read -r maxabs tol < <(awk '$1 ~ /^output/ && $NF ~ /^(ok|OVER)$/ {print $(NF-3), $(NF-1)}' "$tmp" | sort -g -r | head -1)
  case $rc in
    0) verdict=MATCH ;; 124 | 137) verdict=TIMEOUT ;; 125) verdict=SKIPPED ;;
    1) verdict=MISMATCH ;; *) verdict=ERROR ;;
  esac
  grep -q '^MISMATCH' "$tmp" || [[ $verdict != MISMATCH ]] || verdict=ERROR
  note=$(grep -m1 -E '^error' "$tmp" | cut -c1-200)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$(basename "$model" .safetensors)" "$batch" \
    "$prec" "$verdict" "${maxabs:-}" "${tol:-}" "$note" >>"$OUT/compare.tsv"
  cat "$tmp" >>"$f"
  rm -f "$tmp"
  [[ $verdict == MATCH ]]
}

step_compare_fixtures() {
  local f=$OUT/compare-fixtures.log s=$SECONDS model ref b n=0 bad=0
  for model in "$FIXTURES"/*.safetensors; do
    [[ $model == *.ref.safetensors ]] && continue
    for b in 1 3; do
      ref=${model%.safetensors}.b$b.ref.safetensors
      [[ -f $ref ]] || continue
      n=$((n + 1))
      compare fixture "$model" "$ref" "$b" fp32 "$f" 150 || bad=$((bad + 1))
    done
  done
  record compare-fixtures $((bad > 0)) "$s" "$((n - bad))/$n MATCH"
}

# Export one model (PyTorch reference on this GPU), then per batch and precision compare it
# and bench it, then PyTorch's CUDA graphs of it and its per-layer runs: one model's
# Kestrel and PyTorch figures come from the same few seconds of the GPU's life.
step_model() {
  local m=$1 f s rc b p ref iters batches
  f=$OUT/export-$m.log s=$SECONDS
  rm -f "$WORK/$m.safetensors" "$WORK/$m".b*.ref.safetensors
  batches=$(IFS=,; echo "${BATCH_LIST[*]}")
  run "$f" "$(tmo 240 90)" "$PY" "$HERE/models.py" export --models "$m" --out "$WORK" --batches "$batches"
  rc=$?
  record "export-$m" "$rc" "$s" "$(grep -m1 -oE '"(error|export_s)": [^,}]*' "$f")"
  for b in "${BATCH_LIST[@]}"; do
    ref=$WORK/$m.b$b.ref.safetensors
    iters=$ITERS
    ((b > 1)) && iters=$ITERS_BATCHED
    for p in "${PREC_LIST[@]}"; do
      s=$SECONDS
      if [[ -f $WORK/$m.safetensors && -f $ref ]]; then
        compare model "$WORK/$m.safetensors" "$ref" "$b" "$p" "$OUT/compare-$m.log" 30
        rc=$?
        record "compare-$m-b$b-$p" "$rc" "$s" "$(tail -1 "$OUT/compare.tsv" | cut -f5-8 | tr '\t' ' ')"
      else
        printf 'model\t%s\t%s\t%s\tSKIPPED\t\t\tno export\n' "$m" "$b" "$p" >>"$OUT/compare.tsv"
        record "compare-$m-b$b-$p" 125 "$s" "no export to compare"
      fi
      s=$SECONDS
      f=$OUT/bench-$m-b$b-$p.log
      if [[ -f $WORK/$m.safetensors ]]; then
        run "$f" "$(tmo 120 30)" "$KESTREL" bench "$WORK/$m.safetensors" --device cuda --batch "$b" \
          --precision "$p" --iters "$iters" --warmup "$WARMUP" --json "$OUT/bench-$m-b$b-$p.json"
        rc=$?
        record "bench-$m-b$b-$p" "$rc" "$s" "$(grep -m1 -E '^median|^error' "$f")"
      else
        echo "skipped: no export of $m" >>"$f"
        record "bench-$m-b$b-$p" 125 "$s" "no export to bench"
      fi
    done
  done
  step_torch "$m"
  if [[ ,${PER_LAYER_MODELS// /,}, == *,"$m",* ]]; then step_per_layer "$m"; fi
}

# PyTorch with CUDA graphs on one model, every batch and precision.
step_torch() {
  local m=$1 f=$OUT/torch-graphs-$1.log s=$SECONDS rc batches precs
  batches=$(IFS=,; echo "${BATCH_LIST[*]}")
  precs=$(IFS=,; echo "${PREC_LIST[*]}")
  run "$f" "$(tmo 180)" "$PY" "$HERE/torch_graphs.py" --models "$m" --batches "$batches" \
    --precisions "$precs" --iters "$TORCH_ITERS" --warmup 30 --out "$OUT/torch_graphs-$m.json"
  rc=$?
  if ((rc == 0)); then
    record "torch-graphs-$m" "$rc" "$s" "$(grep -m1 -E '^torch ' "$f")"
  else # a result's error, else the script's last words (a traceback ends with the exception)
    record "torch-graphs-$m" "$rc" "$s" "$({ grep -m1 -oE '^error.*|"error": "[^"]*' "$f" ||
      grep -vE '^(\$ |exit [0-9]+$|TIMEOUT after|skipped: )' "$f" | tail -1; } | cut -c1-200)"
  fi
}

# Batch 1 with --per-layer: each step's GPU time (CUDA events), kept in the log and the JSON,
# in each of PER_LAYER_PRECISIONS that PRECISIONS also holds.
step_per_layer() {
  local m=$1 p s f
  for p in "${PL_PREC_LIST[@]}"; do
    [[ " ${PREC_LIST[*]} " == *" $p "* ]] || continue
    s=$SECONDS f=$OUT/perlayer-$m-b1-$p.log
    if [[ -f $WORK/$m.safetensors ]]; then
      run "$f" "$(tmo 60)" "$KESTREL" bench "$WORK/$m.safetensors" --device cuda --batch 1 \
        --precision "$p" --iters "$PER_LAYER_ITERS" --warmup "$WARMUP" --per-layer \
        --json "$OUT/perlayer-$m-b1-$p.json"
      record "perlayer-$m-b1-$p" $? "$s" "$(grep -m1 -E '^median|^error' "$f")"
    else
      echo "skipped: no export of $m" >>"$f"
      record "perlayer-$m-b1-$p" 125 "$s" "no export to bench"
    fi
  done
}

finish() {
  remove_links
  trap - INT TERM
  local rc=1
  say "summary (${BUDGET}s budget, $((SECONDS - T0))s used)"
  echo
  if "$PY" "$HERE/summary.py" "$OUT" --elapsed $((SECONDS - T0)) 2>"$OUT/summary-error.log"; then
    rc=0
  elif [[ -s $OUT/summary.md ]]; then
    rc=1
  else
    echo "summary.py could not run ($(tail -1 "$OUT/summary-error.log")); the steps:"
    column -t -s $'\t' "$OUT/steps.tsv" 2>/dev/null || cat "$OUT/steps.tsv"
  fi
  [[ -s $OUT/summary-error.log ]] || rm -f "$OUT/summary-error.log"
  if [[ ${CHECK_BUNDLE:-0} == 1 ]]; then
    (cd "$OUT" && tar -czf logs.tar.gz --exclude=summary.md --exclude=summary.json \
      --exclude=logs.tar.gz -- * && find . -maxdepth 1 -type f ! -name summary.md \
      ! -name summary.json ! -name logs.tar.gz -delete)
  fi
  echo "results: $OUT"
  exit "$rc"
}
# shellcheck disable=SC2317
on_signal() {
  say "interrupted: stopping the running step"
  [[ -n $CHILD ]] && echo "INTERRUPTED by a signal to check.sh" >>"$CHILD_LOG"
  stop_child
  record interrupted 1 "$SECONDS" "signal to check.sh${CHILD_LOG:+ during $(basename "$CHILD_LOG")}"
  finish
}
trap on_signal INT TERM

say "Kestrel GPU check: pack $PACK_GIT ($PACK_DATE), results in $OUT, budget ${BUDGET}s"
step_env
step_cuda_stack
step_smi
if ! nvidia-smi -L >/dev/null 2>&1; then
  say "no GPU visible: the CUDA steps run anyway and fail, each saying why"
fi
step_paths
step_tests
step_fault
step_compare_fixtures
for m in "${MODEL_LIST[@]}"; do
  step_model "$m"
done
finish
