#!/usr/bin/env bash
# Packs what benches/gpu/check.sh needs on a GPU machine that has no cargo: the release
# `kestrel` binary, every test executable of the workspace, tests/fixtures, the exporter and
# the check scripts, in the repo's own layout, into one ignored folder (default gpu-pack/).
#
#   benches/gpu/pack.sh [--no-fixtures] [--cuda-tests] [PACK_DIR]
#                                                        then, there: PACK_DIR/check.sh
#
# --no-fixtures leaves out the fixture model and reference files (19 MB): for a pack that
# travels inside a copy of the repo, whose tests/fixtures check.sh then uses (checked
# against the checksums recorded here).
# --cuda-tests packs only the test executables check.sh runs tests of (a test named
# *cuda*, or a target named cuda*), not the CPU-only ones: 48 MB of binaries become ~20,
# so that repo and pack fit a 64 MiB transfer. CHECK_ALL_TESTS=1 then has less to run.
#
# Builds first (`cargo test --workspace --release --no-run`, a no-op when up to date) and
# takes the executables from cargo's JSON messages, not from guessed file names.
#
# The test executables have two build-time absolute paths baked in: CARGO_MANIFEST_DIR
# (tests/common/mod.rs finds the fixtures under it) and CARGO_BIN_EXE_kestrel (cli.rs and
# cuda.rs run that binary). pack-info/pack.env records both; check.sh makes them resolve on
# the GPU machine (a symlink to the pack where the path is absent; see README.md).
#
# Env: PACK_STRIP=0 keeps symbols in the binaries (default: stripped, for size).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FIXTURE_FILES=1 CUDA_TESTS_ONLY=0
while [[ ${1:-} == --* ]]; do
  case $1 in
    --no-fixtures) FIXTURE_FILES=0 ;;
    --cuda-tests) CUDA_TESTS_ONLY=1 ;;
    *) echo "pack.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
PACK=$(realpath -m "${1:-$ROOT/gpu-pack}")
PACKAGES="kestrel-cli kestrel kestrel-kernels kestrel-loader"

die() { echo "pack.sh: $*" >&2; exit 1; }
for tool in cargo python3; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
cd "$ROOT"

# Refuse to wipe a folder that is not an earlier (or half-made) pack.
is_pack() { [[ -f $1/pack-info/pack.env || -z $(ls -A "$1") ]]; }
for d in "$PACK" "$PACK.partial"; do
  if [[ -e $d ]]; then
    is_pack "$d" || die "$d exists and is not a pack (no pack-info/pack.env): not touching it"
  fi
done

