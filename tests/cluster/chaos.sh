#!/usr/bin/env bash
# chaos.sh - zone-loss survival of a real local cluster (scripts/cluster.sh: 3 zones x 2
# ingesters, 2 distributors, 2 queriers, RF 3), while ringtail-loadgen writes continuously in its
# verifying mode (every request logged as acknowledged or not) through one distributor and a
# monitor queries a querier four times a second for a complete answer.
#
#   (a) kill -9 both ingesters of zone a: writes keep succeeding, queries keep answering
#       completely; with the zone still down, every acknowledged sample is read back through the
#       querier (ringtail-loadgen --check).
#   (b) start zone a again: its ingesters are ACTIVE and take writes again.
#   (c) kill one ingester in zone a and one in zone b: series whose replicas were both lost get
#       5xx; writes are acknowledged again once one of them is back; nothing acknowledged is lost.
#   (d) SIGSTOP zone c (a partition as the others see it), then SIGCONT.
#   (e) a third ingester joins zone a while writing: it takes the series that move to it, and
#       every acknowledged sample, old and new, is still read back.
# Prints for each step: samples sent, acknowledged, read back afterwards, failed writes and
# queries and for how long. Every wait polls a condition with a deadline.
source "$(dirname "$0")/../integration/lib.bash"

[ -x "$RINGTAIL_BIN" ] || skip "no $RINGTAIL_BIN"
[ -x "$LOADGEN_BIN" ] || skip "no $LOADGEN_BIN"
command -v python3 >/dev/null || skip "no python3"

HERE=$(cd "$(dirname "$0")" && pwd)
TOOL="python3 $HERE/chaostool.py"
CLUSTER=$IT_ROOT/scripts/cluster.sh
export RT_CLUSTER_DIR=$IT_TMP/cluster
export RT_BUILD_DIR=$(dirname "$RINGTAIL_BIN")
export RT_HEARTBEAT_TIMEOUT=4s
SERIES=300

cluster() { "$CLUSTER" "$@"; }
trap 'rc=$?; "$CLUSTER" down >/dev/null 2>&1; (exit $rc); it_cleanup' EXIT

# a free block of ports for the cluster
up=
# (below the ephemeral port range; a port taken meanwhile makes a process exit: try another block)
for try in 1 2 3 4 5; do
  export RT_CLUSTER_PORT=$((20000 + (RANDOM % 120) * 100))
  if up=$(cluster up 2>"$IT_TMP/up.err"); then
    break
  fi
  cat "$IT_TMP/up.err"
  cluster down >/dev/null 2>&1
  rm -rf "$RT_CLUSTER_DIR"
  up=
done
[ -n "$up" ] || { cat "$IT_TMP/up.err"; notok "the cluster starts"; finish; }
ok "the cluster starts: $up"
DIST=$(sed -n 's/.*distributor=\([^ ]*\).*/\1/p' <<<"$up")
QRY=$(sed -n 's/.*querier=\([^ ]*\).*/\1/p' <<<"$up")

vlog=$IT_TMP/verify.log
mon=$IT_TMP/monitor.log
: >"$vlog"
"$LOADGEN_BIN" --url "$DIST/api/v1/push" --series $SERIES --samples-per-request 150 \
  --concurrency 3 --rate 3000 --duration 600 --step 1000 \
  --start-ts $(( $(date +%s) * 1000 - 3600 * 1000 )) --max-retries 0 --timeout 8000 \
  --verify-log "$vlog" >"$IT_TMP/loadgen.out" 2>&1 &
LG=$!
track $LG
$TOOL monitor "$vlog" "$QRY" $SERIES "$mon" &
MON=$!
track $MON

acked() { grep -c '^A' "$vlog"; }
unacked() { grep -c '^U' "$vlog"; }
acked_beyond() { [ "$(acked)" -ge "$1" ]; }
unacked_beyond() { [ "$(unacked)" -ge "$1" ]; }
# more acknowledged requests than now + N, within T seconds
acks_continue() { local want=$(( $(acked) + $2 )); wait_for "$1" "$2 more acknowledged writes" acked_beyond "$want"; }

ring_state() { # ID -> STATE[,unhealthy] as the querier's ring says
  curl -sf --max-time 2 "$QRY/ring?format=json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
for i in r["instances"]:
    if i["id"] == sys.argv[1]:
        print(i["state"] + ("" if i["healthy"] else ",unhealthy"))' "$1"
}
is_state() { [ "$(ring_state "$1")" = "$2" ]; }
appended() { # HTTP_PORT -> samples appended by that ingester
  curl -sf --max-time 2 "http://127.0.0.1:$1/metrics" | awk '/^ringtail_ingester_samples_appended_total/ {print $2}'
}
grows() { local v; v=$(appended "$1"); [ -n "$v" ] && python3 -c "import sys; sys.exit(0 if float('$v') > float('$2') else 1)"; }

# verify STEP: reads every loadgen sample back and checks it against the log.
verify() {
  local out
  out=$($TOOL dump "$vlog" "$QRY" "$IT_TMP/dump.$1" 2>&1)
  QUERIED=$(sed -n 's/queried \([0-9]*\) samples/\1/p' <<<"$out")
  if [ -z "$QUERIED" ]; then
    echo "$out"
    notok "$1: every acknowledged sample is queryable (the read failed)"
    return 1
  fi
  "$LOADGEN_BIN" --check "$vlog.split" --dump "$IT_TMP/dump.$1" >"$IT_TMP/check.$1" 2>&1
  local rc=$?
  ACKED_TOTAL=$(sed -n 's/check: [0-9]* acknowledged requests (\([0-9]*\) samples).*/\1/p' "$IT_TMP/check.$1")
  if [ $rc = 0 ]; then
    ok "$1: every acknowledged sample is queryable (${ACKED_TOTAL:-?} acknowledged, $QUERIED read back)"
  else
    head -20 "$IT_TMP/check.$1"
    notok "$1: every acknowledged sample is queryable"
  fi
}

