# lib.bash - helpers for the integration tests (sourced, not run).
#
# The tests run the real binaries on loopback, each in its own temporary directory and on free
# ports. Every wait polls a condition with a deadline. Processes started here are tracked by pid
# and stopped on exit.
#
# Environment (set by scripts/test.sh; defaults for running a test by hand from the repo root):
#   RINGTAIL_BIN  path of the ringtail binary    (build/ringtail)
#   LOADGEN_BIN   path of ringtail-loadgen       (build/ringtail-loadgen)
#   RT_KEEP_TMP=1 keep the temporary directory after the test

set -uo pipefail

IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export IT_DIR=$IT_ROOT/tests/integration
RINGTAIL_BIN=${RINGTAIL_BIN:-$IT_ROOT/build/ringtail}
LOADGEN_BIN=${LOADGEN_BIN:-$IT_ROOT/build/ringtail-loadgen}
IT_NAME=$(basename "$0" .sh)
IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rt-$IT_NAME.XXXXXX")
IT_PIDS=()
IT_CHECKS=0
IT_FAILS=0
RT_PID=
RT_PORT=
RT_URL=
RT_LOG=
RT_STARTS=0

it_log() { printf '[%s %s] %s\n' "$IT_NAME" "$(date +%H:%M:%S)" "$*"; }

# check DESCRIPTION COMMAND...: runs the command, counts and prints the outcome.
check() {
  local desc=$1
  shift
  IT_CHECKS=$((IT_CHECKS + 1))
  if "$@"; then
    printf '  ok   %s\n' "$desc"
    return 0
  fi
  IT_FAILS=$((IT_FAILS + 1))
  printf '  FAIL %s\n' "$desc"
  return 1
}

# ok / notok DESCRIPTION: records an outcome computed by the caller.
ok() { IT_CHECKS=$((IT_CHECKS + 1)); printf '  ok   %s\n' "$1"; }
notok() { IT_CHECKS=$((IT_CHECKS + 1)); IT_FAILS=$((IT_FAILS + 1)); printf '  FAIL %s\n' "$1"; }

# skip REASON: the test cannot run here (exit 77).
skip() { it_log "SKIP: $*"; exit 77; }

# finish: prints the tally and exits with its status.
finish() {
  it_log "$((IT_CHECKS - IT_FAILS)) passed, $IT_FAILS failed"
  [ "$IT_FAILS" = 0 ] && exit 0
  exit 1
}

it_cleanup() {
  local rc=$?
  local p
  for p in "${IT_PIDS[@]+"${IT_PIDS[@]}"}"; do
    kill -TERM "$p" 2>/dev/null
  done
  for p in "${IT_PIDS[@]+"${IT_PIDS[@]}"}"; do
    it_wait_exit "$p" 10 || kill -KILL "$p" 2>/dev/null
  done
  if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$RT_LOG" ] && [ -f "$RT_LOG" ]; then
    echo "--- last lines of $RT_LOG"
    tail -n 30 "$RT_LOG"
  fi
  if [ "${RT_KEEP_TMP:-0}" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "${CI:-}" ]; }; then
    echo "kept $IT_TMP"
  else
    rm -rf "$IT_TMP"
  fi
  exit "$rc"
}
trap it_cleanup EXIT
trap 'exit 130' INT TERM

# track PID: stop it when the test ends.
track() { IT_PIDS+=("$1"); }
untrack() {
  local keep=() p
  for p in "${IT_PIDS[@]+"${IT_PIDS[@]}"}"; do
    [ "$p" = "$1" ] || keep+=("$p")
  done
  IT_PIDS=("${keep[@]+"${keep[@]}"}")
}

# free_port: prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for TIMEOUT_S DESCRIPTION COMMAND...: polls COMMAND every 0.1s until it succeeds.
wait_for() {
  local timeout=$1 desc=$2
  shift 2
  local end=$((SECONDS + timeout))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$end" ]; then
      it_log "timed out after ${timeout}s waiting for: $desc"
      return 1
    fi
    sleep 0.1
  done
}

# it_wait_exit PID TIMEOUT_S: waits for a process to be gone.
it_wait_exit() {
  local pid=$1 end=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    # reap it if it is our child
    if ! ps -p "$pid" -o stat= 2>/dev/null | grep -qv Z; then
      wait "$pid" 2>/dev/null
      return 0
    fi
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.05
  done
  wait "$pid" 2>/dev/null
  return 0
}

http_ok() { curl -sf -o /dev/null --max-time 2 "$1"; }

# rt_start DATA_DIR [FLAGS...]: starts `ringtail -target=all` on a free port (reused across
# restarts in one test) and waits until /ready answers 200. Sets RT_PID, RT_PORT, RT_URL.
rt_start() {
  local dir=$1
  shift
  [ -x "$RINGTAIL_BIN" ] || { it_log "no ringtail binary at $RINGTAIL_BIN"; return 1; }
  RT_PORT=${RT_PORT:-$(free_port)}
  RT_URL=http://127.0.0.1:$RT_PORT
  RT_STARTS=$((RT_STARTS + 1))
  RT_LOG=$IT_TMP/ringtail.$RT_STARTS.log
  "$RINGTAIL_BIN" -target=all -server.http-listen-address=127.0.0.1 \
    -server.http-listen-port="$RT_PORT" -ingester.data-dir="$dir" "$@" >"$RT_LOG" 2>&1 &
  RT_PID=$!
  track "$RT_PID"
  local end=$((SECONDS + ${RT_START_TIMEOUT:-60}))
  while ! http_ok "$RT_URL/ready"; do
    if ! kill -0 "$RT_PID" 2>/dev/null; then
      wait "$RT_PID"
      it_log "ringtail exited during start-up (status $?); log $RT_LOG:"
      tail -n 20 "$RT_LOG"
      untrack "$RT_PID"
      return 1
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      it_log "ringtail not ready after ${RT_START_TIMEOUT:-60}s; log $RT_LOG:"
      tail -n 20 "$RT_LOG"
      return 1
    fi
    sleep 0.05
  done
}

# rt_kill9: SIGKILL, then reap.
rt_kill9() {
  kill -KILL "$RT_PID" 2>/dev/null
  wait "$RT_PID" 2>/dev/null
  untrack "$RT_PID"
}

# rt_stop: SIGTERM and wait (up to 30s) for a clean exit; returns the exit status.
rt_stop() {
  kill -TERM "$RT_PID" 2>/dev/null
  local end=$((SECONDS + 30))
  while kill -0 "$RT_PID" 2>/dev/null && [ "$(ps -p "$RT_PID" -o stat= 2>/dev/null | cut -c1)" != Z ]; do
    if [ "$SECONDS" -ge "$end" ]; then
      it_log "ringtail did not stop within 30s; killing it"
      kill -KILL "$RT_PID"
      break
    fi
    sleep 0.05
  done
  wait "$RT_PID"
  local rc=$?
  untrack "$RT_PID"
  return $rc
}

rt_alive() { kill -0 "$RT_PID" 2>/dev/null && [ "$(ps -p "$RT_PID" -o stat= 2>/dev/null | cut -c1)" != Z ]; }

# rt_get PATH [CURL ARGS...]: GET on ringtail, body to stdout; fails on non-2xx.
rt_get() {
  local path=$1
  shift
  curl -sf --max-time 30 "$@" "$RT_URL$path"
}
