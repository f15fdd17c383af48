#!/usr/bin/env bash
# zone_failure.sh - the compose cluster (docker-compose.yml) through the loss of zones, with a
# writer tracking which requests were acknowledged (through the distributors' entry point) and a
# monitor querying through the queriers' entry point.
#
#   (a) `docker compose stop` both ingesters of zone b: they leave the ring (LEAVING), flush and
#       exit 0 within the stop grace period; writes and reads go on with zones a and c.
#   (b) with b still down, zone c is cut off the network (`docker network disconnect`): writes
#       must now fail with 5xx (no quorum), never be acknowledged; reads fail, never partial.
#   (c) zone c is reconnected, then zone b started again: writes are acknowledged again.
#   (d) scripts/rolling-restart.sh restarts every ingester, one zone at a time, while writing:
#       no write may fail.
# After each step every acknowledged sample must be read back through the queriers; each step
# prints samples sent / acknowledged / queryable and how long writes and queries failed.
#
# Needs a usable Docker engine with compose; without one it prints "SKIP: <reason>" and exits 0.
# Builds the ringtail and haproxy images first (layer cache: fast when they are built already)
# and runs the Ringtail services and lb of docker-compose.yml (not Prometheus and Alertmanager). Environment: BASE
# (base image, default: the local one from scripts/docker-base.sh on Debian), RT_KEEP=1 keeps
# the cluster running after the test.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
T_START=$SECONDS