report() { # STEP T0 T1
  printf '  %-38s %s; read back afterwards: %s of %s acknowledged samples\n' "$1" \
    "$($TOOL window "$mon" "$2" "$3")" "${QUERIED:-?}" "${ACKED_TOTAL:-?}"
}

port_of() { # NAME -> HTTP port (the ports scripts/cluster.sh gives)
  local i
  case $1 in
    ing-a1) i=0 ;; ing-a2) i=1 ;; ing-b1) i=2 ;; ing-b2) i=3 ;; ing-c1) i=4 ;; ing-c2) i=5 ;;
    ing-a3) i=10 ;;
  esac
  echo $((RT_CLUSTER_PORT + i))
}

check "writes are acknowledged before any fault" acks_continue 20 10
T_START=$(date +%s.%N)

# ---- (a) zone a dies
it_log "(a) kill -9 every ingester of zone a"
Ta0=$(date +%s.%N)
cluster stop-zone a
check "(a) writes keep succeeding with zone a dead" acks_continue 20 20
check "(a) the ring marks zone a unhealthy" wait_for 20 "ing-a1 unhealthy" is_state ing-a1 "ACTIVE,unhealthy"
check "(a) writes keep succeeding once zone a is unhealthy" acks_continue 20 20
Ta1=$(date +%s.%N)
verify "(a) zone a down"
report "(a) zone a killed:" "$Ta0" "$Ta1"
failed_q=$($TOOL window "$mon" "$Ta0" "$Ta1" | sed -n 's/.* failed_queries=\([0-9]*\).*/\1/p')
[ "${failed_q:-1}" = 0 ] && ok "(a) every query during the zone loss answered completely" ||
  notok "(a) every query during the zone loss answered completely ($failed_q failed)"

# ---- (b) zone a comes back
it_log "(b) start zone a again"
Tb0=$(date +%s.%N)
pa1=$(port_of ing-a1)
pa2=$(port_of ing-a2)
check "(b) zone a starts again and is ACTIVE" cluster start-zone a
base1=$(appended "$pa1"); base2=$(appended "$pa2")
check "(b) ing-a1 takes writes again" wait_for 20 "ing-a1 appends" grows "$pa1" "${base1:-0}"
check "(b) ing-a2 takes writes again" wait_for 20 "ing-a2 appends" grows "$pa2" "${base2:-0}"
acks_continue 20 10
Tb1=$(date +%s.%N)
verify "(b) zone a back"
report "(b) zone a restarted:" "$Tb0" "$Tb1"

# ---- (c) one ingester in each of two zones
it_log "(c) kill -9 ing-a1 and ing-b1"
Tc0=$(date +%s.%N)
u0=$(unacked)
cluster stop ing-a1
cluster stop ing-b1
check "(c) writes of series that lost two replicas get 5xx" wait_for 30 "unacknowledged writes" unacked_beyond $((u0 + 5))
check "(c) ing-a1 comes back ACTIVE" cluster start ing-a1
check "(c) writes are acknowledged again once ing-a1 is back" acks_continue 30 20
check "(c) ing-b1 comes back ACTIVE" cluster start ing-b1
acks_continue 20 10
Tc1=$(date +%s.%N)
verify "(c) two zones hit"
report "(c) one ingester in two zones killed:" "$Tc0" "$Tc1"

# ---- (d) zone c frozen
it_log "(d) SIGSTOP zone c, then SIGCONT"
Td0=$(date +%s.%N)
cluster freeze-zone c
check "(d) writes keep succeeding with zone c frozen" acks_continue 20 20
check "(d) the ring marks the frozen zone unhealthy" wait_for 20 "ing-c1 unhealthy" is_state ing-c1 "ACTIVE,unhealthy"
acks_continue 20 10
cluster thaw-zone c
check "(d) zone c is healthy again after SIGCONT" wait_for 20 "ing-c1 healthy" is_state ing-c1 ACTIVE
check "(d) writes keep succeeding after the thaw" acks_continue 20 20
Td1=$(date +%s.%N)
verify "(d) zone c thawed"
report "(d) zone c frozen and thawed:" "$Td0" "$Td1"

# ---- (e) growth: a third ingester joins zone a while writing
it_log "(e) add a third ingester to zone a"
Te0=$(date +%s.%N)
check "(e) ing-a3 joins the ring and becomes ACTIVE" cluster start ing-a3
pa3=$(port_of ing-a3)
check "(e) ing-a3 takes writes of the series that moved to it" wait_for 20 "ing-a3 appends" grows "$pa3" 0
check "(e) writes keep succeeding" acks_continue 20 20
Te1=$(date +%s.%N)
verify "(e) zone a grown"
report "(e) ingester added to zone a:" "$Te0" "$Te1"

kill $LG 2>/dev/null
it_wait_exit $LG 10
untrack $LG
kill $MON 2>/dev/null
it_wait_exit $MON 5
untrack $MON
it_log "whole run: $($TOOL window "$mon" "$T_START" "$(date +%s.%N)")"
it_log "loadgen: $(grep RESULT "$IT_TMP/loadgen.out" || tail -1 "$IT_TMP/loadgen.out")"
finish
