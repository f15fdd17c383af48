#!/usr/bin/env bash
# test.sh - builds Ringtail and runs the whole test suite.
#
#   scripts/test.sh              Release build in build/, then every suite
#   scripts/test.sh -s           ASan+UBSan build in build-asan/ (also: RT_SANITIZE=1)
#   scripts/test.sh -t Debug     another CMAKE_BUILD_TYPE
#   scripts/test.sh -d DIR       another build directory
#   scripts/test.sh -k           skip the build (use what is in the build directory)
#   scripts/test.sh -o SUITES    only these suites, comma separated: unit,integration,promql,fuzz,
#                                docker
#   scripts/test.sh -i PATTERN   only integration tests whose file name matches PATTERN
#
# Suites, in order: unit (ctest: the criterion tests), integration (tests/integration/*.sh and
# tests/cluster/*.sh: real binaries over HTTP), promql (the conformance program over
# ../shared/promqltest and tests/promql/testdata), fuzz (a short libFuzzer run, when clang is
# installed; not in the sanitizer pass, which does not need it), docker (tests/docker/*.sh: the
# compose cluster built from the sources into images, and the README's quick start on a clean
# Debian container; only when a Docker engine is usable, and not in the sanitizer pass: they
# build and run Release binaries). RT_SUITES=unit,... does what -o does.
# The build is configured with -DRT_TESTS=ON: without criterion it stops and names the package.
# Exits non-zero when anything fails and ends with the line "N passed, N failed".
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

sanitize=${RT_SANITIZE:-0}
build_type=${RT_BUILD_TYPE:-}
build_dir=${RT_BUILD_DIR:-}
skip_build=0
only=${RT_SUITES:-unit,integration,promql,fuzz,docker}
itest_pattern=${RT_ITEST:-}
jobs=${RT_JOBS:-2}

while getopts "st:d:ko:i:h" o; do
  case $o in
    s) sanitize=1 ;;
    t) build_type=$OPTARG ;;
    d) build_dir=$OPTARG ;;
    k) skip_build=1 ;;
    o) only=$OPTARG ;;
    i) itest_pattern=$OPTARG ;;
    h) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done

if [ "$sanitize" = 1 ]; then
  build_type=${build_type:-Debug}
  build_dir=${build_dir:-build-asan}
  cmake_extra=(-DRT_SANITIZE=ON -DRT_TESTS=ON)
  # leaks are errors; a crash in a sanitizer build prints a report and exits non-zero
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
else
  build_type=${build_type:-Release}
  build_dir=${build_dir:-build}
  cmake_extra=(-DRT_SANITIZE=OFF -DRT_TESTS=ON)