skip() { echo "SKIP: $*"; exit 0; }
command -v docker >/dev/null 2>&1 || skip "no docker command"
timeout 20 docker info >/dev/null 2>&1 || skip "the Docker engine is not reachable (docker info fails)"
. "$ROOT/scripts/docker-lib.bash"
[ ${#DC[@]} -gt 0 ] || skip "neither 'docker compose' nor docker-compose is installed"
command -v python3 >/dev/null 2>&1 || skip "no python3"
command -v curl >/dev/null 2>&1 || skip "no curl"

failures=0
ok() { printf 'ok - %s\n' "$*"; }
notok() { printf 'not ok - %s\n' "$*"; failures=$((failures + 1)); }
die() { notok "$*"; exit 1; }

export COMPOSE_PROJECT_NAME=rtzonefail$$
# any free host ports: the test must not collide with a cluster the user runs
export RT_WRITE_PORT= RT_READ_PORT= RT_LB_PORT= RT_PROMETHEUS_PORT= RT_ALERTMANAGER_PORT=
TMP=$(mktemp -d /tmp/rt-zonefail.XXXXXX)
TOOL=(python3 "$HERE/dockertool.py")
PIDS=()
cleanup() {
  local rc=$? p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null; done
  if [ "${RT_KEEP:-0}" = 1 ]; then
    echo "RT_KEEP=1: cluster left running as compose project $COMPOSE_PROJECT_NAME ($TMP)"
  else
    if [ $rc != 0 ] || [ $failures != 0 ]; then
      dc logs --no-color --tail 30 "${RINGTAIL_SERVICES[@]}" 2>&1 | tail -150
    fi
    dc down -v -t 5 >/dev/null 2>&1
    rm -rf "$TMP"
  fi
  echo "zone_failure.sh: $((SECONDS - T_START))s"
  exit $rc
}
trap cleanup EXIT

# ---- images and cluster ----
t=$SECONDS
choose_base || die "base image"
# scripts/test.sh's Release binary goes into the image as it is (no second compile) when this
# host can take it (see prebuilt_ok in scripts/docker-lib.bash); RT_DOCKER_FROM_SOURCE=1 compiles
# in the image instead
[ "${RT_DOCKER_FROM_SOURCE:-0}" = 1 ] || export RT_PREBUILT=${RT_PREBUILT:-${RINGTAIL_BIN:-}}
# the cluster without its meta-monitoring (Prometheus, Alertmanager): the test needs the
# Ringtail containers and the entry points only, and it keeps the CI build short
build_images haproxy || die "image build"
SERVICES=("${RINGTAIL_SERVICES[@]}" lb)
ok "images built on $BASE ($((SECONDS - t))s)"
t=$SECONDS
dc up -d --no-build "${SERVICES[@]}" >"$TMP/up.log" 2>&1 || { cat "$TMP/up.log"; die "compose up"; }
wait_healthy 180 "${SERVICES[@]}" || die "every container healthy"
entry_urls || die "entry points published"
wait_ring_active 60 "${INGESTERS[@]}" || die "six ingesters ACTIVE"
ok "cluster healthy in $((SECONDS - t))s (write $WRITE_URL, read $READ_URL)"

NET=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$(cid ingester-c-1)")
WLOG=$TMP/writer.log MLOG=$TMP/monitor.log
: >"$WLOG"; : >"$MLOG"
"${TOOL[@]}" writer "$WRITE_URL" "$WLOG" --series 50 --interval 0.05 &
PIDS+=($!)
"${TOOL[@]}" monitor "$READ_URL" "$MLOG" &
PIDS+=($!)

now() { date +%s.%N; }
acks() { grep -c '^A' "$WLOG"; }
# wait_acks N DEADLINE: N more acknowledged writes
wait_acks() {
  local want=$(( $(acks) + $1 )) end=$((SECONDS + $2))
  while [ "$(acks)" -lt "$want" ]; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}
# check_all LABEL: every acknowledged sample so far is read back through the queriers
check_all() {
  local out end=$((SECONDS + 30))
  # a read may fail while the ring settles (e.g. right after a restart): retry, with a deadline
  while :; do
    if out=$("${TOOL[@]}" check "$READ_URL" "$WLOG" 50 2>"$TMP/check.err"); then
      read -r s a q m <<<"$out"
      ok "$1: every acknowledged sample queryable: sent=$s acknowledged=$a queryable=$q"
      return 0
    fi
    [ $SECONDS -lt $end ] || break
    sleep 1
  done
  read -r s a q m <<<"${out:-? ? ? ?}"
  cat "$TMP/check.err"
  notok "$1: sent=$s acknowledged=$a queryable=$q missing=$m"
}
report() { printf '   %s: %s\n' "$1" "$("${TOOL[@]}" window "$WLOG" "$MLOG" "$2" "$3")"; }
ring_state() {
  ring_json | python3 -c '
import json, sys
for i in json.load(sys.stdin)["instances"]:
    if i["id"] == sys.argv[1]:
        print(i["state"])' "$1"
}

wait_acks 40 30 || die "writes acknowledged before the first step"
t_warm=$(now)

# ---- (a) zone b stopped ----
ta=$(now); t=$SECONDS
dc stop ingester-b-1 ingester-b-2 >/dev/null 2>&1
stop_s=$((SECONDS - t))
for s in ingester-b-1 ingester-b-2; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$(cid $s)")
  logs=$(dc logs --no-color "$s" 2>&1)
  if [ "$code" = 0 ] && grep -q 'ingester flushed' <<<"$logs" && grep -q 'stopped' <<<"$logs"; then
    ok "(a) $s flushed and exited 0 on SIGTERM (stop took ${stop_s}s, grace 60s)"
  else
    grep -iE 'flush|stop|error' <<<"$logs" | tail -5
    notok "(a) $s clean shutdown (exit code $code)"
  fi
done
st=$(ring_state ingester-b-1)
[ "$st" = LEAVING ] && ok "(a) ingester-b-1 is LEAVING in the ring" || notok "(a) ingester-b-1 state after stop: $st"
wait_acks 60 30 && ok "(a) writes acknowledged with zone b down" || notok "(a) writes acknowledged with zone b down"
check_all "(a) zone b down"
tb=$(now)
report "(a) zone b down" "$ta" "$tb"

# ---- (b) zone c cut off as well ----
for s in ingester-c-1 ingester-c-2; do
  docker network disconnect "$NET" "$(cid $s)" || notok "(b) disconnect $s"
done
# from the first failed write on, nothing may be acknowledged until c is back
end=$((SECONDS + 30))
first=
while [ $SECONDS -lt $end ]; do
  first=$(awk -v t="$tb" '$1 == "U" && $4 >= t {print $4; exit}' "$WLOG")
  [ -n "$first" ] && break
  sleep 0.2
done
[ -n "$first" ] || die "(b) writes fail once zone c is cut off"
# at least 10 more attempts, all refused
end=$((SECONDS + 60))
while [ "$(awk -v t="$first" '$4 > t' "$WLOG" | wc -l)" -lt 10 ] && [ $SECONDS -lt $end ]; do sleep 0.5; done
tc=$(now)
read -r n_after n_ack n_5xx <<<"$(awk -v t="$first" '$4 >= t {n++; if ($1 == "A") a++; if ($1 == "U" && $5 >= 500 && $5 < 600) f++} END {print n+0, a+0, f+0}' "$WLOG")"
if [ "$n_after" -ge 10 ] && [ "$n_ack" = 0 ] && [ "$n_5xx" = "$n_after" ]; then
  ok "(b) with zones b and c gone every write fails with 5xx: $n_after attempts, 0 acknowledged"
else
  notok "(b) writes without quorum: $n_after attempts, $n_ack acknowledged, $n_5xx answered 5xx"
fi
# a read must not answer from zone a alone: 503 once the querier gave up on c (a cut-off zone
# times out, an unhealthy one fails at once), never 200
end=$((SECONDS + 60)) code=000
while [ $SECONDS -lt $end ]; do
  code=$(curl -s -o "$TMP/q.json" -w '%{http_code}' --max-time 30 "$READ_URL/api/v1/query" \
    --data-urlencode "query=count(rt_docker_test)")
  case $code in 5??|200) break ;; esac
done
case $code in
  5??) ok "(b) reads fail with $code rather than answer in part" ;;
  *) notok "(b) a read with only zone a left answered $code: $(head -c 300 "$TMP/q.json")" ;;
