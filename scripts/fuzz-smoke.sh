#!/usr/bin/env bash
# fuzz-smoke.sh - builds the libFuzzer targets (clang) and runs each for a short time.
#
#   scripts/fuzz-smoke.sh [SECONDS]     default 20 seconds per target (also: RT_FUZZ_SECONDS)
#
# Environment: RT_FUZZ_BUILD_DIR (default build-fuzz), RT_JOBS (default 2). Each target (every
# fuzz/fuzz_*.c: the remote-write decoder, the JSON string writer) writes its own seed corpus into
# the build directory first; the corpus grows across runs. A crash leaves the reproducer in the build directory and makes the
# script exit non-zero.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-${RT_FUZZ_SECONDS:-20}}
build=${RT_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
jobs=${RT_JOBS:-2}
case $build in /*) ;; *) build=$ROOT/$build ;; esac

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz-smoke: clang is not installed" >&2
  exit 1
fi

echo "== fuzz-smoke: building in $build"
mkdir -p "$build"
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$build" -DRT_FUZZ=ON -DRT_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/fuzz-configure.log" 2>&1 || {
  cat "$build/fuzz-configure.log"
  exit 1
}

targets=()
for f in "$ROOT"/fuzz/fuzz_*.c; do
  [ -e "$f" ] || continue
  targets+=("$(basename "$f" .c)")
done
if [ ${#targets[@]} = 0 ]; then
  echo "fuzz-smoke: no targets in fuzz/" >&2
  exit 1
fi
cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$build/fuzz-build.log" 2>&1 || {
  grep -E -B2 -A6 'error' "$build/fuzz-build.log" | head -60
  exit 1
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  mkdir -p "$corpus"
  RT_FUZZ_WRITE_SEEDS=$corpus "$build/$t"
  echo "== fuzz-smoke: $t for ${secs}s ($(ls "$corpus" | wc -l) inputs in the corpus)"
  if (cd "$build" && "./$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 "$corpus" >"$build/$t.log" 2>&1); then
    grep -E '^stat::number_of_executed_units|^#[0-9]+ +DONE' "$build/$t.log" | tail -2 || true
    echo "PASS $t"
  else
    tail -60 "$build/$t.log"
    echo "FAIL $t (reproducer: $(ls -t "$build"/crash-* "$build"/leak-* "$build"/timeout-* 2>/dev/null | head -1))"
    rc=1
  fi
done
exit $rc
