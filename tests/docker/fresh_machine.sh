#!/usr/bin/env bash
# fresh_machine.sh - the README's "Quick start (Debian 12)" on a clean Debian 12 machine: a
# container from the local base image (scripts/docker-base.sh: debootstrap minbase, nothing
# installed) holding the repository's tracked files (git ls-files) and ../shared/promqltest.
# The commands are read out of README.md's ```sh blocks under that heading, not restated here:
#
#   (1) the first block (scripts/run.sh) runs until Ringtail logs "Ringtail is ready"; then,
#       from the host through the published port, a remote-write, an instant query and an
#       /api/v1/series call must succeed and return the series written. The run build must have
#       installed no test package (libcriterion-dev absent) and a configure with -DRT_TESTS=ON
#       must then fail naming the missing package. SIGTERM stops Ringtail with exit status 0.
#   (2) the second block (install-deps.sh && test.sh) runs with RT_SUITES=unit in its
#       environment, which scripts/test.sh honours: the full install, the build and the unit
#       suites; the integration, conformance, fuzz and docker suites stay with the host's run.
#
# Needs a usable Docker engine; without one it prints "SKIP: <reason>" and exits 0. The container
# reaches the Debian mirror (apt-get), so each run downloads the packages afresh. Environment:
# BASE (base image, default: the local one from scripts/docker-base.sh on Debian), RT_KEEP=1
# keeps the container afterwards, RT_FRESH_READY_S / RT_FRESH_TEST_S the deadlines of (1) and
# (2) in seconds (default 1200 and 1800).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
T_START=$SECONDS
SECTION="Quick start (Debian 12)"

skip() { echo "SKIP: $*"; exit 0; }
command -v docker >/dev/null 2>&1 || skip "no docker command"
timeout 20 docker info >/dev/null 2>&1 || skip "the Docker engine is not reachable (docker info fails)"
. "$ROOT/scripts/docker-lib.bash"
command -v python3 >/dev/null 2>&1 || skip "no python3"
command -v git >/dev/null 2>&1 || skip "no git"

failures=0
ok() { printf 'ok - %s\n' "$*"; }
notok() { printf 'not ok - %s\n' "$*"; failures=$((failures + 1)); }
die() { notok "$*"; exit 1; }

NAME=rtfresh$$
TMP=$(mktemp -d /tmp/rt-fresh.XXXXXX)
TOOL=(python3 "$HERE/dockertool.py")
RUN_PID=
# stamp: prefixes each line with the seconds since it started; the README commands' output is
# kept that way, and their phases are timed from it (at PATTERN LOG: the first matching line's)
stamp() { local t0=$SECONDS l; while IFS= read -r l; do printf '%d %s\n' $((SECONDS - t0)) "$l"; done; }
at() { grep -m1 -E "^[0-9]+ .*($1)" "$2" | cut -d' ' -f1; }
# the exit status of a README command, which it logs last ("exit N")
status_of() { sed -n 's/^[0-9]* exit \([0-9]*\)$/\1/p' "$1" | tail -1; }
cleanup() {
  local rc=$?
  [ -n "$RUN_PID" ] && kill "$RUN_PID" 2>/dev/null
  if [ $rc != 0 ] || [ $failures != 0 ]; then
    for f in run test; do
      [ -s "$TMP/$f.log" ] && { echo "--- last lines of the README command's output ($f)"; tail -40 "$TMP/$f.log"; }
    done
  fi
  if [ "${RT_KEEP:-0}" = 1 ]; then
    echo "RT_KEEP=1: container $NAME left running ($TMP)"
  else
    docker rm -f "$NAME" >/dev/null 2>&1
    rm -rf "$TMP"
  fi
  echo "fresh_machine.sh: $((SECONDS - T_START))s"
  exit $rc
}
trap cleanup EXIT