fi
case $build_dir in /*) ;; *) build_dir=$ROOT/$build_dir ;; esac

passed=0
failed=0
failures=()
t_start=$SECONDS

say() { printf '== %s\n' "$*"; }
pass() { passed=$((passed + 1)); printf 'PASS %s\n' "$1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); printf 'FAIL %s\n' "$1"; }
want() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

summary() {
  echo
  say "summary ($build_type$([ "$sanitize" = 1 ] && echo ', ASan+UBSan'), $((SECONDS - t_start))s)"
  for f in "${failures[@]+"${failures[@]}"}"; do
    echo "  failed: $f"
  done
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit $?
}

# ---- build ----
if [ "$skip_build" = 0 ]; then
  say "configure $build_dir ($build_type, sanitize=$sanitize)"
  mkdir -p "$build_dir"
  if ! cmake -S "$ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" "${cmake_extra[@]}" >"$build_dir/configure.log" 2>&1; then
    cat "$build_dir/configure.log"
    fail "build: cmake configure"
    summary
  fi
  say "build (-j$jobs)"
  if ! cmake --build "$build_dir" -j"$jobs" >"$build_dir/build.log" 2>&1; then
    grep -E -B2 -A6 'error|Error' "$build_dir/build.log" | head -80
    fail "build"
    summary
  fi
  pass "build ($build_type)"
fi

export RINGTAIL_BIN=$build_dir/ringtail
export LOADGEN_BIN=$build_dir/ringtail-loadgen
export RT_BUILD_DIR=$build_dir
export RT_SANITIZE=$sanitize

# ---- unit tests ----
if want unit; then
  say "unit tests (ctest)"
  if (cd "$build_dir" && ctest --output-on-failure -j"$jobs" --timeout 300 2>&1 | tee "$build_dir/ctest.log"; exit "${PIPESTATUS[0]}"); then
    n=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$build_dir/ctest.log" || true)
    pass "unit tests ($n ctest suites)"
  else
    grep -E '^ *[0-9]+/[0-9]+ Test' "$build_dir/ctest.log" | grep -v Passed || true
    fail "unit tests"
  fi
fi

# ---- integration tests ----
if want integration; then
  say "integration tests (tests/integration, tests/cluster)"
  for t in "$ROOT"/tests/integration/*.sh "$ROOT"/tests/cluster/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    if [ -n "$itest_pattern" ] && [[ $name != *$itest_pattern* ]]; then
      continue
    fi
    say "integration: $name"
    t0=$SECONDS
    bash "$t"
    rc=$?
    if [ $rc = 0 ]; then
      pass "integration $name ($((SECONDS - t0))s)"
    elif [ $rc = 77 ]; then
      printf 'SKIP integration %s (see above)\n' "$name"
    else
      fail "integration $name (exit $rc)"
    fi
  done
fi

# ---- PromQL conformance ----
if want promql; then
  prog=$build_dir/promqltest_prog
  qdir=${RT_PROMQLTEST_DIR:-}
  if [ -z "$qdir" ]; then
    for d in "$ROOT/../shared/promqltest" "$ROOT/../../shared/promqltest"; do
      if [ -d "$d" ]; then qdir=$(cd "$d" && pwd); break; fi
    done
  fi
  if [ ! -x "$prog" ]; then
    echo "SKIP promql conformance: $prog not built"
  elif [ -z "$qdir" ]; then
    echo "SKIP promql conformance: no shared/promqltest next to the repository"
  else
    say "promql conformance ($qdir)"
    t0=$SECONDS
    if "$prog" "$qdir"; then
      pass "promql conformance ($((SECONDS - t0))s)"
    else
      fail "promql conformance"
    fi
  fi
  if [ -x "$prog" ]; then
    say "promql own test files (tests/promql/testdata)"
    if "$prog" --require-all "$ROOT/tests/promql/testdata"; then pass "promql own test files"; else fail "promql own test files"; fi
  fi
fi

# ---- fuzz smoke ----
if want fuzz && [ "$sanitize" != 1 ]; then
  if [ ! -x "$ROOT/scripts/fuzz-smoke.sh" ]; then
    echo "SKIP fuzz smoke: scripts/fuzz-smoke.sh not present"
  elif ! command -v clang >/dev/null 2>&1; then
    echo "SKIP fuzz smoke: clang not installed"
  else
    say "fuzz smoke"
    t0=$SECONDS
    if "$ROOT/scripts/fuzz-smoke.sh"; then
      pass "fuzz smoke ($((SECONDS - t0))s)"
    else
      fail "fuzz smoke"
    fi
  fi
fi

# ---- docker (compose cluster) ----
if want docker && [ "$sanitize" != 1 ]; then
  for t in "$ROOT"/tests/docker/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    if [ -n "$itest_pattern" ] && [[ $name != *$itest_pattern* ]]; then
      continue
    fi
    say "docker: $name"
    t0=$SECONDS
    mkdir -p "$build_dir"
    bash "$t" 2>&1 | tee "$build_dir/docker-$name.log"
    rc=${PIPESTATUS[0]}
    if [ $rc = 0 ] && grep -q '^SKIP: ' "$build_dir/docker-$name.log"; then
      printf 'SKIP docker %s (%s)\n' "$name" "$(sed -n 's/^SKIP: //p' "$build_dir/docker-$name.log" | head -1)"
    elif [ $rc = 0 ]; then
      pass "docker $name ($((SECONDS - t0))s)"
    else
      fail "docker $name (exit $rc, $((SECONDS - t0))s)"
    fi
  done
fi

summary
