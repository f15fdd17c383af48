#!/usr/bin/env bash
# distributor_ring.sh - distributors find each other in the ring and share a tenant's ingestion
# rate: three ingesters in zones a/b/c, two distributors and a querier as separate processes.
# Each distributor registers in the ring gossip (role distributor, no tokens): both count 2
# (ringtail_distributor_instances) and enforce ingestion_rate / 2, while the ingester side of
# the ring still shows exactly the three ingesters. One distributor is stopped with SIGTERM: it
# forgets its entry and pushes the change out, so the other counts 1 and enforces the whole rate
# without waiting for the heartbeat timeout (left at its 1 minute default here).
source "$(dirname "$0")/lib.bash"

[ -x "$RINGTAIL_BIN" ] || skip "no $RINGTAIL_BIN"
command -v python3 >/dev/null || skip "no python3"

PY="python3 $IT_DIR/dist_rate.py"
OV=$IT_TMP/overrides.yaml
# rate 1000/s shared by the distributors; the burst (not divided) stays below one test request
printf 'overrides:\n  shared:\n    ingestion_rate: 1000\n    ingestion_burst_size: 300\n' >"$OV"

command -v jq >/dev/null || skip "no jq"
declare -A HTTP RPC GOSSIP
# 18 distinct free ports in one go
read -r -a PORTS < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(18)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
i=0
for n in a b c d1 d2 q; do
  HTTP[$n]=${PORTS[i]}
  RPC[$n]=${PORTS[i + 1]}
  GOSSIP[$n]=${PORTS[i + 2]}
  i=$((i + 3))
done
JOIN="tcp://127.0.0.1:${GOSSIP[a]},tcp://127.0.0.1:${GOSSIP[b]},tcp://127.0.0.1:${GOSSIP[c]}"
declare -A PID
start_proc() { # NAME ROLE [FLAGS...]
  local n=$1 role=$2
  shift 2
  mkdir -p "$IT_TMP/$n"
  "$RINGTAIL_BIN" -target="$role" -server.http-listen-address=127.0.0.1 \
    -server.http-listen-port="${HTTP[$n]}" -ring.join="$JOIN" \
    -ring.gossip-listen-address="tcp://127.0.0.1:${GOSSIP[$n]}" -ring.heartbeat-period=1s \
    -ring.gossip-interval=200ms -ring.replication-factor=3 -ingester.data-dir="$IT_TMP/$n/data" \
    -auth.mode=header -runtime-config.file="$OV" -runtime-config.reload-period=200ms \
    "$@" >"$IT_TMP/$n.log" 2>&1 &
  PID[$n]=$!
  track $!
}
for z in a b c; do
  start_proc $z ingester -ring.instance-id=ing-$z -ring.zone=$z \
    -server.rpc-listen-address="tcp://127.0.0.1:${RPC[$z]}" -ingester.wal-sync=none
done
start_proc d1 distributor -ring.instance-id=dist-1
start_proc d2 distributor -ring.instance-id=dist-2
start_proc q querier
for n in a b c d1 d2 q; do
  wait_for 30 "$n ready" http_ok "http://127.0.0.1:${HTTP[$n]}/ready" ||
    { notok "$n starts"; tail "$IT_TMP/$n.log"; finish; }
done

# ring_is PORT INGESTERS DISTRIBUTORS: as that process sees it, the ring holds exactly INGESTERS
# healthy ACTIVE ingesters (owning tokens) and DISTRIBUTORS healthy distributors (owning none,
# listed apart under "others")
ring_is() {
  curl -sf --max-time 2 "http://127.0.0.1:$1/ring?format=json" | jq -e --argjson i "$2" \
    --argjson d "$3" '
    ([.instances[] | select(.state == "ACTIVE" and .healthy and .tokens > 0)] | length) == $i
    and (.instances | length) == $i and (.zones | length) == 3
    and ([.instances[] | select(.id | startswith("dist-"))] | length) == 0
    and ([.others[] | select(.role == "distributor" and .healthy and .state == "ACTIVE")]
         | length) == $d' >/dev/null
}
# instances_is PORT N: the distributor's ringtail_distributor_instances gauge is N
instances_is() {
  curl -sf --max-time 2 "http://127.0.0.1:$1/metrics" | grep -qx "ringtail_distributor_instances $2"
}
# ring_members_is PORT: ringtail_ring_members counts the three ingesters only
ring_members_is() {
  curl -sf --max-time 2 "http://127.0.0.1:$1/metrics" |
    grep -qx 'ringtail_ring_members{state="ACTIVE"} 3'
}
all_see() { # INGESTERS DISTRIBUTORS NAMES...
  local i=$1 d=$2 n
  shift 2
  for n in "$@"; do
    ring_is "${HTTP[$n]}" "$i" "$d" || return 1
  done
}

check "every process sees 3 ingesters and 2 distributors" \
  wait_for 30 "the ring with both distributors" all_see 3 2 a b c d1 d2 q || finish
check "distributor 1 counts 2 distributors" wait_for 20 "d1 counts 2" instances_is "${HTTP[d1]}" 2
check "distributor 2 counts 2 distributors" wait_for 20 "d2 counts 2" instances_is "${HTTP[d2]}" 2
check "ringtail_ring_members counts ingesters only" ring_members_is "${HTTP[d1]}"
check "distributor 1 enforces half the rate (message)" $PY message "${HTTP[d1]}" shared 2 500
check "distributor 2 enforces half the rate (message)" $PY message "${HTTP[d2]}" shared 2 500
# 500/s each: accepted samples per second stay at most 500 (+ one request)
check "distributor 1 accepts at most its share" $PY rate "${HTTP[d1]}" shared 0 500 2

it_log "stopping distributor 2 with SIGTERM"
kill -TERM "${PID[d2]}"
it_wait_exit "${PID[d2]}" 30
rc=$?
untrack "${PID[d2]}"
check "distributor 2 stops" [ $rc = 0 ]
check "distributor 1 counts 1 distributor (well before the 1 min heartbeat timeout)" \
  wait_for 15 "d1 counts 1" instances_is "${HTTP[d1]}" 1
check "every process sees 3 ingesters and 1 distributor" \
  wait_for 15 "the ring without distributor 2" all_see 3 1 a b c d1 q
check "distributor 1 enforces the whole rate (message)" $PY message "${HTTP[d1]}" shared 1 1000
# 1000/s now: well above the 500 (+ one request) allowed before
check "distributor 1 accepts more than half the rate" $PY rate "${HTTP[d1]}" shared 650 1000 2

check "distributor 1 stops cleanly" bash -c "kill -TERM ${PID[d1]}"
it_wait_exit "${PID[d1]}" 30
check "distributor 1 exits" [ $? = 0 ]
untrack "${PID[d1]}"
finish