# ---- the README's commands ----
mapfile -d '' CMDS < <("${TOOL[@]}" readme-commands "$ROOT/README.md" "$SECTION")
[ ${#CMDS[@]} = 2 ] || die "README.md has two \`\`\`sh blocks under '## $SECTION' (found ${#CMDS[@]})"
ok "README commands: (1) ${CMDS[0]}  (2) ${CMDS[1]}"

# ---- a clean machine with the tracked files ----
t=$SECONDS
choose_base || die "base image"
docker run -d --name "$NAME" -p 127.0.0.1::9009 "$BASE" sleep infinity >/dev/null ||
  die "start a container from $BASE"
# the shared PromQL test files the unit suites read next to the repository, when present
shared=
for d in "$ROOT/../shared" "$ROOT/../../shared"; do
  [ -d "$d/promqltest" ] && { shared=$(cd "$d" && pwd); break; }
done
(cd "$ROOT" && git ls-files -z | tar --null -T - -cf -) |
  docker exec -i "$NAME" bash -c 'mkdir -p /src/ringtail && tar -xf - -C /src/ringtail' ||
  die "copy the tracked files into the container"
if [ -n "$shared" ]; then
  tar -C "$shared" -cf - promqltest |
    docker exec -i "$NAME" bash -c 'mkdir -p /src/shared && tar -xf - -C /src/shared' ||
    die "copy $shared/promqltest into the container"
fi
n=$(docker exec "$NAME" find /src/ringtail -type f | wc -l)
ok "container $NAME from $BASE with the $n tracked files${shared:+ and shared/promqltest} ($((SECONDS - t))s)"

# ---- (1) the first command, until Ringtail is ready ----
t=$SECONDS
# $$ of this shell is the README command's process: bash runs a lone command with exec, and
# scripts/run.sh execs ringtail, so SIGTERM to it reaches Ringtail
{
  docker exec -w /src/ringtail "$NAME" bash -c 'echo $$ >/tmp/run.pid; exec bash -c "$1"' _ "${CMDS[0]}"
  echo "exit $?"
} 2>&1 | stamp >"$TMP/run.log" &
RUN_PID=$!
end=$((SECONDS + ${RT_FRESH_READY_S:-1200}))
until grep -q 'Ringtail is ready' "$TMP/run.log"; do
  kill -0 "$RUN_PID" 2>/dev/null || die "(1) '${CMDS[0]}' exited with status $(status_of "$TMP/run.log") before Ringtail was ready"
  [ $SECONDS -lt $end ] || die "(1) Ringtail not ready after ${RT_FRESH_READY_S:-1200}s"
  sleep 1
done
t_inst=$(at 'install-deps: (done|all)' "$TMP/run.log") t_built=$(at 'Linking C executable ringtail$' "$TMP/run.log")
ok "(1) '${CMDS[0]}': Ringtail ready after $((SECONDS - t))s (install ${t_inst:-?}s, build until ${t_built:-?}s)"
hp=$(docker port "$NAME" 9009 | head -1)
URL=http://${hp/0.0.0.0/127.0.0.1}
if out=$("${TOOL[@]}" roundtrip "$URL" 2>&1); then
  ok "(1) from the host ($URL): $out"
else
  notok "(1) remote-write, query and series from the host ($URL): $out"
fi
if docker exec "$NAME" dpkg-query -W -f='${db:Status-Status}' libcriterion-dev 2>/dev/null | grep -q '^installed'; then
  notok "(1) the run build installed libcriterion-dev, a test package"
else
  ok "(1) the run build installed no test package (libcriterion-dev absent)"
fi
if docker exec "$NAME" cmake -S /src/ringtail -B /tmp/rt-tests-on -DRT_TESTS=ON >"$TMP/on.log" 2>&1; then
  notok "(1) a configure with -DRT_TESTS=ON succeeded without criterion"
elif grep -q 'libcriterion-dev' "$TMP/on.log"; then
  ok "(1) without criterion, -DRT_TESTS=ON fails naming libcriterion-dev"
else
  tail -20 "$TMP/on.log"
  notok "(1) -DRT_TESTS=ON without criterion fails without naming the package"
fi
docker exec "$NAME" bash -c 'kill -TERM "$(cat /tmp/run.pid)"' || notok "(1) SIGTERM to Ringtail"
wait "$RUN_PID"
RUN_PID=
rc=$(status_of "$TMP/run.log")
if [ $rc = 0 ] && grep -q 'msg="stopped"' "$TMP/run.log"; then
  ok "(1) Ringtail stopped on SIGTERM with status 0"
else
  notok "(1) Ringtail on SIGTERM: exit status $rc"
fi

# ---- (2) the second command: install, build, unit suites ----
t=$SECONDS
{
  timeout "${RT_FRESH_TEST_S:-1800}" \
    docker exec -w /src/ringtail -e RT_SUITES=unit "$NAME" bash -c "${CMDS[1]}"
  echo "exit $?"
} 2>&1 | stamp >"$TMP/test.log"
rc=$(status_of "$TMP/test.log")
grep -E '^[0-9]+ ((PASS|FAIL|SKIP) |[0-9]+ passed, [0-9]+ failed)' "$TMP/test.log" | sed 's/^[0-9]* /   /'
if [ "$rc" = 0 ] && grep -qE '^[0-9]+ PASS unit tests' "$TMP/test.log"; then
  t_inst=$(at 'install-deps: (done|all)' "$TMP/test.log") t_built=$(at 'PASS build' "$TMP/test.log")
  ok "(2) RT_SUITES=unit '${CMDS[1]}': install, build and unit suites passed in $((SECONDS - t))s (install ${t_inst:-?}s, build until ${t_built:-?}s)"
else
  notok "(2) RT_SUITES=unit '${CMDS[1]}': exit status $rc after $((SECONDS - t))s"
fi

[ $failures = 0 ] && echo "fresh_machine: all checks passed" || echo "fresh_machine: $failures checks failed"
[ $failures = 0 ]