esac
report "(b) zones b and c gone" "$tb" "$tc"

# ---- (c) c reconnected, b started ----
for s in ingester-c-1 ingester-c-2; do
  docker network connect --alias "$s" "$NET" "$(cid $s)" || notok "(c) reconnect $s"
done
wait_acks 40 60 && ok "(c) writes acknowledged again once zone c is back" ||
  notok "(c) writes acknowledged again once zone c is back"
check_all "(c) zone c back, zone b down"
dc start ingester-b-1 ingester-b-2 >/dev/null 2>&1
wait_healthy 90 ingester-b-1 ingester-b-2 || notok "(c) zone b healthy again"
wait_ring_active 60 "${INGESTERS[@]}" && ok "(c) all six ingesters ACTIVE again" ||
  notok "(c) all six ingesters ACTIVE again"
wait_acks 40 30 || notok "(c) writes acknowledged with every zone back"
check_all "(c) every zone back"
td=$(now)
report "(c) zone c reconnected, zone b restarted" "$tc" "$td"

# ---- (d) rolling restart while writing ----
t=$SECONDS
if "$ROOT/scripts/rolling-restart.sh" >"$TMP/rolling.log" 2>&1; then
  ok "(d) rolling restart of the six ingesters ($((SECONDS - t))s)"
else
  cat "$TMP/rolling.log"
  notok "(d) rolling restart"
fi
wait_acks 20 30 || notok "(d) writes acknowledged after the rolling restart"
te=$(now)
n_fail=$(awk -v a="$td" -v b="$te" '$1 == "U" && $4 >= a && $4 < b' "$WLOG" | wc -l)
[ "$n_fail" = 0 ] && ok "(d) no write failed during the rolling restart" ||
  notok "(d) $n_fail writes failed during the rolling restart"
check_all "(d) after the rolling restart"
report "(d) rolling restart" "$td" "$te"
report "whole run" "$t_warm" "$te"

[ $failures = 0 ] && echo "zone_failure: all checks passed" || echo "zone_failure: $failures checks failed"
[ $failures = 0 ]
