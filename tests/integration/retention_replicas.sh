#!/usr/bin/env bash
# retention_replicas.sh - two replicas, one that deletes (ingester + compactor) and one that does
# not (ingester only), written through one distributor that sends every series to both: a
# querier reading both, one reading only the replica that deleted and one reading only the one
# that did not all answer the same under -compactor.retention-period, because every read is
# clamped to the tenant's retention start.
source "$(dirname "$0")/lib.bash"

RPC_A=tcp://127.0.0.1:$(free_port)
RPC_B=tcp://127.0.0.1:$(free_port)
HTTP_A=$(free_port)
HTTP_B=$(free_port)
RET=(-compactor.retention-period=2d)

start_ingester() { # NAME RPC HTTP TARGET
  "$RINGTAIL_BIN" -target="$4" -server.http-listen-address=127.0.0.1 \
    -server.http-listen-port="$3" -server.rpc-listen-address="$2" \
    -ingester.data-dir="$IT_TMP/data-$1" "${RET[@]}" >"$IT_TMP/ingester-$1.log" 2>&1 &
  LAST_PID=$!
  track $LAST_PID
  wait_for 60 "ingester $1 ready" http_ok "http://127.0.0.1:$3/ready"
}
start_querier() { # HTTP ADDRESSES
  "$RINGTAIL_BIN" -target=querier -auth.mode=header -server.http-listen-address=127.0.0.1 \
    -server.http-listen-port="$1" -querier.ingester-addresses="$2" "${RET[@]}" \
    >"$IT_TMP/querier-$1.log" 2>&1 &
  track $!
  wait_for 60 "querier ready" http_ok "http://127.0.0.1:$1/ready"
}

check "replica A (ingester, compactor)" start_ingester a "$RPC_A" "$HTTP_A" ingester,compactor
check "replica B (ingester only: it never deletes)" start_ingester b "$RPC_B" "$HTTP_B" ingester
B_PID=$LAST_PID
rt_start "$IT_TMP/unused" -target=distributor,querier -auth.mode=header \
  -distributor.ingester-addresses="$RPC_A,$RPC_B" -querier.ingester-addresses="$RPC_A,$RPC_B" \
  "${RET[@]}" || exit 1
Q_A=$(free_port)
Q_B=$(free_port)
check "a querier of A only" start_querier "$Q_A" "$RPC_A"
check "a querier of B only" start_querier "$Q_B" "$RPC_B"

NOW=$(date +%s)
NEWEST=$(((NOW - 60) * 1000))
push() {
  python3 - "$RT_PORT" "$NEWEST" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["IT_DIR"])
import rwtool as rw
port, newest = int(sys.argv[1]), int(sys.argv[2])
t0 = newest - 4 * 86400000
series = [([("__name__", "old"), ("i", str(i))], [(t0 + k * 60000, float(k)) for k in range(300)])
          for i in range(20)]
series.append(([("__name__", "mixed")], [(newest - k * 600000, float(k)) for k in range(575, -1, -1)]))
for i in range(0, len(series), 7):
    st, text = rw.post("127.0.0.1", port, "/api/v1/push",
                       rw.snappy(rw.write_request(series[i:i + 7])), {"X-Scope-OrgID": "t"})
    if st not in (200, 204):
        print(st, text)
        sys.exit(1)
EOF
}
answers() { # PORT -> series of old, label values of i, samples of mixed over 5d, count(old) 4d ago
  local url=http://127.0.0.1:$1
  printf '%s %s %s %s\n' \
    "$(curl -s -G -H 'X-Scope-OrgID: t' --data-urlencode 'match[]=old' \
      --data-urlencode "start=$((NOW - 5 * 86400))" "$url/api/v1/series" | jq -r '.data | length')" \
    "$(curl -s -G -H 'X-Scope-OrgID: t' "$url/api/v1/label/i/values" | jq -r '.data | length')" \
    "$(curl -s -G -H 'X-Scope-OrgID: t' --data-urlencode 'query=count_over_time(mixed[5d])' \
      --data-urlencode "time=$NOW" "$url/api/v1/query" | jq -r '.data.result[0].value[1]')" \
    "$(curl -s -G -H 'X-Scope-OrgID: t' --data-urlencode 'query=count(old)' \
      --data-urlencode "time=$((NOW - 4 * 86400 + 3600))" "$url/api/v1/query" |
      jq -r '.data.result | length')"
}
metric_a() {
  curl -sf "http://127.0.0.1:$HTTP_A/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
a_deleted() { [ "$(metric_a ringtail_compactor_retention_deleted_series_total)" = 20 ]; }
expect() { # DESCRIPTION WANT COMMAND...
  local what=$1 want=$2
  shift 2
  local got
  got=$("$@")
  if [ "$got" = "$want" ]; then ok "$what ($got)"; else notok "$what: want $want, got $got"; fi
}

check "push 20 series of four days ago and mixed (four days)" push
check "replica A deleted the old series" wait_for 40 "A's retention round" a_deleted
# old series: none; values of i: none; mixed: newest - 2d .. newest = 289; old 4 days ago: none
WANT="0 0 289 0"
expect "the querier of A and B" "$WANT" answers "$RT_PORT"
expect "the querier of A (deleted)" "$WANT" answers "$Q_A"
expect "the querier of B (not deleted)" "$WANT" answers "$Q_B"
kill -TERM "$B_PID"
it_wait_exit "$B_PID" 30
untrack "$B_PID"
"$RINGTAIL_BIN" dump -ingester.data-dir="$IT_TMP/data-b" -tenant=t >"$IT_TMP/dump-b.txt"
expect "replica B still holds the old samples" 6000 grep -c '^t {__name__="old"' "$IT_TMP/dump-b.txt"
"$RINGTAIL_BIN" dump -ingester.data-dir="$IT_TMP/data-a" -tenant=t >"$IT_TMP/dump-a.txt"
expect "replica A does not" 0 grep -c '^t {__name__="old"' "$IT_TMP/dump-a.txt"
finish