meta=$(cargo metadata --no-deps --format-version 1)
read -r BUILD_ROOT TARGET_DIR < <(python3 -c '
import json, sys
m = json.load(sys.stdin)
print(m["workspace_root"], m["target_directory"])' <<<"$meta")

echo "building: cargo test --workspace --release --no-run" >&2
msgs=$(mktemp)
trap 'rm -f "$msgs"' EXIT
cargo test --workspace --release --no-run --message-format=json >"$msgs" \
  || die "cargo test --no-run failed (see the errors above)"

# One line per artifact: package, kind, target, executable, manifest dir. Test executables
# are the artifacts with profile.test; the kestrel binary is the `bin` one without it.
listing=$(python3 - "$msgs" "$PACKAGES" <<'EOF'
import json, os, sys
want = set(sys.argv[2].split())
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    pid = m["package_id"]  # "path+file:///…/kernels#kestrel-kernels@0.1.0" or "NAME VER (…)"
    name = pid.split("#", 1)[1].split("@")[0] if "#" in pid else pid.split(" ")[0]
    if "#" in pid and "@" not in pid.split("#", 1)[1]:  # "…/kestrel#0.1.0": dir name is the package
        name = os.path.basename(pid.split("#", 1)[0])
    if name not in want:
        continue
    kind = m["target"]["kind"][0]
    if not m["profile"]["test"] and kind != "bin":
        continue
    role = "test" if m["profile"]["test"] else "bin"
    print("\t".join([role, name, kind, m["target"]["name"], m["executable"],
                     os.path.dirname(m["manifest_path"])]))
EOF
)

# Made in PACK.partial, renamed to PACK once complete: a failed run leaves no half pack.
FINAL=$PACK
PACK=$FINAL.partial
rm -rf "$PACK"
mkdir -p "$PACK/pack-info" "$PACK/target/release/deps" "$PACK/tests" "$PACK/loader/python" \
  "$PACK/benches/gpu"
echo "# incomplete" >"$PACK/pack-info/pack.env"
BUILT_BIN=""
: >"$PACK/pack-info/tests.tsv"
while IFS=$'\t' read -r role pkg kind target exe mdir; do
  [[ -n $role ]] || continue
  rel=${mdir#"$BUILD_ROOT"}
  rel=${rel#/}
  rel=${rel:-.}
  if [[ $role == bin ]]; then
    [[ $pkg == kestrel-cli && $target == kestrel ]] || continue
    BUILT_BIN=$exe
    cp "$exe" "$PACK/target/release/kestrel"
  else
    # check.sh runs the tests whose names hold "cuda", and every test of a cuda* target.
    # grep reads the whole list: with -q it would stop at the first match, the test binary
    # would die of SIGPIPE writing the rest, and pipefail would drop the executable.
    if ((CUDA_TESTS_ONLY)) && [[ $target != cuda* ]] && ! "$exe" --list 2>/dev/null | grep cuda >/dev/null; then
      continue
    fi
    cp "$exe" "$PACK/target/release/deps/"
    mkdir -p "$PACK/$rel"
    # id, executable (relative to the pack), manifest dir (relative to the build root)
    printf '%s/%s/%s\t%s\t%s\n' "$pkg" "$kind" "$target" \
      "target/release/deps/$(basename "$exe")" "$rel" >>"$PACK/pack-info/tests.tsv"
  fi
done <<<"$listing"
[[ -n $BUILT_BIN ]] || BUILT_BIN=$TARGET_DIR/release/kestrel
[[ -x $PACK/target/release/kestrel ]] || cp "$BUILT_BIN" "$PACK/target/release/kestrel" \
  || die "no kestrel binary at $BUILT_BIN: run cargo build --release"
[[ -s $PACK/pack-info/tests.tsv ]] || die "cargo reported no test executables"

# The path of kestrel that cli.rs and cuda.rs run is a string in their executables. Cargo
# does not rebuild a moved tree, so after a move the executables hold the old path.
baked=0
while IFS=$'\t' read -r id exe _; do
  [[ $id == kestrel-cli/test/* ]] && grep -q -a -F "$BUILT_BIN" "$PACK/$exe" && baked=1
done <"$PACK/pack-info/tests.tsv"
if ((!baked)); then
  echo "warning: no kestrel test executable holds the path $BUILT_BIN: built before the" \
    "tree moved? Then: cargo clean --release -p kestrel-cli, and pack again" >&2
fi

if [[ ${PACK_STRIP:-1} == 1 ]] && command -v strip >/dev/null; then
  strip "$PACK/target/release/kestrel" "$PACK"/target/release/deps/*
fi

# Fixtures (models, references and the scripts that made them) and their checksums, so that
# check.sh can tell whether a tree already at the build path holds the same files.
mkdir -p "$PACK/tests/fixtures"
if ((FIXTURE_FILES)); then
  find tests/fixtures -maxdepth 1 -type f ! -name '*.pyc' -exec cp {} "$PACK/tests/fixtures/" \;
else # the scripts only: models.py imports fixture_models.py
  find tests/fixtures -maxdepth 1 -type f \( -name '*.py' -o -name '*.md' \) \
    -exec cp {} "$PACK/tests/fixtures/" \;
fi
(cd tests/fixtures && sha256sum -- *.safetensors) >"$PACK/pack-info/fixtures.sha256"
cp loader/python/kestrel_export.py loader/python/kestrel_graph.py "$PACK/loader/python/"
cp "$HERE"/*.sh "$HERE"/*.py "$HERE"/requirements.txt "$HERE"/README.md "$PACK/benches/gpu/"
cat >"$PACK/check.sh" <<'EOF'
#!/usr/bin/env bash
# The GPU check of this pack: see benches/gpu/README.md.
exec bash "$(dirname "${BASH_SOURCE[0]}")/benches/gpu/check.sh" "$@"
EOF
chmod +x "$PACK/check.sh" "$PACK"/benches/gpu/*.sh

{
  printf 'BUILD_ROOT=%q\n' "$BUILD_ROOT"
  printf 'BUILT_BIN=%q\n' "$BUILT_BIN"
  printf 'PACK_GIT=%q\n' "$(git describe --always --dirty 2>/dev/null || echo unknown)"
  printf 'PACK_DATE=%q\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'PACK_RUSTC=%q\n' "$(rustc --version 2>/dev/null || echo unknown)"
} >"$PACK/pack-info/pack.env"

rm -rf "$FINAL"
mv "$PACK" "$FINAL"
PACK=$FINAL
n=$(wc -l <"$PACK/pack-info/tests.tsv")
size=$(du -sm "$PACK" | cut -f1)
nfix=$(find "$PACK/tests/fixtures" -maxdepth 1 -name '*.safetensors' | wc -l)
echo "packed $n test executables, kestrel and $nfix fixture files into $PACK: ${size} MiB"
((FIXTURE_FILES)) || echo "no fixture files: check.sh will use $PACK/../tests/fixtures"
echo "built at $BUILD_ROOT; the tests expect fixtures at $BUILD_ROOT/tests/fixtures and kestrel at $BUILT_BIN"
if ((size > 40)); then
  echo "warning: ${size} MiB; with the repo beside it, a 64 MiB transfer limit is close" >&2
fi
echo "run there: $PACK/check.sh   (results in ./gpu-out, or OUT=DIR)"
