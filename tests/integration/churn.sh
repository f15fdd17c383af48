#!/usr/bin/env bash
# churn.sh - series churn does not grow memory or lock a tenant out (a shortened version of
# bench/churn's workload). 10 generations of 20,000 series (CHURN_SERIES, CHURN_GENERATIONS),
# each written for 10 minutes of data time and never again, 3 hours of data time apart, into
# `ringtail -target=all` with -ingester.series-idle-timeout=1h and a per-tenant series limit of
# twice the active series. Fails when:
#   - a request is refused or fails (the limit must only ever see the active generation);
#   - the head holds more than one generation once the compactor's round has run, or the
#     series-removed counter disagrees;
#   - RSS (less RocksDB's memtables, which fill up to their bounded write buffers) grows with
#     the generations (last generation > 1.2 x the largest of the third to fifth);
#   - a restarted ingester's head holds more than the active generation;
#   - an acknowledged sample is missing from `ringtail dump` (ringtail-loadgen --check).
source "$(dirname "$0")/lib.bash"

N=${CHURN_SERIES:-20000}
GENS=${CHURN_GENERATIONS:-10}
[ -x "$LOADGEN_BIN" ] || { it_log "no loadgen at $LOADGEN_BIN"; exit 1; }
FLAGS=(-ingester.series-idle-timeout=1h -ingester.max-global-series-per-user=$((2 * N)))
rt_start "$IT_TMP/data" "${FLAGS[@]}" || exit 1

vlog=$IT_TMP/verify.log
: >"$vlog"
H=$((3600 * 1000))
T0=$(( ($(date +%s) - 60) * 1000 - (GENS - 1) * 3 * H - 600000 )) # the last generation ends now
metric() { rt_get /metrics | awk -v m="$1" '$1 == m { printf "%d\n", $2 }'; }
head_is() { [ "$(metric ringtail_ingester_memory_series)" = "$1" ]; }

rss=()
refused=0
for ((g = 0; g < GENS; g++)); do
  "$LOADGEN_BIN" --url "$RT_URL/api/v1/push" --series "$N" --series-offset $((g * N)) \
    --rounds 10 --duration 0 --step 60000 --start-ts $((T0 + g * 3 * H)) \
    --samples-per-request 2000 --concurrency 2 --max-retries 0 --verify-log "$vlog" \
    --quiet >"$IT_TMP/loadgen.$g.out" 2>&1 || refused=$((refused + 1))
  # the previous generation is idle by 3h of data time: the compactor's next round (10 s)
  # takes it out of the head
  if ! wait_for 40 "head of generation $g" head_is "$N"; then
    notok "generation $g: the head holds $(metric ringtail_ingester_memory_series) series, want $N"
  fi
  # RocksDB's memtables fill up to their write buffers (tens of MiB) before they are flushed:
  # bounded, but they would hide the head's memory in a run this short
  m=$(metric process_resident_memory_bytes)
  mt=$(metric ringtail_ingester_memtable_bytes)
  rss[g]=$((m - mt))
  it_log "generation $g: head $(metric ringtail_ingester_memory_series) series, RSS $((m >> 20)) MiB, memtables $((mt >> 20)) MiB, $(grep RESULT "$IT_TMP/loadgen.$g.out")"
done
check "no request refused or failed over $GENS generations (limit $((2 * N)))" [ "$refused" = 0 ]
check "every generation but the last left the head" \
  [ "$(metric ringtail_ingester_series_removed_total)" = $(((GENS - 1) * N)) ]
check "active series of the tenant = one generation" \
  [ "$(metric 'ringtail_ingester_active_series{user="anonymous"}')" = "$N" ]
base=${rss[2]} # after warm-up: the largest of the third to fifth generations
for ((g = 3; g < 5 && g < GENS - 1; g++)); do
  [ "${rss[g]}" -gt "$base" ] && base=${rss[g]}
done
last=${rss[GENS - 1]}
check "RSS without memtables does not grow with the generations ($((base >> 20)) MiB after warm-up, $((last >> 20)) MiB at the last)" \
  [ "$((last * 10))" -le "$((base * 12))" ]

check "SIGTERM" rt_stop
rt_start "$IT_TMP/data" "${FLAGS[@]}" || exit 1
check "after a restart the head holds only the last generation ($(metric ringtail_ingester_memory_series))" \
  head_is "$N"
n=$(rt_get /api/v1/series --get --data-urlencode 'match[]={job="loadgen"}' \
  --data-urlencode "start=$((T0 / 1000 - 60))" --data-urlencode "end=$(date +%s)" | jq '.data | length')
check "/api/v1/series still lists every generation ($n of $((GENS * N)))" [ "$n" = $((GENS * N)) ]
check "SIGTERM" rt_stop

"$RINGTAIL_BIN" dump -ingester.data-dir="$IT_TMP/data" >"$IT_TMP/dump.txt" 2>"$IT_TMP/dump.err"
check "ringtail dump reads the data directory ($(wc -l <"$IT_TMP/dump.txt") samples)" [ $? = 0 ]
"$LOADGEN_BIN" --check "$vlog" --dump "$IT_TMP/dump.txt" >"$IT_TMP/check.out" 2>&1
rc=$?
sed 's/^/  /' "$IT_TMP/check.out" | head -n 10
check "every acknowledged sample is in the dump" [ "$rc" = 0 ]
finish
