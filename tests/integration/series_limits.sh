#!/usr/bin/env bash
# series_limits.sh - max_global_series_per_user / _per_metric and the per-tenant statistics
# APIs (/api/v1/user_stats, /api/v1/cardinality/*) against real processes:
#   (1) one ringtail -target=all;
#   (2) a cluster of three ingesters in three zones (RF 3), a distributor and a querier, where
#       each series is held three times and must still count once; then a fourth ingester joins
#       zone a, so that one zone's answers come from two ingesters and are added up.
# In both: the limits answer 400 with the documented message, other tenants are unaffected, a
# limit raised in the runtime-config file applies without a restart, and the statistics count
# each tenant's own series only. The checks are in series_limits.py.
source "$(dirname "$0")/lib.bash"

[ -x "$RINGTAIL_BIN" ] || skip "no $RINGTAIL_BIN"
command -v python3 >/dev/null || skip "no python3"

PY="python3 $IT_DIR/series_limits.py"
initial_overrides() {
  printf 'overrides:\n  lim-user:\n    max_global_series_per_user: 10\n  lim-metric:\n    max_global_series_per_metric: 10\n' >"$1"
}

# ---------------------------------------------------------------- (1) a single process
it_log "single process"
OV1=$IT_TMP/overrides1.yaml
initial_overrides "$OV1"
rt_start "$IT_TMP/single" -auth.mode=header -runtime-config.file="$OV1" \
  -runtime-config.reload-period=200ms || { notok "ringtail starts"; finish; }
if $PY single "$RT_URL" "$RT_URL" "$OV1"; then
  ok "single process: every check"
else
  notok "single process: every check"
fi
rt_stop

# ---------------------------------------------------------------- (2) three ingesters, RF 3
it_log "three ingesters in three zones, RF 3"
OV2=$IT_TMP/overrides2.yaml
initial_overrides "$OV2"
declare -A HTTP RPC GOSSIP
for n in a a2 b c dist qry; do
  HTTP[$n]=$(free_port)
  RPC[$n]=$(free_port)
  GOSSIP[$n]=$(free_port)
done
JOIN="tcp://127.0.0.1:${GOSSIP[a]},tcp://127.0.0.1:${GOSSIP[b]},tcp://127.0.0.1:${GOSSIP[c]}"
start_proc() { # NAME ROLE [FLAGS...]
  local n=$1 role=$2
  shift 2
  mkdir -p "$IT_TMP/$n"
  "$RINGTAIL_BIN" -target="$role" -server.http-listen-address=127.0.0.1 \
    -server.http-listen-port="${HTTP[$n]}" -ring.join="$JOIN" \
    -ring.gossip-listen-address="tcp://127.0.0.1:${GOSSIP[$n]}" -ring.heartbeat-period=1s \
    -ring.gossip-interval=200ms -ring.replication-factor=3 -ingester.data-dir="$IT_TMP/$n/data" \
    -auth.mode=header -runtime-config.file="$OV2" -runtime-config.reload-period=200ms \
    "$@" >"$IT_TMP/$n.log" 2>&1 &
  track $!
}
for z in a b c; do
  start_proc $z ingester -ring.instance-id=ing-$z -ring.zone=$z \
    -server.rpc-listen-address="tcp://127.0.0.1:${RPC[$z]}" -ingester.wal-sync=none
done
start_proc dist distributor
start_proc qry querier
for n in a b c dist qry; do
  wait_for 30 "$n ready" http_ok "http://127.0.0.1:${HTTP[$n]}/ready" || { notok "$n starts"; tail "$IT_TMP/$n.log"; finish; }
done
active_in() { # HTTP_PORT N: N healthy ACTIVE ingesters in the ring as that process sees it
  curl -sf --max-time 2 "http://127.0.0.1:$1/ring?format=json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
ok = [i for i in r["instances"] if i["state"] == "ACTIVE" and i["healthy"]]
sys.exit(0 if len(ok) == int(sys.argv[1]) else 1)' "$2"
}
ACTIVE_WANT=3
all_active_everywhere() {
  local n
  for n in a b c dist qry; do
    active_in "${HTTP[$n]}" "$ACTIVE_WANT" || return 1
  done
}
wait_for 30 "three ACTIVE ingesters in the ring" all_active_everywhere || { notok "the ring forms"; finish; }
ok "the cluster is up"
if $PY cluster "http://127.0.0.1:${HTTP[dist]}" "http://127.0.0.1:${HTTP[qry]}" "$OV2" \
  "http://127.0.0.1:${HTTP[a]}" "http://127.0.0.1:${HTTP[b]}" "http://127.0.0.1:${HTTP[c]}"; then
  ok "cluster: every check"
else
  notok "cluster: every check"
fi

# a second ingester in zone a: a zone's answers are added up, still counting each series once
it_log "a second ingester joins zone a"
start_proc a2 ingester -ring.instance-id=ing-a2 -ring.zone=a \
  -server.rpc-listen-address="tcp://127.0.0.1:${RPC[a2]}" -ingester.wal-sync=none
ACTIVE_WANT=4
wait_for 30 "ing-a2 ready" http_ok "http://127.0.0.1:${HTTP[a2]}/ready" &&
  wait_for 30 "four ACTIVE ingesters in the ring" all_active_everywhere || { notok "ing-a2 joins"; finish; }
if $PY grown "http://127.0.0.1:${HTTP[dist]}" "http://127.0.0.1:${HTTP[qry]}" "$OV2" \
  "http://127.0.0.1:${HTTP[a]}" "http://127.0.0.1:${HTTP[a2]}" "http://127.0.0.1:${HTTP[b]}" \
  "http://127.0.0.1:${HTTP[c]}"; then
  ok "four ingesters: every check"
else
  notok "four ingesters: every check"
fi
finish
