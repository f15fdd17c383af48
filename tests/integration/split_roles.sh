#!/usr/bin/env bash
# split_roles.sh - the same binary as two processes: an ingester, and a distributor + querier
# that reach it over ZeroMQ tcp://.
#
# Writes through the front process, kills the ingester process with SIGKILL while the load runs
# and restarts it. Every push must be either acknowledged and stored, or answered with an error
# (never a 2xx for data that was not stored): `ringtail dump` of the ingester's directory must hold
# every acknowledged sample, every unacknowledged request all or nothing. The read APIs of the
# front process must list every series.
source "$(dirname "$0")/lib.bash"

data=$IT_TMP/data
rpc_port=$(free_port)
ing_http=$(free_port)
front_http=$(free_port)
RPC=tcp://127.0.0.1:$rpc_port

ING_PID=
start_ingester() {
  RT_STARTS=$((RT_STARTS + 1))
  "$RINGTAIL_BIN" -target=ingester -server.http-listen-address=127.0.0.1 \
    -server.http-listen-port="$ing_http" -server.rpc-listen-address="$RPC" \
    -ingester.data-dir="$data" >"$IT_TMP/ingester.$RT_STARTS.log" 2>&1 &
  ING_PID=$!
  track "$ING_PID"
  wait_for 60 "ingester ready" http_ok "http://127.0.0.1:$ing_http/ready"
}

it_log "starting the ingester process ($RPC)"
start_ingester || { notok "the ingester process starts"; finish; }

RT_PORT=$front_http
rt_start "$IT_TMP/unused" -target=distributor,querier -distributor.ingester-addresses="$RPC" \
  -querier.ingester-addresses="$RPC" || { notok "the distributor+querier process starts"; finish; }
ok "ingester and distributor+querier run as two processes"

vlog=$IT_TMP/verify.log
: >"$vlog"
"$LOADGEN_BIN" --url "$RT_URL/api/v1/push" --series 200 --samples-per-request 100 \
  --samples-per-series 2 --concurrency 2 --duration 600 --step 1000 \
  --start-ts $(( $(date +%s) * 1000 - 6 * 3600 * 1000 )) --max-retries 0 --timeout 5000 \
  --verify-log "$vlog" >"$IT_TMP/loadgen.out" 2>&1 &
lg_pid=$!
track "$lg_pid"

acked() { grep -c '^A' "$vlog"; }
acked_more_than() { [ "$(acked)" -gt "$1" ]; }
unacked_more_than() { [ "$(grep -c '^U' "$vlog")" -gt "$1" ]; }

check "writes through the front process are acknowledged" wait_for 30 "acks" acked_more_than 20
for i in 1 2 3; do
  before_u=$(grep -c '^U' "$vlog")
  kill -KILL "$ING_PID"; wait "$ING_PID" 2>/dev/null; untrack "$ING_PID"
  check "with the ingester down, pushes fail instead of being acknowledged (kill $i)" \
    wait_for 30 "failed pushes" unacked_more_than "$before_u"
  check "the front process keeps running while the ingester is down" rt_alive
  start_ingester || { notok "the ingester restarts ($i)"; break; }
  before=$(acked)
  check "writes are acknowledged again after the ingester restarted ($i)" \
    wait_for 60 "acks after restart" acked_more_than "$before"
done
kill -TERM "$lg_pid"; it_wait_exit "$lg_pid" 30; untrack "$lg_pid"
sed 's/^/  loadgen: /' "$IT_TMP/loadgen.out" | grep -E 'requests|RESULT'
check "no request was rejected with a 4xx" bash -c "! grep -q '^R' '$vlog'"

n=$(rt_get /api/v1/series --get --data-urlencode 'match[]={job="loadgen"}' | jq '.data | length')
check "the front process lists the 200 series read over tcp:// ($n)" [ "${n:-0}" = 200 ]
check "the front process stops cleanly" rt_stop
kill -TERM "$ING_PID"
it_wait_exit "$ING_PID" 30
untrack "$ING_PID"

"$RINGTAIL_BIN" dump -ingester.data-dir="$data" >"$IT_TMP/dump.txt" 2>"$IT_TMP/dump.err"
check "ringtail dump reads the ingester's directory" [ $? = 0 ]
"$LOADGEN_BIN" --check "$vlog" --dump "$IT_TMP/dump.txt" >"$IT_TMP/check.out" 2>&1
rc=$?
sed 's/^/  /' "$IT_TMP/check.out" | head -n 20
check "acknowledged samples stored; unacknowledged requests all or nothing" [ $rc = 0 ]
finish
